"""The LAPACK kernels, compiled (O0 and O2), checked by what each decomposition promises,
computed in numpy: factors multiply back to the input, Q is orthonormal, A V = V diag(w),
solves solve. Batched, rectangular, f32 and f64; row-major buffers against LAPACK's
column-major layout is exactly what these catch."""
from __future__ import annotations

import numpy as np
import pytest

from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from flowjit.runtime.executable import compile_module


def _dims(shape) -> str:
    return ",".join(map(str, shape))


def _run(target, operands, result, opt_level, **config):
    dtype = "f32" if operands[0].dtype == np.float32 else "f64"
    params = "\n".join(f"  %p{k} = {dtype if o.dtype.kind == 'f' else 's32'}[{_dims(o.shape)}]"
                       f" parameter({k})" for k, o in enumerate(operands))
    args = ", ".join(f"%p{k}" for k in range(len(operands)))
    entries = ", ".join(f"{k} = {ord(v)} : ui8" for k, v in sorted(config.items()))
    text = (f"HloModule m\n\nENTRY %main {{\n{params}\n  ROOT %c = {result} custom-call({args}),"
            f' custom_call_target="{target}", backend_config={{{entries}}}\n}}\n')
    module, _ = optimize(parse_module(text), opt_level=opt_level)
    return compile_module(module)(*operands)


def _batch(x):
    return x.reshape((-1,) + x.shape[-2:])


TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("uplo", "LU")
def test_potrf_factor_multiplies_back_and_keeps_the_other_triangle(dtype, uplo, opt_level):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 5, 5))
    a = (a @ np.swapaxes(a, -1, -2) + 5 * np.eye(5)).astype(dtype)
    a[..., 0, 4] += 0.5          # not symmetric: only the `uplo` triangle may be read
    p = "s" if dtype == np.float32 else "d"
    t = "f32" if dtype == np.float32 else "f64"
    out, info = _run(f"lapack_{p}potrf_ffi", [a], f"({t}[2,3,5,5], s32[2,3])", opt_level,
                     uplo=uplo)
    assert info.shape == (2, 3) and (info == 0).all()
    read = np.tril(a) if uplo == "L" else np.triu(a)
    symmetric = read + np.swapaxes(read, -1, -2) - np.eye(5) * np.diagonal(
        a, axis1=-2, axis2=-1)[..., None, :]
    factor = np.tril(out) if uplo == "L" else np.swapaxes(np.triu(out), -1, -2)
    np.testing.assert_allclose(factor @ np.swapaxes(factor, -1, -2), symmetric, **TOL[dtype])
    other = np.triu(a, 1) if uplo == "L" else np.tril(a, -1)
    np.testing.assert_array_equal(np.triu(out, 1) if uplo == "L" else np.tril(out, -1), other)


def test_potrf_reports_a_matrix_that_is_not_positive_definite(opt_level):
    a = np.array([[[4.0, 0], [0, 1]], [[1.0, 2], [2, 1]]], np.float32)
    _, info = _run("lapack_spotrf_ffi", [a], "(f32[2,2,2], s32[2])", opt_level, uplo="L")
    assert info[0] == 0 and info[1] == 2    # LAPACK: the order of the failing minor


@pytest.mark.parametrize("shape", [(4, 4), (2, 5, 3), (3, 5)])
def test_getrf_pivots_and_factors_rebuild_the_input(shape, opt_level):
    rng = np.random.default_rng(1)
    a = rng.normal(size=shape).astype(np.float64)
    m, n = shape[-2:]
    k = min(m, n)
    batch = shape[:-2]
    lu, pivots, info = _run("lapack_dgetrf_ffi", [a],
                            f"(f64[{_dims(shape)}], s32[{_dims(batch + (k,))}], "
                            f"s32[{_dims(batch)}])", opt_level)
    for x, factors, piv in zip(_batch(a), _batch(lu), pivots.reshape(-1, k)):
        lower = np.tril(factors, -1)[:, :k] + np.eye(m, k)
        upper = np.triu(factors)[:k, :]
        rows = np.arange(m)
        for i, p in enumerate(piv - 1):           # LAPACK's 1-based successive swaps
            rows[[i, p]] = rows[[p, i]]
        np.testing.assert_allclose(lower @ upper, x[rows], rtol=1e-12, atol=1e-12)
    assert (info == 0).all()


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 4), (3, 5)])
def test_geqrf_then_orgqr_is_an_orthonormal_q_times_r(shape, opt_level):
    rng = np.random.default_rng(2)
    a = rng.normal(size=shape).astype(np.float32)
    m, n = shape[-2:]
    k = min(m, n)
    batch = shape[:-2]
    packed, tau = _run("lapack_sgeqrf_ffi", [a], f"(f32[{_dims(shape)}], "
                       f"f32[{_dims(batch + (k,))}])", opt_level)
    reflectors = packed[..., :, :k] if m >= n else packed[..., :, :m]
    (q,) = _run("lapack_sorgqr_ffi", [np.ascontiguousarray(reflectors), tau],
             f"f32[{_dims(reflectors.shape)}]", opt_level)
    r = np.triu(packed)[..., :k, :]
    np.testing.assert_allclose(q @ r, a, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(k), q.shape[:-2]
                               + (k, k)), atol=2e-6)


@pytest.mark.parametrize("uplo", "LU")
def test_syevd_gives_eigenpairs_of_the_symmetric_input(uplo, opt_level):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 6, 6))
    a = a + np.swapaxes(a, -1, -2)
    vectors, values, info = _run("lapack_dsyevd_ffi", [a], "(f64[3,6,6], f64[3,6], s32[3])",
                                 opt_level, mode="V", uplo=uplo)
    np.testing.assert_allclose(a @ vectors, vectors * values[..., None, :], atol=1e-11)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(a), atol=1e-11)
    assert (info == 0).all()


@pytest.mark.parametrize("shape, mode", [((5, 3), "S"), ((3, 5), "S"), ((2, 4, 3), "A"),
                                         ((3, 4), "N")])
def test_gesdd_factors_multiply_back(shape, mode, opt_level):
    rng = np.random.default_rng(4)
    a = rng.normal(size=shape).astype(np.float64)
    m, n = shape[-2:]
    k = min(m, n)
    batch = shape[:-2]
    u_dims, vt_dims = ((m, k), (k, n)) if mode == "S" else ((m, m), (n, n))
    _, s, u, vt, info = _run("lapack_dgesdd_ffi", [a], f"(f64[{_dims(shape)}], "
                             f"f64[{_dims(batch + (k,))}], f64[{_dims(batch + u_dims)}], "
                             f"f64[{_dims(batch + vt_dims)}], s32[{_dims(batch)}])",
                             opt_level, mode=mode)
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), atol=1e-12)
    if mode == "N":
        assert not u.any() and not vt.any()
    else:
        np.testing.assert_allclose((u[..., :, :k] * s[..., None, :]) @ vt[..., :k, :], a,
                                   atol=1e-12)
    assert (info == 0).all()


@pytest.mark.parametrize("side", "LR")
@pytest.mark.parametrize("uplo", "LU")
@pytest.mark.parametrize("trans", "NT")
@pytest.mark.parametrize("diag", "NU")
def test_trsm_solves_each_side_triangle_and_transpose(side, uplo, trans, diag, opt_level):
    rng = np.random.default_rng(5)
    a = (rng.normal(size=(2, 4, 4)) + 4 * np.eye(4)).astype(np.float32)
    b = rng.normal(size=(2, 4, 3) if side == "L" else (2, 3, 4)).astype(np.float32)
    (x,) = _run("lapack_strsm_ffi", [a, b], f"f32[{_dims(b.shape)}]", opt_level, side=side,
             uplo=uplo, trans_x=trans, diag=diag)
    t = (np.tril(a) if uplo == "L" else np.triu(a)).astype(np.float64)
    if diag == "U":
        t[..., range(4), range(4)] = 1.0
    if trans == "T":
        t = np.swapaxes(t, -1, -2)
    product = t @ x if side == "L" else x @ t
    np.testing.assert_allclose(product, b, rtol=1e-4, atol=1e-4)


def test_hlo_cholesky_and_triangular_solve_compile_to_lapack(opt_level):
    rng = np.random.default_rng(6)
    a = rng.normal(size=(2, 4, 4))
    a = (a @ np.swapaxes(a, -1, -2) + 4 * np.eye(4)).astype(np.float32)
    b = rng.normal(size=(2, 4, 3)).astype(np.float32)
    text = ("HloModule m\n\nENTRY %main {\n  %a = f32[2,4,4] parameter(0)\n"
            "  %b = f32[2,4,3] parameter(1)\n"
            "  %l = f32[2,4,4] cholesky(%a), lower=true\n"
            "  %u = f32[2,4,4] cholesky(%a), lower=false\n"
            "  %y = f32[2,4,3] triangular-solve(%l, %b), left_side=true, lower=true, "
            "unit_diagonal=false, transpose_a=NO_TRANSPOSE\n"
            "  %x = f32[2,4,3] triangular-solve(%l, %y), left_side=true, lower=true, "
            "transpose_a=TRANSPOSE\n"
            "  ROOT %t = (f32[2,4,4], f32[2,4,4], f32[2,4,3]) tuple(%l, %u, %x)\n}\n")
    module, _ = optimize(parse_module(text), opt_level=opt_level)
    lower, upper, x = compile_module(module)(a, b)
    np.testing.assert_allclose(lower, np.linalg.cholesky(a.astype(np.float64)), atol=2e-6)
    np.testing.assert_allclose(upper, np.swapaxes(lower, -1, -2), atol=2e-6)
    np.testing.assert_allclose(x, np.linalg.solve(a.astype(np.float64), b), rtol=1e-4,
                               atol=1e-5)
