"""Reference semantics of the decompositions: the LAPACK custom calls and HLO's `cholesky`
and `triangular-solve`, through scipy's own LAPACK/BLAS wrappers, one problem per batch
index. (scipy is imported when a decomposition is first evaluated: the rest of the IR
needs only numpy.)

Outputs LAPACK leaves unspecified (what gesdd leaves of its input, u and vt when no vectors
are asked for, syevd's matrix without vectors) are what scipy's routine leaves in them, or
zeros where it returns nothing; no test reads them.
"""
from __future__ import annotations

import numpy as np

from flowjit.ir.lapack_targets import options, parse_target


def _linalg():
    from scipy.linalg import blas, lapack
    return lapack, blas


def _routine(module, prefix: str, name: str):
    return getattr(module, prefix + name)


def _prefix(dtype: np.dtype) -> str:
    return "s" if dtype == np.float32 else "d"


def _batched(a: np.ndarray):
    """Each batch index of a stack of matrices (all leading dims)."""
    return list(np.ndindex(*a.shape[:-2]))


def _potrf(a, config):
    lapack, _ = _linalg()
    potrf = _routine(lapack, _prefix(a.dtype), "potrf")
    out, info = a.copy(), np.zeros(a.shape[:-2], np.int32)
    for i in _batched(a):
        out[i], info[i] = potrf(a[i], lower=config["uplo"] == "L", clean=0)
    return out, info


def _getrf(a, config):
    lapack, _ = _linalg()
    getrf = _routine(lapack, _prefix(a.dtype), "getrf")
    k = min(a.shape[-2:])
    out, info = a.copy(), np.zeros(a.shape[:-2], np.int32)
    pivots = np.zeros(a.shape[:-2] + (k,), np.int32)
    for i in _batched(a):
        lu, piv, info[i] = getrf(a[i])
        out[i], pivots[i] = lu, piv + 1          # LAPACK's pivots are 1-based
    return out, pivots, info


def _trsm(a, b, config):
    _, blas = _linalg()
    trsm = _routine(blas, _prefix(a.dtype), "trsm")
    out = b.copy()
    for i in _batched(a):
        out[i] = trsm(1.0, a[i], b[i], side=int(config["side"] == "R"),
                      lower=int(config["uplo"] == "L"), trans_a="NTC".index(config["trans_x"]),
                      diag=int(config["diag"] == "U"))
    return out


def _geqrf(a, config):
    lapack, _ = _linalg()
    geqrf = _routine(lapack, _prefix(a.dtype), "geqrf")
    out = a.copy()
    tau = np.zeros(a.shape[:-2] + (min(a.shape[-2:]),), a.dtype)
    for i in _batched(a):
        out[i], tau[i] = geqrf(a[i])[:2]
    return out, tau


def _orgqr(a, tau, config):
    lapack, _ = _linalg()
    orgqr = _routine(lapack, _prefix(a.dtype), "orgqr")
    out = a.copy()
    for i in _batched(a):
        out[i] = orgqr(a[i], tau[i])[0]
    return out


def _syevd(a, config):
    lapack, _ = _linalg()
    syevd = _routine(lapack, _prefix(a.dtype), "syevd")
    vectors, info = a.copy(), np.zeros(a.shape[:-2], np.int32)
    values = np.zeros(a.shape[:-1], a.dtype)
    for i in _batched(a):
        w, v, info[i] = syevd(a[i], compute_v=int(config["mode"] == "V"),
                              lower=int(config["uplo"] == "L"))
        values[i] = w
        if config["mode"] == "V":
            vectors[i] = v
    return vectors, values, info


def _gesdd(a, config, shapes):
    lapack, _ = _linalg()
    gesdd = _routine(lapack, _prefix(a.dtype), "gesdd")
    mode = config["mode"]
    out, s_all = a.copy(), np.zeros(shapes[1], a.dtype)
    u_all, vt_all = np.zeros(shapes[2], a.dtype), np.zeros(shapes[3], a.dtype)
    info = np.zeros(a.shape[:-2], np.int32)
    for i in _batched(a):
        work = np.asfortranarray(a[i])
        u, s, vt, info[i] = gesdd(work, compute_uv=int(mode != "N"),
                                  full_matrices=int(mode == "A"), overwrite_a=1)
        out[i], s_all[i] = work, s
        if mode != "N":
            u_all[i], vt_all[i] = u, vt
    return out, s_all, u_all, vt_all, info


def lapack_custom_call(inst, args):
    """The value of a `lapack_?xxx_ffi` custom call; None when the target is not one."""
    call = parse_target(inst.attrs["custom_call_target"])
    if call is None:
        return None
    config = options(inst.attrs)
    if call.routine == "gesdd":
        leaves = [np.zeros(s.dims) for s in inst.shape.elements]
        return _gesdd(args[0], config, [x.shape for x in leaves])
    return {"potrf": _potrf, "getrf": _getrf, "trsm": _trsm, "geqrf": _geqrf,
            "orgqr": _orgqr, "syevd": _syevd}[call.routine](*args, config)


def cholesky(inst, args):
    """HLO cholesky: the factor in the `lower` (default upper) triangle, zeros in the
    other; NaN everywhere in a matrix that is not positive definite."""
    (a,) = args
    lower = inst.attrs.get("lower", False)
    factor, info = _potrf(a, {"uplo": "L" if lower else "U"})
    n = a.shape[-1]
    mask = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
    factor = np.where(mask, factor, 0).astype(a.dtype)
    return np.where((info != 0)[..., None, None], np.nan, factor).astype(a.dtype)


def triangular_solve(inst, args):
    """HLO triangular-solve: x with op(a) x = b (left_side) or x op(a) = b, reading the
    `lower` or upper triangle of a (its diagonal taken as ones with unit_diagonal)."""
    a, b = args
    transpose = inst.attrs.get("transpose_a", "NO_TRANSPOSE") != "NO_TRANSPOSE"
    return _trsm(a, b, {"side": "L" if inst.attrs.get("left_side", False) else "R",
                        "uplo": "L" if inst.attrs.get("lower", False) else "U",
                        "trans_x": "T" if transpose else "N",
                        "diag": "U" if inst.attrs.get("unit_diagonal", False) else "N"})
