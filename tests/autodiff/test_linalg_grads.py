"""Gradients of the decompositions: against float64 central differences of numpy's own
versions, and against jax.grad on the same inputs. Each loss mixes every output with fixed
weights, so a wrong cotangent for any output shows."""
from __future__ import annotations

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
import flowjit.scipy.linalg as fsl
from tests.finite_differences import central_difference

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jsl = pytest.importorskip("jax.scipy.linalg")
# JAX's 32-bit defaults, as flowjit's (other tests turn JAX's x64 on for the process).
pytestmark = pytest.mark.usefixtures("no_x64")

RNG = np.random.default_rng(11)
SQUARE = (RNG.normal(size=(4, 4)) + 3 * np.eye(4)).astype(np.float32)
_M = RNG.normal(size=(4, 4))
SPD = (_M @ _M.T + 4 * np.eye(4)).astype(np.float32)
TALL = RNG.normal(size=(5, 3)).astype(np.float32)
RHS = RNG.normal(size=(4, 2)).astype(np.float32)
W4 = RNG.normal(size=(4, 4))
W53 = RNG.normal(size=(5, 3))
W33 = RNG.normal(size=(3, 3))
W2 = RNG.normal(size=(4, 2))


def _mT(x):
    return np.swapaxes(x, -1, -2)


# (name, loss on (module, scipy module), numpy float64 version, arguments)
CASES = [
    ("cholesky", lambda m, s: lambda a: m.sum(m.linalg.cholesky(a) * W4),
     lambda a: np.sum(np.linalg.cholesky((a + a.T) / 2) * W4), (SPD,)),
    ("solve_triangular", lambda m, s: lambda a, b: m.sum(
        s.solve_triangular(a, b, lower=True, trans=1) * W2),
     lambda a, b: np.sum(np.linalg.solve(np.tril(a).T, b) * W2), (SPD, RHS)),
    ("solve_triangular_unit_upper", lambda m, s: lambda a, b: m.sum(
        s.solve_triangular(a, b, unit_diagonal=True) * W2),
     lambda a, b: np.sum(np.linalg.solve(np.triu(a, 1) + np.eye(4), b) * W2), (SQUARE, RHS)),
    ("solve", lambda m, s: lambda a, b: m.sum(m.linalg.solve(a, b) * W2),
     lambda a, b: np.sum(np.linalg.solve(a, b) * W2), (SQUARE, RHS)),
    ("inv", lambda m, s: lambda a: m.sum(m.linalg.inv(a) * W4),
     lambda a: np.sum(np.linalg.inv(a) * W4), (SQUARE,)),
    ("det", lambda m, s: lambda a: m.linalg.det(a), np.linalg.det, (SQUARE,)),
    ("slogdet", lambda m, s: lambda a: m.linalg.slogdet(a)[1],
     lambda a: np.linalg.slogdet(a)[1], (SQUARE,)),
    ("eigh", lambda m, s: lambda a: m.sum(m.linalg.eigh(a)[0] * W4[0])
     + m.sum(m.abs(m.linalg.eigh(a)[1]) * W4),
     lambda a: np.sum(np.linalg.eigh((a + a.T) / 2)[0] * W4[0])
     + np.sum(np.abs(np.linalg.eigh((a + a.T) / 2)[1]) * W4), (SPD,)),
    ("svd", lambda m, s: lambda a: m.sum(m.linalg.svd(a, full_matrices=False)[1] * W33[0])
     + m.sum(m.abs(m.linalg.svd(a, full_matrices=False)[0]) * W53)
     + m.sum(m.abs(m.linalg.svd(a, full_matrices=False)[2]) * W33),
     lambda a: np.sum(np.linalg.svd(a, full_matrices=False)[1] * W33[0])
     + np.sum(np.abs(np.linalg.svd(a, full_matrices=False)[0]) * W53)
     + np.sum(np.abs(np.linalg.svd(a, full_matrices=False)[2]) * W33), (TALL,)),
    ("qr", lambda m, s: lambda a: m.sum(m.linalg.qr(a)[0] * W53)
     + m.sum(m.linalg.qr(a)[1] * W33),
     lambda a: np.sum(np.linalg.qr(a)[0] * W53) + np.sum(np.linalg.qr(a)[1] * W33), (TALL,)),
]
SAMPLES = RNG.normal(size=(6, 3)).astype(np.float32)


def _gaussian_loglik(m, s):
    """Log-likelihood of SAMPLES under N(mean, factor factor^T + I), up to a constant:
    cholesky, a triangular solve and the log-determinant from the factor's diagonal."""
    def loglik(mean, factor):
        cov = factor @ factor.T + m.eye(3, dtype=np.float32)
        chol = m.linalg.cholesky(cov)
        z = s.solve_triangular(chol, (SAMPLES - mean).T, lower=True)
        return (-0.5 * m.sum(z * z)
                - SAMPLES.shape[0] * m.sum(m.log(m.diagonal(chol))))
    return loglik


def _np_gaussian_loglik(mean, factor):
    cov = factor @ factor.T + np.eye(3)
    d = SAMPLES - mean
    return (-0.5 * np.sum(d * np.linalg.solve(cov, d.T).T)
            - 0.5 * SAMPLES.shape[0] * np.linalg.slogdet(cov)[1])


CASES.append(("gaussian_loglik", _gaussian_loglik, _np_gaussian_loglik,
              (np.array([0.1, -0.2, 0.3], np.float32),
               (RNG.normal(size=(3, 3)) * 0.5).astype(np.float32))))


@pytest.mark.parametrize("name, loss, numpy_loss, args", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences_and_jax(name, loss, numpy_loss, args):
    argnums = tuple(range(len(args)))
    ours = flowjit.jit(flowjit.grad(loss(fnp, fsl), argnums=argnums))(*args)
    theirs = jax.grad(loss(jnp, jsl), argnums=argnums)(*args)
    wide = [a.astype(np.float64) for a in args]
    for k in argnums:
        numeric = central_difference(numpy_loss, wide, k)
        scale = np.max(np.abs(numeric)) + 1e-3
        np.testing.assert_allclose(np.asarray(ours[k]), numeric, atol=2e-4 * scale,
                                   rtol=1e-3, err_msg=f"{name}: d/d arg {k} vs differences")
        np.testing.assert_allclose(np.asarray(ours[k]), np.asarray(theirs[k]),
                                   atol=2e-5 * scale, rtol=1e-4,
                                   err_msg=f"{name}: d/d arg {k} vs jax.grad")


def test_batched_cholesky_gradient_is_each_matrixs_own():
    batch = np.stack([SPD, SPD + np.eye(4, dtype=np.float32)])
    weights = np.stack([W4, -W4]).astype(np.float32)
    grad = flowjit.jit(flowjit.grad(lambda a: fnp.sum(fnp.linalg.cholesky(a) * weights)))
    together = np.asarray(grad(batch))
    for k in range(2):
        alone = jax.grad(lambda a: jnp.sum(jnp.linalg.cholesky(a) * weights[k]))(batch[k])
        np.testing.assert_allclose(together[k], np.asarray(alone), rtol=1e-4, atol=1e-6)


def test_gradient_of_singular_values_alone_is_a_clear_error():
    grad = flowjit.jit(flowjit.grad(lambda a: fnp.sum(fnp.linalg.svd(a, compute_uv=False))))
    with pytest.raises(Exception, match="full_matrices=False"):
        grad(TALL)
