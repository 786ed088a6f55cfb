"""jax.numpy.linalg's names built from the decompositions in flowjit.linalg: least
squares, pseudo-inverse and rank from the SVD, vector and matrix norms, powers, chains of
products and tensor solves."""
from __future__ import annotations

import numpy as np

from flowjit import lax
from flowjit.core import shape_of
from flowjit.ir.errors import ShapeError
from flowjit.linalg import _float_matrix, _mT, inv, solve, svd
from flowjit.numpy.creation import asarray, eye
from flowjit.numpy.elementwise import abs as absolute
from flowjit.numpy.elementwise import where
from flowjit.numpy.reductions import max as maximum
from flowjit.numpy.reductions import min as minimum
from flowjit.numpy.reductions import sum as total
from flowjit.numpy.shape_ops import broadcast_to, expand_dims
from flowjit.source_info import at_user_line


def _eps(a) -> float:
    return float(np.finfo(np.dtype(a.dtype)).eps)


def lstsq(a, b, rcond=None, *, numpy_resid: bool = False):
    """jax.numpy.linalg.lstsq: (x, residuals, rank, singular values), from the SVD."""
    a = _float_matrix(a, "lstsq")
    b = asarray(b)
    vector = len(shape_of(b).dims) == 1
    b = expand_dims(b, -1) if vector else b
    b = b.astype(a.dtype)
    m, n = shape_of(a).dims
    u, s, vt = svd(a, full_matrices=False)
    rcond = _eps(a) * max(m, n) if rcond is None else rcond
    mask = s >= rcond * s[:1]
    safe = where(mask, s, 1)
    s_inverse = expand_dims(where(mask, 1 / safe, 0), -1)
    x = _mT(vt) @ (s_inverse * (_mT(u) @ b))
    rank = total(mask).astype(np.int32)
    if numpy_resid:
        raise NotImplementedError(at_user_line("lstsq: numpy_resid=True is not supported"))
    resid = total((b - a @ x) ** 2, axis=0)
    if vector:
        x, resid = x[..., 0], resid[0]
    return x, resid, rank, s


def pinv(a, rtol=None, hermitian: bool = False, *, rcond=None):
    """jax.numpy.linalg.pinv: V diag(1/s) U^T over the singular values above rtol * max."""
    a = _float_matrix(a, "pinv")
    m, n = shape_of(a).dims[-2:]
    rtol = rcond if rcond is not None else rtol
    rtol = 10 * max(m, n) * _eps(a) if rtol is None else rtol
    u, s, vt = svd(a, full_matrices=False)
    cutoff = rtol * s[..., :1]
    s_inverse = where(s > cutoff, 1 / where(s > cutoff, s, 1), 0)
    return _mT(vt) @ (expand_dims(s_inverse, -1) * _mT(u))


def matrix_rank(M, rtol=None, *, hermitian: bool = False, tol=None):   # noqa: N803
    """jax.numpy.linalg.matrix_rank: singular values above rtol * the largest."""
    M = asarray(M)   # noqa: N806
    if len(shape_of(M).dims) < 2:
        return total(M != 0).astype(np.int32)
    s = svd(M, compute_uv=False)
    m, n = shape_of(M).dims[-2:]
    if tol is None:
        rtol = max(m, n) * _eps(s) if rtol is None else rtol
        tol = rtol * s[..., :1]
    else:
        tol = expand_dims(asarray(tol), -1)
    return total(s > tol, axis=-1).astype(np.int32)


def matrix_power(a, n: int):
    """jax.numpy.linalg.matrix_power: a^n by repeated squaring (inv(a)^-n when n < 0)."""
    a = asarray(a)
    dims = shape_of(a).dims
    if len(dims) < 2 or dims[-1] != dims[-2]:
        raise ShapeError(at_user_line(f"matrix_power: needs square matrices, got {dims}"))
    if not isinstance(n, (int, np.integer)):
        raise TypeError(at_user_line(f"matrix_power: n must be an int, not {n!r}"))
    if n == 0:
        return broadcast_to(eye(dims[-1], dtype=a.dtype), dims)
    if n < 0:
        a, n = inv(a), -n
    result, square = None, a
    while n:
        if n & 1:
            result = square if result is None else result @ square
        n >>= 1
        if n:
            square = square @ square
    return result


def multi_dot(arrays, *, precision=None):
    """jax.numpy.linalg.multi_dot: the product of a chain (1-D ends as vectors)."""
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError(at_user_line("multi_dot: needs at least two arrays"))
    result = asarray(arrays[0])
    for x in arrays[1:]:
        result = result @ asarray(x)
    return result


def _matrix_norm(x, ord, axes):
    rows, cols = axes
    if ord in (None, "fro"):
        return total(x * x, axis=axes) ** 0.5
    if ord in (1, -1):
        sums = total(absolute(x), axis=rows)
        reduce = maximum if ord == 1 else minimum
        return reduce(sums, axis=cols - (cols > rows))
    if ord in (np.inf, -np.inf):
        sums = total(absolute(x), axis=cols)
        reduce = maximum if ord > 0 else minimum
        return reduce(sums, axis=rows - (rows > cols))
    if ord in (2, -2, "nuc"):
        rest = [d for d in range(len(shape_of(x).dims)) if d not in (rows, cols)]
        s = svd(lax.transpose(x, tuple(rest) + (rows, cols)), compute_uv=False)
        return total(s, axis=-1) if ord == "nuc" else (s[..., 0] if ord == 2 else
                                                       s[..., -1])
    raise ValueError(at_user_line(f"norm: invalid ord {ord!r} for a matrix"))


def norm(x, ord=None, axis=None, keepdims: bool = False):   # noqa: A002 - numpy's name
    """jax.numpy.linalg.norm: vector norms over one axis, matrix norms over two."""
    x = asarray(x)
    if not shape_of(x).dtype.is_float:
        x = x.astype(np.float32)
    rank = len(shape_of(x).dims)
    if axis is None:
        if ord is None:
            out = total(x * x) ** 0.5
            return out.reshape((1,) * rank) if keepdims else out
        axis = tuple(range(rank))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(int(a) % rank for a in axes)
    if len(axes) == 1:
        (ax,) = axes
        magnitude = absolute(x)
        if ord is None or ord == 2:
            out = total(x * x, axis=ax) ** 0.5
        elif ord == np.inf:
            out = maximum(magnitude, axis=ax)
        elif ord == -np.inf:
            out = minimum(magnitude, axis=ax)
        elif ord == 0:
            out = total(x != 0, axis=ax).astype(x.dtype)
        elif ord == 1:
            out = total(magnitude, axis=ax)
        elif isinstance(ord, str):
            raise ValueError(at_user_line(f"norm: invalid ord {ord!r} for a vector"))
        else:
            out = total(magnitude ** ord, axis=ax) ** (1.0 / ord)
    elif len(axes) == 2:
        out = _matrix_norm(x, ord, axes)
    else:
        raise ValueError(at_user_line(f"norm: axis must name one or two dims, got {axis}"))
    if keepdims:
        for ax in sorted(axes):
            out = expand_dims(out, ax)
    return out


def tensorsolve(a, b, axes=None):
    """jax.numpy.linalg.tensorsolve: x with tensordot(a, x, x.ndim) = b."""
    a, b = asarray(a), asarray(b)
    if axes is not None:
        order = [d for d in range(a.ndim) if d not in axes] + list(axes)
        a = lax.transpose(a, tuple(order))
    b_dims = shape_of(b).dims
    x_dims = shape_of(a).dims[len(b_dims):]
    rows = int(np.prod(b_dims))
    matrix = a.reshape((rows, int(np.prod(x_dims))))
    return solve(matrix, b.reshape((rows,))).reshape(x_dims)
