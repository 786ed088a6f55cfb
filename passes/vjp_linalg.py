"""VJP rules of the decompositions, by the standard formulas (as jax/_src/lax/linalg.py):
HLO's `cholesky` and `triangular-solve`, and JAX's LAPACK custom calls, one row per
routine in LAPACK_VJP_RULES (keyed by the routine of the `lapack_?xxx_ffi` target).

Each routine reads only what LAPACK reads: potrf and syevd one triangle of their input
(`uplo`), trsm one triangle of `a`. So a gradient lands on that triangle only: for a
symmetric-input formula with symmetric cotangent C, the entry (i, j) of the read triangle
stands for both (i, j) and (j, i) of the matrix, and gets C_ij + C_ji (the diagonal C_ii).
The gradients emit `triangular-solve` and `dot`, so they compile to LAPACK and BLAS too.
"""
from __future__ import annotations

from flowjit.ir.dtypes import DType
from flowjit.ir.lapack_targets import options, parse_target
from flowjit.ir.shapes import ArrayShape


# --- matrix vocabulary over leading batch dims -----------------------------------------------

def _mT(e, x):
    """x with its last two dims swapped."""
    r = x.shape.rank
    return e.transpose(x, list(range(r - 2)) + [r - 1, r - 2])


def _matmul(e, a, b):
    r = a.shape.rank
    batch = tuple(range(r - 2))
    attrs = dict(lhs_contracting_dims=(r - 1,), rhs_contracting_dims=(r - 2,))
    if batch:
        attrs.update(lhs_batch_dims=batch, rhs_batch_dims=batch)
    return e.op("dot", a, b, **attrs)


def _where(e, x, direction: str):
    """x where (row `direction` column) holds, 0 elsewhere (GE: lower triangle, GT: strictly
    lower, LE / LT: upper, EQ: diagonal)."""
    r = x.shape.rank
    index = ArrayShape(DType.S32, x.shape.dims)
    rows = e.op("iota", shape=index, iota_dimension=r - 2)
    cols = e.op("iota", shape=index, iota_dimension=r - 1)
    return e.select(e.compare(rows, cols, direction), x, e.zeros(x))


def _solve(e, a, b, left: bool, lower: bool, transpose: bool, unit: bool = False):
    return e.op("triangular-solve", a, b, left_side=left, lower=lower, unit_diagonal=unit,
                transpose_a="TRANSPOSE" if transpose else "NO_TRANSPOSE")


def _onto_triangle(e, c, lower: bool):
    """The cotangent of a routine that reads one triangle of a symmetric matrix, from the
    cotangent `c` of that symmetric matrix (see the module docstring)."""
    both = e.add(c, _mT(e, c))
    off = _where(e, both, "GT" if lower else "LT")
    return e.add(off, _where(e, c, "EQ"))


def _diag_matrix(e, v):
    """[..., n] -> [..., n, n] with v on the diagonal."""
    n = v.shape.dims[-1]
    shape = ArrayShape(v.shape.dtype, v.shape.dims + (n,))
    full = e.broadcast(v, shape, list(range(v.shape.rank)))
    return _where(e, full, "EQ")


# --- cholesky --------------------------------------------------------------------------------

def cholesky_cotangent(e, factor, factor_ct):
    """The cotangent of A (its lower triangle, which potrf reads) from the lower factor L
    and the cotangent of L (lower triangular): S = L^-T phi(L^T Lbar) L^-1, phi keeping the
    lower triangle with the diagonal halved (Murray 2016; JAX's cholesky_jvp_rule)."""
    product = _matmul(e, _mT(e, factor), factor_ct)
    phi = e.add(_where(e, product, "GT"),
                e.mul(_where(e, product, "EQ"), e.constant(0.5, product)))
    left = _solve(e, factor, phi, left=True, lower=True, transpose=True)
    s = _solve(e, factor, left, left=False, lower=True, transpose=False)
    return _onto_triangle(e, s, lower=True)


def _cholesky_factor_cotangent(e, out, g, lower: bool):
    """(L, Lbar) from an output holding the factor in the `lower` (else upper) triangle."""
    if lower:
        return _where(e, out, "GE"), _where(e, g, "GE")
    return _mT(e, _where(e, out, "LE")), _mT(e, _where(e, g, "LE"))


def cholesky_rule(e, inst, g):
    """HLO cholesky: the factor in one triangle, zeros in the other."""
    lower = inst.attrs.get("lower", False)
    factor, factor_ct = _cholesky_factor_cotangent(e, inst, g, lower)
    ct = cholesky_cotangent(e, factor, factor_ct)
    return [ct if lower else _mT(e, ct)]


def _potrf(e, inst, g, config):
    """potrf's first output: the factor in the `uplo` triangle, the other triangle the
    input's own entries (LAPACK leaves them), whose cotangent passes straight through."""
    g_out = g[0] if isinstance(g, list) else e.gte(g, 0)
    if g_out is None:
        return [None]
    lower = config["uplo"] == "L"
    out = e.gte(inst, 0)
    factor, factor_ct = _cholesky_factor_cotangent(e, out, g_out, lower)
    ct = cholesky_cotangent(e, factor, factor_ct)
    ct = ct if lower else _mT(e, ct)
    return [e.add(ct, _where(e, g_out, "LT" if lower else "GT"))]


# --- triangular solve ------------------------------------------------------------------------

def triangular_solve_cotangents(e, a, x, g, left: bool, lower: bool, transpose: bool,
                                unit: bool):
    """[a's, b's] cotangents of x = op(a)^-1 b (left) or b op(a)^-1: b's is the solve with
    op(a)^T; a's is -b' x^T (left) or -x^T b' for op(a), transposed back when op is one,
    kept on the triangle a's solve reads (off its diagonal when that is taken as ones)."""
    b_ct = _solve(e, a, g, left=left, lower=lower, transpose=not transpose, unit=unit)
    if left:
        a_ct = _matmul(e, x, _mT(e, b_ct)) if transpose else _matmul(e, b_ct, _mT(e, x))
    else:
        a_ct = _matmul(e, _mT(e, b_ct), x) if transpose else _matmul(e, _mT(e, x), b_ct)
    a_ct = _where(e, e.neg(a_ct), ("GT" if lower else "LT") if unit else
                  ("GE" if lower else "LE"))
    return [a_ct, b_ct]


def triangular_solve_rule(e, inst, g):
    a, _ = inst.operands
    return triangular_solve_cotangents(
        e, a, inst, g, inst.attrs.get("left_side", False), inst.attrs.get("lower", False),
        inst.attrs.get("transpose_a", "NO_TRANSPOSE") != "NO_TRANSPOSE",
        inst.attrs.get("unit_diagonal", False))


def _trsm(e, inst, g, config):
    a, _ = inst.operands
    return triangular_solve_cotangents(e, a, inst, g, config["side"] == "L",
                                       config["uplo"] == "L", config["trans_x"] != "N",
                                       config["diag"] == "U")


# --- symmetric eigendecomposition ----------------------------------------------------------

def _reciprocal_gaps(e, values, squared: bool = False):
    """F[i, j] = 1 / (v_j - v_i) off the diagonal (of the squares with `squared`), 0 on it."""
    v = e.mul(values, values) if squared else values
    n = v.shape.dims[-1]
    shape = ArrayShape(v.shape.dtype, v.shape.dims + (n,))
    rank = v.shape.rank
    by_column = e.broadcast(v, shape, list(range(rank - 1)) + [rank])
    by_row = e.broadcast(v, shape, list(range(rank)))
    gaps = e.sub(by_column, by_row)
    diagonal = _where(e, e.constant(1, gaps), "EQ")
    safe = e.add(gaps, diagonal)          # no division by zero on the diagonal
    return e.sub(e.div(e.constant(1, gaps), safe), diagonal)


def _syevd(e, inst, g, config):
    """A = V diag(w) V^T: Abar = V (diag(wbar) + F o (V^T Vbar)) V^T (symmetric part), as
    JAX's eigh_jvp_rule transposed; kept on the triangle syevd reads."""
    if config["mode"] != "V":
        raise NotImplementedError("gradient of an eigendecomposition without eigenvectors "
                                  "(mode N): eigh and eigvalsh compute them")
    g = g if isinstance(g, list) else [e.gte(g, k) for k in range(3)]
    vectors, values = e.gte(inst, 0), e.gte(inst, 1)
    inner = e.zeros(vectors) if g[1] is None else _diag_matrix(e, g[1])
    if g[0] is not None:
        rotated = _matmul(e, _mT(e, vectors), g[0])
        inner = e.add(inner, e.mul(_reciprocal_gaps(e, values), rotated))
    c = _matmul(e, _matmul(e, vectors, inner), _mT(e, vectors))
    c = e.mul(e.add(c, _mT(e, c)), e.constant(0.5, c))
    return [_onto_triangle(e, c, config["uplo"] == "L")]


# --- singular value decomposition ----------------------------------------------------------

def _gesdd(e, inst, g, config):
    """A = U S V^T (thin): Abar = U [(F o (U^T Ubar - Ubar^T U)) S + diag(sbar)
    + S (F o (V^T Vbar - Vbar^T V))] V^T + (I - U U^T) Ubar S^-1 V^T
    + U S^-1 Vbar^T (I - V V^T), F_ij = 1 / (s_j^2 - s_i^2) (Townsend 2016)."""
    a = inst.operands[0]
    m, n = a.shape.dims[-2:]
    if config["mode"] == "N" or (config["mode"] == "A" and m != n):
        raise NotImplementedError("gradient of an SVD needs the thin vectors: "
                                  "full_matrices=False (or square), compute_uv=True")
    g = g if isinstance(g, list) else [e.gte(g, k) for k in range(5)]
    s, u, vt = e.gte(inst, 1), e.gte(inst, 2), e.gte(inst, 3)
    v = _mT(e, vt)
    s_matrix = _diag_matrix(e, s)
    inner = e.zeros(s_matrix) if g[1] is None else _diag_matrix(e, g[1])
    result = None
    gaps = _reciprocal_gaps(e, s, squared=True)
    inverse_s = _diag_matrix(e, e.div(e.constant(1, s), s))
    if g[2] is not None:
        ut_gu = _matmul(e, _mT(e, u), g[2])
        j = e.mul(gaps, e.sub(ut_gu, _mT(e, ut_gu)))
        inner = e.add(inner, _matmul(e, j, s_matrix))
        projected = e.sub(g[2], _matmul(e, u, ut_gu))            # (I - U U^T) Ubar
        result = _matmul(e, _matmul(e, projected, inverse_s), vt)
    if g[3] is not None:
        gv = _mT(e, g[3])                                        # Vbar
        vt_gv = _matmul(e, vt, gv)
        k = e.mul(gaps, e.sub(vt_gv, _mT(e, vt_gv)))
        inner = e.add(inner, _matmul(e, s_matrix, k))
        projected = e.sub(gv, _matmul(e, v, vt_gv))              # (I - V V^T) Vbar
        term = _matmul(e, _matmul(e, u, inverse_s), _mT(e, projected))
        result = term if result is None else e.add(result, term)
    core = _matmul(e, _matmul(e, u, inner), vt)
    return [core if result is None else e.add(core, result)]


def _no_rule(why: str):
    def rule(e, inst, g, config):
        raise NotImplementedError(f"gradient of custom-call "
                                  f"{inst.attrs['custom_call_target']!r}: {why}")
    return rule


# The VJP of each LAPACK routine: rule(emit, inst, g, backend_config options).
LAPACK_VJP_RULES = {
    "potrf": _potrf,
    "trsm": _trsm,
    "syevd": _syevd,
    "gesdd": _gesdd,
    "getrf": _no_rule("flowjit.numpy.linalg's solve, inv, det and slogdet carry their own "
                      "rules (as JAX's do); an LU factorization alone has no gradient here"),
    "geqrf": _no_rule("flowjit.numpy.linalg.qr carries its own rule (of Q and R)"),
    "orgqr": _no_rule("flowjit.numpy.linalg.qr carries its own rule (of Q and R)"),
}


def lapack_rule(e, inst, g):
    """The VJP of a LAPACK custom call; None when the target is not one."""
    call = parse_target(inst.attrs["custom_call_target"])
    if call is None:
        return None
    return LAPACK_VJP_RULES[call.routine](e, inst, g, options(inst.attrs))


# --- forward mode (passes/jvp_rules.py) ------------------------------------------------------

def cholesky_tangent(e, inst, tangent):
    """HLO cholesky: with A = L L^T, dL = L phi(L^-1 dA L^-T), phi the lower triangle with
    the diagonal halved; dA is the symmetric matrix whose read triangle the tangent holds
    (JAX's cholesky_jvp_rule symmetrizes the same way)."""
    lower = inst.attrs.get("lower", False)
    factor = _where(e, inst, "GE") if lower else _mT(e, _where(e, inst, "LE"))
    if lower:
        read = tangent
    else:
        read = _mT(e, tangent)           # the upper triangle read, as a lower one
    strict = _where(e, read, "GT")
    symmetric = e.add(e.add(strict, _mT(e, strict)), _where(e, read, "EQ"))
    left = _solve(e, factor, symmetric, left=True, lower=True, transpose=False)
    both = _solve(e, factor, left, left=False, lower=True, transpose=True)
    phi = e.add(_where(e, both, "GT"), e.mul(_where(e, both, "EQ"), e.constant(0.5, both)))
    d_factor = _matmul(e, factor, phi)
    return d_factor if lower else _mT(e, d_factor)


def triangular_solve_tangent(e, inst, tangents):
    """x = op(a)^-1 b (left) or b op(a)^-1: dx = op(a)^-1 (db - op(da) x), or
    (db - x op(da)) op(a)^-1, da kept on the triangle the solve reads."""
    a, _ = inst.operands
    ta, tb = tangents
    left = inst.attrs.get("left_side", False)
    lower = inst.attrs.get("lower", False)
    transpose = inst.attrs.get("transpose_a", "NO_TRANSPOSE") != "NO_TRANSPOSE"
    unit = inst.attrs.get("unit_diagonal", False)
    rhs = tb
    if ta is not None:
        read = _where(e, ta, ("GT" if lower else "LT") if unit else ("GE" if lower else "LE"))
        op_ta = _mT(e, read) if transpose else read
        moved = _matmul(e, op_ta, inst) if left else _matmul(e, inst, op_ta)
        rhs = e.neg(moved) if rhs is None else e.sub(rhs, moved)
    return _solve(e, a, rhs, left=left, lower=lower, transpose=transpose, unit=unit)
