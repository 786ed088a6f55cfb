"""Products: matmul / @, dot, einsum, outer, tensordot — all lowered to `dot`."""
from __future__ import annotations

from typing import Any

import numpy as np

from flowjit import lax
from flowjit.numpy._promote import broadcast_shapes, promote, shape_of, wrap
from flowjit.source_info import at_user_line
from flowjit.ir.errors import ShapeError


def matmul(a, b):
    """numpy.matmul: 1-D operands promoted, batch dims broadcast."""
    a, b = promote(a, b)
    sa, sb = tuple(shape_of(a)), tuple(shape_of(b))
    if not sa or not sb:
        raise ShapeError(at_user_line(f"matmul: operands must not be scalars (shapes {sa} and "
                                      f"{sb})"))
    a2 = lax.reshape(a, (1,) + sa) if len(sa) == 1 else a
    b2 = lax.reshape(b, sb + (1,)) if len(sb) == 1 else b
    s2a, s2b = tuple(shape_of(a2)), tuple(shape_of(b2))
    if s2a[-1] != s2b[-2]:
        raise ShapeError(at_user_line(
            f"matmul: shapes {sa} and {sb} are not aligned: {s2a[-1]} (dim {len(sa) - 1}) != "
            f"{s2b[-2]} (dim {max(len(sb) - 2, 0)})"))
    if len(s2b) == 2:
        # [..., M, K] @ [K, N]: one product over the merged leading dims, as jax.numpy
        # does (no copy of the weight per batch element).
        out = lax.dot_general(a2, b2, (((len(s2a) - 1,), (0,)), ((), ())))
        return wrap(lax.reshape(out, sa[:-1] + ((s2b[-1],) if len(sb) > 1 else ())))
    batch = broadcast_shapes(s2a[:-2], s2b[:-2])
    nb = len(batch)
    a3 = lax.broadcast_in_dim(a2, batch + s2a[-2:], list(range(nb - len(s2a) + 2, nb + 2)))
    b3 = lax.broadcast_in_dim(b2, batch + s2b[-2:], list(range(nb - len(s2b) + 2, nb + 2)))
    out = lax.dot_general(a3, b3, (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb)))))
    out_shape = list(batch) + ([s2a[-2]] if len(sa) > 1 else []) + (
        [s2b[-1]] if len(sb) > 1 else [])
    return wrap(lax.reshape(out, out_shape))


def dot(a, b):
    """numpy.dot: sum over the last axis of a and the second-to-last of b."""
    sa, sb = tuple(shape_of(a)), tuple(shape_of(b))
    if not sa or not sb:
        from flowjit.numpy.elementwise import multiply
        return multiply(a, b)
    if len(sb) <= 2:
        return matmul(a, b)
    a, b = promote(a, b)
    if sa[-1] != sb[-2]:
        raise ShapeError(at_user_line(f"dot: shapes {sa} and {sb} not aligned"))
    return wrap(lax.dot_general(a, b, (((len(sa) - 1,), (len(sb) - 2,)), ((), ()))))


def vdot(a, b):
    from flowjit.numpy.shape_ops import ravel
    return dot(ravel(a), ravel(b))


def inner(a, b):
    return tensordot(a, b, ([-1], [-1]))


def outer(a, b):
    from flowjit.numpy.shape_ops import ravel
    a, b = promote(ravel(a), ravel(b))
    return wrap(lax.dot_general(lax.reshape(a, (shape_of(a)[0], 1)),
                                lax.reshape(b, (1, shape_of(b)[0])), (((1,), (0,)), ((), ()))))


def tensordot(a, b, axes=2):
    a, b = promote(a, b)
    sa, sb = tuple(shape_of(a)), tuple(shape_of(b))
    if isinstance(axes, int):
        ax_a, ax_b = list(range(len(sa) - axes, len(sa))), list(range(axes))
    else:
        ax_a, ax_b = [list(np.atleast_1d(x)) for x in axes]
    ax_a = [int(x) % len(sa) for x in ax_a]
    ax_b = [int(x) % len(sb) for x in ax_b]
    for i, j in zip(ax_a, ax_b):
        if sa[i] != sb[j]:
            raise ShapeError(at_user_line(f"tensordot: shape-mismatch for sum ({sa} and {sb})"))
    return wrap(lax.dot_general(a, b, ((ax_a, ax_b), ((), ()))))


def einsum(subscripts: str, *operands: Any):
    """numpy.einsum for one or two operands (more are contracted left to right)."""
    inputs, _, output = subscripts.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} terms for {len(operands)} operands")
    if "." in subscripts:
        raise NotImplementedError("einsum with '...' is not supported yet")
    if not _:
        counts = {c: inputs.count(c) for c in set(inputs.replace(",", ""))}
        output = "".join(sorted(c for c, n in counts.items() if n == 1))
    operands = promote(*operands)
    for term, op in zip(terms, operands):
        if len(term) != len(shape_of(op)):
            raise ShapeError(at_user_line(f"einsum: term '{term}' does not match operand of "
                                          f"shape {tuple(shape_of(op))}"))
    value, term = _einsum_single(operands[0], terms[0], set("".join(terms[1:]) + output))
    for other, other_term in zip(operands[1:], terms[1:]):
        remaining = set(output) | set("".join(terms[terms.index(other_term) + 1:]))
        other, other_term = _einsum_single(other, other_term, remaining | set(term))
        value, term = _einsum_pair(value, term, other, other_term, remaining)
    if sorted(term) != sorted(output):
        value, term = _einsum_single(value, term, set(output))
    return wrap(lax.transpose(value, [term.index(c) for c in output]))


def _einsum_single(x, term: str, needed: set):
    """Sum out letters of `term` not `needed` elsewhere (repeated letters: not supported)."""
    if len(set(term)) != len(term):
        raise NotImplementedError("einsum: repeated index within one operand (diagonal)")
    drop = [i for i, c in enumerate(term) if c not in needed]
    if not drop:
        return x, term
    zero = np.zeros((), np.asarray(0, dtype=_dtype(x)).dtype)
    return lax.reduce(x, zero, "add", drop), "".join(c for c in term if c in needed)


def _dtype(x):
    from flowjit.numpy._promote import dtype_of
    return dtype_of(x)


def _einsum_pair(a, ta: str, b, tb: str, keep: set):
    sa, sb = shape_of(a), shape_of(b)
    for c in set(ta) & set(tb):
        if sa[ta.index(c)] != sb[tb.index(c)]:
            raise ShapeError(at_user_line(f"einsum: index '{c}' has sizes {sa[ta.index(c)]} and "
                                          f"{sb[tb.index(c)]}"))
    batch = [c for c in ta if c in tb and c in keep]
    contract = [c for c in ta if c in tb and c not in keep]
    out = lax.dot_general(a, b, (([ta.index(c) for c in contract], [tb.index(c) for c in contract]),
                                 ([ta.index(c) for c in batch], [tb.index(c) for c in batch])))
    term = "".join(batch) + "".join(c for c in ta if c not in tb) + "".join(
        c for c in tb if c not in ta)
    return out, term


# Decompositions (LAPACK custom calls, as JAX emits them) and what is built from them.
from flowjit.linalg import (cholesky, det, eigh, eigvalsh, inv, qr,  # noqa: E402,F401
                            slogdet, solve, svd)
from flowjit.linalg_derived import (lstsq, matrix_power, matrix_rank,  # noqa: E402,F401
                                    multi_dot, norm, pinv, tensorsolve)
