"""Float64 central differences: the oracle gradient tests compare against."""
import numpy as np


def central_difference(f, xs, k: int = 0, eps: float = 1e-6) -> np.ndarray:
    """d f(*xs) / d xs[k], element by element: (f(x + eps) - f(x - eps)) / (2 eps)."""
    g = np.zeros_like(xs[k])
    for i in np.ndindex(xs[k].shape):
        plus = [a.copy() for a in xs]
        minus = [a.copy() for a in xs]
        plus[k][i] += eps
        minus[k][i] -= eps
        g[i] = (float(f(*plus)) - float(f(*minus))) / (2 * eps)
    return g
