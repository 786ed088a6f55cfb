"""Decompositions with jax.numpy.linalg's names and signatures, batched over leading dims.

Each traces to the LAPACK custom calls JAX emits on the CPU (`lapack_spotrf_ffi`, ...), so
`flowjit dump` shows what JAX shows, followed by the same clean-up JAX does (NaN where
LAPACK reports a failure, the unused triangle zeroed). Gradients: cholesky, triangular
solves, eigh and svd differentiate through the custom calls (passes/vjp_linalg.py); solve,
inv, det, slogdet and qr carry rules of their own here (as JAX's do: an LU or Householder
factorization is not what one differentiates).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from flowjit import lax
from flowjit.ad import custom_vjp
from flowjit.control_flow import fori_loop
from flowjit.core import bind, shape_of
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError
from flowjit.ir.lapack_targets import layouts_for, target_name
from flowjit.numpy._promote import wrap
from flowjit.numpy.along_axis import take_along_axis
from flowjit.numpy.array_ops import diagonal, tril, triu
from flowjit.numpy.creation import arange, asarray, eye
from flowjit.numpy.elementwise import abs as absolute
from flowjit.numpy.elementwise import log, sign, where
from flowjit.numpy.reductions import argmax, prod, sum as total
from flowjit.numpy.shape_ops import broadcast_to, expand_dims, swapaxes
from flowjit.source_info import at_user_line


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


class QRResult(NamedTuple):
    Q: object
    R: object


# --- the LAPACK calls ---------------------------------------------------------------------

def _float_matrix(a, name: str, square: bool = False):
    """`a` as a float32/float64 stack of matrices (integers become float32, as in JAX)."""
    a = asarray(a)
    dtype = shape_of(a).dtype
    if not dtype.is_float:
        a, dtype = lax.convert_element_type(a, np.float32), DType.F32
    if dtype not in (DType.F32, DType.F64):
        raise TypeError(at_user_line(f"{name}: LAPACK takes float32 or float64 matrices, "
                                     f"not {dtype}"))
    dims = shape_of(a).dims
    if len(dims) < 2 or (square and dims[-1] != dims[-2]):
        wanted = "square matrices" if square else "matrices"
        raise ShapeError(at_user_line(f"{name}: needs {wanted} (..., M, N), got shape "
                                      f"{tuple(dims)}"))
    return a


def lapack_call(routine: str, operands, **config: str):
    """The custom call JAX emits for LAPACK `routine` on `operands` (same target, layouts
    and backend_config), its result a tuple when LAPACK's is."""
    shapes = [shape_of(o) for o in operands]
    attrs = {"custom_call_target": target_name(routine, shapes[0].dtype),
             "operand_layout_constraints": layouts_for(shapes),
             "ffi_config": tuple(sorted((key, ord(value), "ui8")
                                        for key, value in config.items()))}
    out = bind("custom-call", list(operands), attrs)
    return tuple(wrap(o) for o in out) if isinstance(out, tuple) else wrap(out)


def _mT(x):
    return swapaxes(x, -1, -2)


def _succeeded(info, rank_added: int):
    """info == 0, with `rank_added` trailing unit dims to broadcast against a result."""
    ok = info == 0
    for _ in range(rank_added):
        ok = expand_dims(ok, -1)
    return ok


def _nan_unless(ok, x):
    return where(ok, x, np.nan)


def _symmetrize(a):
    return (a + _mT(a)) / 2


# --- cholesky and triangular solves -----------------------------------------------------

def cholesky(a, *, upper: bool = False, symmetrize_input: bool = True):
    """jax.numpy.linalg.cholesky: the lower factor L (a = L L^T), or U = L^T with `upper`;
    NaN for a matrix that is not positive definite."""
    a = _float_matrix(a, "cholesky", square=True)
    if symmetrize_input:
        a = _symmetrize(a)
    factor, info = lapack_call("potrf", [a], uplo="L")
    factor = tril(_nan_unless(_succeeded(info, 2), factor))
    return _mT(factor) if upper else factor


def _trsm(a, b, *, left: bool, lower: bool, transpose: bool, unit: bool):
    return lapack_call("trsm", [a, b], side="L" if left else "R", uplo="L" if lower else "U",
                       trans_x="T" if transpose else "N", diag="U" if unit else "N")


def _as_columns(b, a_rank: int):
    """b as a stack of matrices: a vector (b.ndim == a.ndim - 1) becomes one column."""
    b = asarray(b)
    vector = len(shape_of(b).dims) == a_rank - 1
    return (expand_dims(b, -1) if vector else b), vector


def _broadcast_batch(a, b):
    """a and b with the same leading (batch) dims, broadcast."""
    sa, sb = shape_of(a).dims, shape_of(b).dims
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    return broadcast_to(a, batch + sa[-2:]), broadcast_to(b, batch + sb[-2:])


def solve_triangular(a, b, trans=0, lower: bool = False, unit_diagonal: bool = False,
                     overwrite_b: bool = False, debug=None, check_finite: bool = True):
    """jax.scipy.linalg.solve_triangular: x with op(a) x = b, a triangular (`lower` or
    upper), op per `trans` (0/'N', 1/'T', 2/'C')."""
    a = _float_matrix(a, "solve_triangular", square=True)
    b, vector = _as_columns(b, len(shape_of(a).dims))
    b = lax.convert_element_type(b, np.dtype(shape_of(a).dtype.to_numpy()))
    if trans not in (0, 1, 2, "N", "T", "C"):
        raise ValueError(at_user_line(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or "
                                      f"'C', not {trans!r}"))
    a, b = _broadcast_batch(a, b)
    x = _trsm(a, b, left=True, lower=lower, transpose=trans not in (0, "N"),
              unit=unit_diagonal)
    return x[..., 0] if vector else x


def cho_factor(a, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True):
    """jax.scipy.linalg.cho_factor: (the factor in the `lower` or upper triangle, zeros in
    the other, lower), for cho_solve."""
    return cholesky(a, upper=not lower, symmetrize_input=False), lower


def cho_solve(c_and_lower, b, overwrite_b: bool = False, check_finite: bool = True):
    """jax.scipy.linalg.cho_solve: x with a x = b from cho_factor(a)."""
    factor, lower = c_and_lower
    first = solve_triangular(factor, b, trans=0 if lower else 1, lower=lower)
    return solve_triangular(factor, first, trans=1 if lower else 0, lower=lower)


# --- LU: solve, inv, det, slogdet -------------------------------------------------------------

def _lu(a):
    """(packed L\\U, 0-based pivots, row permutation, info) of a = P L U."""
    lu, pivots, info = lapack_call("getrf", [a])
    pivots = pivots - 1
    return lu, pivots, _permutation(pivots, shape_of(a).dims[-2]), info


def _permutation(pivots, m: int):
    """The row order LAPACK's successive swaps (row i <-> pivots[i]) give, as JAX's
    lu_pivots_to_permutation: one loop over the swaps, each a select over the rows."""
    batch = shape_of(pivots).dims[:-1]
    k = shape_of(pivots).dims[-1]
    rows = arange(m, dtype=np.int32)
    start = broadcast_to(rows, batch + (m,))

    def swap(i, perm):
        # O(m) per swap: the two values are gathered once per element, not summed over rows.
        target = lax.dynamic_slice_in_dim(pivots, i, 1, axis=-1)
        at_i = lax.dynamic_slice_in_dim(perm, i, 1, axis=-1)
        at_target = take_along_axis(perm, target, axis=-1)
        return where(rows == i, at_target, where(rows == target, at_i, perm))
    if k == 0:          # no swaps (an empty matrix): the body could not even be traced
        return start
    return fori_loop(0, k, swap, start)


def _permute_rows(b, permutation):
    """b's rows in the order `permutation` names (b[..., permutation[i], :] at row i)."""
    if 0 in shape_of(b).dims:
        return b
    index = broadcast_to(expand_dims(permutation, -1), shape_of(b).dims)
    return take_along_axis(b, index, axis=-2)


def _lu_solve(lu, permutation, b, transpose: bool = False):
    if not transpose:
        x = _permute_rows(b, permutation)
        x = _trsm(lu, x, left=True, lower=True, transpose=False, unit=True)
        return _trsm(lu, x, left=True, lower=False, transpose=False, unit=False)
    x = _trsm(lu, b, left=True, lower=False, transpose=True, unit=False)
    x = _trsm(lu, x, left=True, lower=True, transpose=True, unit=True)
    inverse = _inverse_permutation(permutation)
    return _permute_rows(x, inverse)


def _inverse_permutation(permutation):
    m = shape_of(permutation).dims[-1]
    one_hot = expand_dims(permutation, -1) == arange(m, dtype=np.int32)   # [.., row, value]
    return argmax(one_hot, axis=-2).astype(np.int32)


def _solve_matrix(a, b):
    lu, _, permutation, _ = _lu(a)
    return _lu_solve(lu, permutation, b)


@custom_vjp
def _solve_columns(a, b):
    return _solve_matrix(a, b)


def _solve_fwd(a, b):
    x = _solve_matrix(a, b)
    return x, (a, x)


def _solve_bwd(residuals, g):
    a, x = residuals
    b_ct = _solve_matrix(_mT(a), g)           # solve with a^T
    return -(b_ct @ _mT(x)), b_ct


_solve_columns.defvjp(_solve_fwd, _solve_bwd)


def solve(a, b):
    """jax.numpy.linalg.solve: x with a x = b; b is (..., N) when it has one dim fewer
    than a... as in JAX 0.10, only a 1-D b is a vector; else (..., N, K)."""
    a = _float_matrix(a, "solve", square=True)
    b = asarray(b)
    vector = len(shape_of(b).dims) == 1
    b = expand_dims(b, -1) if vector else b
    b = lax.convert_element_type(b, np.dtype(shape_of(a).dtype.to_numpy()))
    if shape_of(b).dims[-2] != shape_of(a).dims[-1]:
        raise ShapeError(at_user_line(f"solve: a {tuple(shape_of(a).dims)} and b "
                                      f"{tuple(shape_of(b).dims)} do not fit (b needs "
                                      f"{shape_of(a).dims[-1]} rows)"))
    a, b = _broadcast_batch(a, b)
    x = _solve_columns(a, b)
    return x[..., 0] if vector else x


def inv(a):
    """jax.numpy.linalg.inv: solve(a, I)."""
    a = _float_matrix(a, "inv", square=True)
    n = shape_of(a).dims[-1]
    identity = broadcast_to(eye(n, dtype=a.dtype), shape_of(a).dims)
    return _solve_columns(a, identity)


def _lu_sign_and_diagonal(a):
    lu, pivots, _, _ = _lu(a)
    k = shape_of(pivots).dims[-1]
    swaps = total(pivots != arange(k, dtype=np.int32), axis=-1)
    parity = where(swaps % 2 == 0, 1.0, -1.0).astype(a.dtype)
    return parity, diagonal(lu, axis1=-2, axis2=-1)


def _slogdet_plain(a):
    parity, diag = _lu_sign_and_diagonal(a)
    sign_out = parity * prod(sign(diag), axis=-1)
    return sign_out, total(log(absolute(diag)), axis=-1)


@custom_vjp
def _slogdet(a):
    return _slogdet_plain(a)


def _slogdet_fwd(a):
    out = _slogdet_plain(a)
    return out, (a,)


def _slogdet_bwd(residuals, g):
    (a,) = residuals
    _, g_log = g
    return (expand_dims(expand_dims(g_log, -1), -1) * _mT(inv(a)),)


_slogdet.defvjp(_slogdet_fwd, _slogdet_bwd)


def slogdet(a, *, method=None):
    """jax.numpy.linalg.slogdet: (sign, log|det|) from an LU factorization."""
    if method not in (None, "lu"):
        raise ValueError(at_user_line(f"slogdet: method {method!r} is not supported (lu)"))
    a = _float_matrix(a, "slogdet", square=True)
    sign_out, logabsdet = _slogdet(a)
    return SlogdetResult(sign_out, logabsdet)


@custom_vjp
def _det(a):
    parity, diag = _lu_sign_and_diagonal(a)
    return parity * prod(diag, axis=-1)


def _det_fwd(a):
    d = _det.fun(a)
    return d, (a, d)


def _det_bwd(residuals, g):
    a, d = residuals
    scale = expand_dims(expand_dims(g * d, -1), -1)
    return (scale * _mT(inv(a)),)


_det.defvjp(_det_fwd, _det_bwd)


def det(a):
    """jax.numpy.linalg.det: from an LU factorization (gradient det(a) a^-T)."""
    return _det(_float_matrix(a, "det", square=True))


# --- QR, eigh, SVD ---------------------------------------------------------------------

def _qr_plain(a, complete: bool):
    m, n = shape_of(a).dims[-2:]
    packed, tau = lapack_call("geqrf", [a])
    if m < n:
        q = lapack_call("orgqr", [packed[..., :m], tau])
    elif complete and m > n:
        widths = [(0, 0, 0)] * (len(shape_of(a).dims) - 1) + [(0, m - n, 0)]
        q = lapack_call("orgqr", [lax.pad(packed, np.zeros((), a.dtype), widths), tau])
    else:
        q = lapack_call("orgqr", [packed, tau])
    r = triu(packed if complete or m <= n else packed[..., :n, :])
    return q, r


@custom_vjp
def _qr_reduced(a):
    return _qr_plain(a, complete=False)


def _qr_fwd(a):
    q, r = _qr_plain(a, complete=False)
    return (q, r), (q, r)


def _qr_bwd(residuals, g):
    """A = QR (m >= n, reduced): M = R Rbar^T - Qbar^T Q; Abar = (Qbar + Q copyltu(M))
    R^-T, copyltu(M) = the lower triangle of M mirrored up."""
    q, r = residuals
    q_ct, r_ct = g
    m_matrix = r @ _mT(r_ct) - _mT(q_ct) @ q
    mirrored = tril(m_matrix) + _mT(tril(m_matrix, -1))
    rhs = q_ct + q @ mirrored
    # rhs R^-T: solve X R^T = rhs, i.e. R X^T = rhs^T.
    return (_mT(_trsm(r, _mT(rhs), left=True, lower=False, transpose=False, unit=False)),)


_qr_reduced.defvjp(_qr_fwd, _qr_bwd)


def qr(a, mode: str = "reduced"):
    """jax.numpy.linalg.qr: mode 'reduced' (Q [.., M, K], R [.., K, N]), 'complete' (Q
    square) or 'r' (R only); geqrf then orgqr, as JAX lowers it."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(at_user_line(f"qr: unsupported mode {mode!r}"))
    a = _float_matrix(a, "qr")
    m, n = shape_of(a).dims[-2:]
    if mode == "reduced" and m >= n:
        q, r = _qr_reduced(a)
    else:
        q, r = _qr_plain(a, complete=mode == "complete")
    return r if mode == "r" else QRResult(q, r)


def eigh(a, UPLO=None, symmetrize_input: bool = True):   # noqa: N803 - JAX's name
    """jax.numpy.linalg.eigh: eigenvalues (ascending) and eigenvectors (columns) of a
    symmetric matrix (its `UPLO` triangle); NaN where LAPACK fails."""
    a = _float_matrix(a, "eigh", square=True)
    uplo = UPLO or "L"
    if uplo not in ("L", "U"):
        raise ValueError(at_user_line(f"eigh: UPLO must be 'L' or 'U', not {UPLO!r}"))
    if symmetrize_input:
        a = _symmetrize(a)
    vectors, values, info = lapack_call("syevd", [a], mode="V", uplo=uplo)
    return EighResult(_nan_unless(_succeeded(info, 1), values),
                      _nan_unless(_succeeded(info, 2), vectors))


def eigvalsh(a, UPLO="L", *, symmetrize_input: bool = True):   # noqa: N803
    """jax.numpy.linalg.eigvalsh: eigh's eigenvalues."""
    return eigh(a, UPLO, symmetrize_input).eigenvalues


def svd(a, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False,
        subset_by_index=None):
    """jax.numpy.linalg.svd: (U, S, Vh) with a = U diag(S) Vh, or S alone; gesdd."""
    if subset_by_index is not None:
        raise NotImplementedError(at_user_line("svd: subset_by_index is not supported"))
    a = _float_matrix(a, "svd")
    mode = "N" if not compute_uv else ("A" if full_matrices else "S")
    _, s, u, vt, info = lapack_call("gesdd", [a], mode=mode)
    s = _nan_unless(_succeeded(info, 1), s)
    if not compute_uv:
        return s
    ok = _succeeded(info, 2)
    return SVDResult(_nan_unless(ok, u), s, _nan_unless(ok, vt))


def lu_factor(a, overwrite_a: bool = False, check_finite: bool = True):
    """jax.scipy.linalg.lu_factor: (packed L\\U, 0-based pivots)."""
    a = _float_matrix(a, "lu_factor")
    lu, pivots, _, _ = _lu(a)
    return lu, pivots


def lu_solve(lu_and_piv, b, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True):
    """jax.scipy.linalg.lu_solve: x with a x = b (trans 0) or a^T x = b (1, 2)."""
    lu, pivots = lu_and_piv
    lu = _float_matrix(lu, "lu_solve", square=True)
    b, vector = _as_columns(b, len(shape_of(lu).dims))
    b = b.astype(lu.dtype)
    permutation = _permutation(asarray(pivots), shape_of(lu).dims[-2])
    x = _lu_solve(lu, permutation, b, transpose=trans != 0)
    return x[..., 0] if vector else x
