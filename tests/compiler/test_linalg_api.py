"""flowjit.numpy.linalg and flowjit.scipy.linalg against JAX: the same signatures, the same
values on the same inputs (eager and under jit, batched over leading dims), the same
LAPACK custom calls in the traced IR, and clear errors."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
import flowjit.scipy.linalg as fsl
from flowjit.ir.errors import ShapeError

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jsl = pytest.importorskip("jax.scipy.linalg")
# JAX's 32-bit defaults, as flowjit's (other tests turn JAX's x64 on for the process).
pytestmark = pytest.mark.usefixtures("no_x64")

NUMPY_NAMES = ["solve", "inv", "cholesky", "det", "slogdet", "qr", "eigh", "eigvalsh", "svd",
               "lstsq", "norm", "matrix_power", "pinv", "multi_dot", "matrix_rank",
               "tensorsolve"]
SCIPY_NAMES = ["solve_triangular", "cho_factor", "cho_solve", "lu_factor", "lu_solve"]


def _parameters(fn):
    """(name, kind, default) of each parameter: what a caller can rely on."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", NUMPY_NAMES)
def test_numpy_linalg_signature_is_jaxs(name):
    assert _parameters(getattr(fnp.linalg, name)) == _parameters(getattr(jnp.linalg, name))


@pytest.mark.parametrize("name", SCIPY_NAMES)
def test_scipy_linalg_signature_is_jaxs(name):
    assert _parameters(getattr(fsl, name)) == _parameters(getattr(jsl, name))


RNG = np.random.default_rng(7)
A = RNG.normal(size=(2, 4, 4)).astype(np.float32) + 2 * np.eye(4, dtype=np.float32)
SPD = A @ np.swapaxes(A, -1, -2) + 4 * np.eye(4, dtype=np.float32)
B = RNG.normal(size=(2, 4, 3)).astype(np.float32)
TALL = RNG.normal(size=(6, 3)).astype(np.float32)

CASES = {
    "cholesky": lambda m: m.linalg.cholesky(SPD),
    "cholesky_upper": lambda m: m.linalg.cholesky(SPD, upper=True),
    "solve": lambda m: m.linalg.solve(A, B),
    "solve_vector": lambda m: m.linalg.solve(A[0], B[0, :, 0]),
    "inv": lambda m: m.linalg.inv(A),
    "det": lambda m: m.linalg.det(A),
    "slogdet": lambda m: tuple(m.linalg.slogdet(-A)),
    "qr": lambda m: tuple(m.linalg.qr(TALL)),
    "qr_complete": lambda m: tuple(m.linalg.qr(TALL, mode="complete")),
    "qr_wide": lambda m: tuple(m.linalg.qr(TALL.T)),
    "qr_r": lambda m: m.linalg.qr(A, mode="r"),
    "eigh": lambda m: (m.linalg.eigh(SPD)[0],   # each eigenvector's sign fixed
                       m.linalg.eigh(SPD)[1] * m.sign(m.linalg.eigh(SPD)[1][..., :1, :])),
    "eigh_upper": lambda m: m.linalg.eigh(SPD, UPLO="U")[0],
    "eigvalsh": lambda m: m.linalg.eigvalsh(SPD),
    "svd": lambda m: m.linalg.svd(A, compute_uv=False),
    "svd_thin": lambda m: m.abs(m.linalg.svd(TALL, full_matrices=False)[0]),
    "svd_full": lambda m: m.abs(m.linalg.svd(TALL)[0][:, :3]),
    "lstsq": lambda m: m.linalg.lstsq(TALL, TALL[:, :2] + 1)[:3],
    "norms": lambda m: (m.linalg.norm(TALL), m.linalg.norm(TALL, 2), m.linalg.norm(TALL, "nuc"),
                        m.linalg.norm(TALL, 1), m.linalg.norm(TALL, -np.inf),
                        m.linalg.norm(TALL, axis=1), m.linalg.norm(TALL, 3, axis=0),
                        m.linalg.norm(A, axis=(1, 2), keepdims=True)),
    "matrix_power": lambda m: (m.linalg.matrix_power(A, 3), m.linalg.matrix_power(A, 0),
                               m.linalg.matrix_power(A, -2)),
    "pinv": lambda m: m.linalg.pinv(TALL),
    "multi_dot": lambda m: m.linalg.multi_dot([TALL, TALL.T, TALL[:, 0]]),
    "matrix_rank": lambda m: m.linalg.matrix_rank(TALL @ np.diag([1, 1, 0]).astype(np.float32)),
    "tensorsolve": lambda m: m.linalg.tensorsolve(A[0].reshape(2, 2, 4), B[0, :, 0].reshape(2, 2)),
}
SCIPY_CASES = {
    "solve_triangular": lambda s: s.solve_triangular(np.tril(A), B, lower=True),
    "solve_triangular_t": lambda s: s.solve_triangular(np.triu(A[0]), B[0, :, 0], trans="T"),
    "solve_triangular_unit": lambda s: s.solve_triangular(A[0], B[0], lower=True,
                                                          unit_diagonal=True),
    "cho_solve_lower": lambda s: s.cho_solve(s.cho_factor(SPD, lower=True), B),
    "cho_solve_upper": lambda s: s.cho_solve(s.cho_factor(SPD[0]), B[0]),
    "lu_factor": lambda s: s.lu_factor(A),
    "lu_solve": lambda s: s.lu_solve(s.lu_factor(A[0]), B[0]),
    "lu_solve_t": lambda s: s.lu_solve(s.lu_factor(A[0]), B[0], trans=1),
}


def _close(got, want):
    got, want = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        g = np.asarray(g)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_numpy_linalg_values_are_jaxs(name, jitted):
    case = CASES[name]
    got = flowjit.jit(lambda: case(fnp))() if jitted else case(fnp)
    _close(got, case(jnp))


@pytest.mark.parametrize("name", sorted(SCIPY_CASES))
def test_scipy_linalg_values_are_jaxs(name):
    case = SCIPY_CASES[name]
    _close(flowjit.jit(lambda: case(fsl))(), case(jsl))


def test_result_types_have_jaxs_field_names():
    assert fnp.linalg.slogdet(A)._fields == jnp.linalg.slogdet(A)._fields
    assert fnp.linalg.eigh(SPD)._fields == jnp.linalg.eigh(SPD)._fields
    assert fnp.linalg.svd(A)._fields == jnp.linalg.svd(A)._fields
    assert fnp.linalg.qr(A)._fields == jnp.linalg.qr(A)._fields


def test_cholesky_of_an_indefinite_matrix_is_nan_as_in_jax():
    bad = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)
    got = np.asarray(flowjit.jit(fnp.linalg.cholesky)(bad))
    assert np.isnan(got[np.tril_indices(2)]).all() and not np.triu(got, 1).any()
    np.testing.assert_array_equal(got, np.asarray(jnp.linalg.cholesky(bad)))


def _lapack_targets(text: str) -> set[str]:
    targets = (part.split('"')[1] for part in text.split("custom_call_target=")[1:])
    return {t for t in targets if t.startswith("lapack_")}


@pytest.mark.parametrize("name, fn, args", [
    ("cholesky", lambda a: fnp.linalg.cholesky(a), (SPD,)),
    ("solve", lambda a, b: fnp.linalg.solve(a, b), (A, B)),
    ("eigh", lambda a: fnp.linalg.eigh(a), (SPD,)),
    ("svd", lambda a: fnp.linalg.svd(a), (TALL,)),
    ("qr", lambda a: fnp.linalg.qr(a), (TALL,)),
])
def test_traces_to_the_custom_calls_jax_emits(name, fn, args):
    jax_fn = {"cholesky": jnp.linalg.cholesky, "solve": jnp.linalg.solve,
              "eigh": jnp.linalg.eigh, "svd": jnp.linalg.svd, "qr": jnp.linalg.qr}[name]
    ours = flowjit.jit(fn).lower(*args).as_text()
    theirs = jax.jit(jax_fn).lower(*args).as_text(dialect="hlo")
    # solve and qr carry their own gradient rules (a custom_vjp holding the same primal),
    # whose backward adds triangular solves.
    if name in ("solve", "qr"):
        assert _lapack_targets(theirs) <= _lapack_targets(ours)
    else:
        assert _lapack_targets(ours) == _lapack_targets(theirs)
    assert "operand_layout_constraints" in ours and "backend_config={" in ours


@pytest.mark.parametrize("call, message", [
    (lambda: fnp.linalg.cholesky(np.ones((2, 3), np.float32)), r"square matrices .*\(2, 3\)"),
    (lambda: fnp.linalg.inv(np.ones(3, np.float32)), r"\(\.\.\., M, N\), got shape \(3,\)"),
    (lambda: fnp.linalg.solve(np.eye(3, dtype=np.float32), np.ones((4, 2), np.float32)),
     r"b needs 3 rows"),
    (lambda: fnp.linalg.qr(np.eye(2, dtype=np.float32), mode="economic"), "unsupported mode"),
    (lambda: fnp.linalg.cholesky(np.eye(2, dtype=np.float16)), "float32 or float64"),
])
def test_bad_input_is_a_clear_error_at_the_users_line(call, message):
    with pytest.raises((ShapeError, ValueError, TypeError), match=message) as info:
        call()
    assert "test_linalg_api.py" in str(info.value)


EMPTY = {
    "cholesky": lambda m: m.linalg.cholesky(np.zeros((0, 0), np.float32)),
    "inv": lambda m: m.linalg.inv(np.zeros((2, 0, 0), np.float32)),
    "det": lambda m: m.linalg.det(np.zeros((0, 0), np.float32)),
    "solve": lambda m: m.linalg.solve(np.zeros((0, 0), np.float32), np.zeros((0, 2), np.float32)),
    "svd": lambda m: m.linalg.svd(np.zeros((0, 3), np.float32), full_matrices=False)[1],
    "qr": lambda m: tuple(m.linalg.qr(np.zeros((3, 0), np.float32))),
    "eigh": lambda m: m.linalg.eigh(np.zeros((2, 0, 0), np.float32))[0],
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_matrices_give_jaxs_shapes_and_values(name):
    case = EMPTY[name]
    _close(flowjit.jit(lambda: case(fnp))(), case(jnp))


def test_float64_runs_the_d_routines_at_float64_accuracy(x64):
    rng = np.random.default_rng(3)
    m = rng.normal(size=(3, 5, 5))
    spd = m @ np.swapaxes(m, -1, -2) + 5 * np.eye(5)
    b = rng.normal(size=(3, 5, 2))
    program = flowjit.jit(lambda a, b: (fnp.linalg.cholesky(a), fnp.linalg.solve(a, b),
                                        fnp.linalg.eigvalsh(a), fnp.linalg.det(a)))
    text = program.lower(spd, b).as_text()
    assert "lapack_dpotrf_ffi" in text and "lapack_sgetrf_ffi" not in text
    chol, x, values, det = program(spd, b)
    np.testing.assert_allclose(chol, np.linalg.cholesky(spd), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(spd, b), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(spd), rtol=1e-12)
    np.testing.assert_allclose(det, np.linalg.det(spd), rtol=1e-11)
