"""Estimate pi with flowjit.random: the share of random points inside the unit circle.

    python examples/monte_carlo_pi.py

Ten batches of 10**6 points, each drawn from its own key (fold_in of the batch number),
counted in a fori_loop: the loop, the threefry bits and the counting compile to one program.
"""
import math

import numpy as np

import flowjit
import flowjit.numpy as fnp
from flowjit import random

BATCHES, POINTS = 10, 1_000_000


@flowjit.jit
def estimate_pi(key):
    def batch(i, inside):
        kx, ky = random.split(random.fold_in(key, i))
        x = random.uniform(kx, (POINTS,))
        y = random.uniform(ky, (POINTS,))
        return inside + fnp.sum(x * x + y * y < 1.0)  # numpy sums booleans as int64
    inside = flowjit.fori_loop(0, BATCHES, batch, np.int64(0))
    return 4.0 * inside.astype(np.float64) / (BATCHES * POINTS)


if __name__ == "__main__":
    estimate = float(estimate_pi(random.key(0)))
    # The count is binomial: its standard error is 4 * sqrt(p (1 - p) / n).
    p = math.pi / 4
    error = 4 * math.sqrt(p * (1 - p) / (BATCHES * POINTS))
    print(f"pi ~= {estimate:.5f} (true {math.pi:.5f}, off by {abs(estimate - math.pi) / error:.1f}"
          " standard errors)")
