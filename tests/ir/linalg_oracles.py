"""numpy versions (float64) of the decomposition fixtures (tests/fixtures/linalg_*.hlo)."""
import numpy as np


def _f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


def np_det(a):
    (a,) = _f64(a)
    sign, logabsdet = np.linalg.slogdet(a)
    return [np.linalg.det(a), sign, logabsdet]


def np_eigh(a):
    values, vectors = np.linalg.eigh(a.astype(np.float64))
    return [values, vectors * np.sign(vectors[:1])]


def np_triangular_solve(lower, b):
    lower, b = _f64(np.tril(lower), b)
    return [np.linalg.solve(lower, b), np.linalg.solve(lower.T, b)]


def np_gaussian_loglik_grad(x, mean, factor):
    """Gradients of sum_i log N(x_i; mean, S), S = factor factor^T + I, by the textbook
    formulas: d/dmean = S^-1 sum(d_i); d/dS = (S^-1 D S^-1 - n S^-1) / 2 with
    D = sum(d_i d_i^T); d/dfactor = 2 (d/dS) factor (S is symmetric)."""
    x, mean, factor = _f64(x, mean, factor)
    cov = factor @ factor.T + np.eye(3)
    inverse = np.linalg.inv(cov)
    d = x - mean
    scatter = d.T @ d
    d_cov = 0.5 * (inverse @ scatter @ inverse - len(x) * inverse)
    return [inverse @ d.sum(axis=0), 2 * d_cov @ factor]


ORACLES = {
    "linalg_cholesky": lambda a: [np.linalg.cholesky(a.astype(np.float64))],
    "linalg_solve": lambda a, b: [np.linalg.solve(*_f64(a, b))],
    "linalg_inv": lambda a: [np.linalg.inv(a.astype(np.float64))],
    "linalg_det": np_det,
    "linalg_qr": lambda a: list(np.linalg.qr(a.astype(np.float64))),
    "linalg_eigh": np_eigh,
    "linalg_svd": lambda a: list(np.linalg.svd(a.astype(np.float64), full_matrices=False)),
    "linalg_triangular_solve": np_triangular_solve,
    "linalg_lstsq": lambda a, b: [np.linalg.lstsq(*_f64(a, b), rcond=None)[0]],
    "gaussian_loglik_grad": np_gaussian_loglik_grad,
}
# float32 LAPACK against float64 numpy: a few ulps times the condition number.
TOLERANCE = {name: dict(rtol=2e-5, atol=2e-5) for name in ORACLES}
