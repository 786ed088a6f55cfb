"""Linear regression by gradient descent (seed example): recovers w and b of synthetic data.

    python examples/linear_regression.py
"""

import numpy as np

import flowjit
import flowjit.numpy as fnp


def loss(params, x, y):
    w, b = params
    return fnp.mean((x @ w + b - y) ** 2)


@flowjit.jit
def step(params, x, y):
    grads = flowjit.grad(loss)(params, x, y)
    return tuple(p - 0.1 * g for p, g in zip(params, grads))


def fit(steps: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    true_w = np.array([2.0, -3.0, 0.5], np.float32)
    true_b = np.float32(1.25)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    y = x @ true_w + true_b + 0.01 * rng.standard_normal(256).astype(np.float32)
    params = (np.zeros(3, np.float32), np.zeros((), np.float32))
    for _ in range(steps):
        params = step(params, x, y)
    return params, (true_w, true_b)


if __name__ == "__main__":
    (w, b), (true_w, true_b) = fit()
    print(f"learned w = {np.round(w, 3)}, b = {float(b):.3f}")
    print(f"true    w = {true_w}, b = {float(true_b):.3f}")
