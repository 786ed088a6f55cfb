"""Estimate pi with compiler.random: the share of random points inside the unit circle.

    python examples/monte_carlo_pi.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import compiler  # noqa: E402
import compiler.numpy as fnp  # noqa: E402
from compiler import random  # noqa: E402


@compiler.jit
def estimate_pi(key):
    kx, ky = random.split(key)
    x = random.uniform(kx, (1_000_000,))
    y = random.uniform(ky, (1_000_000,))
    return 4.0 * fnp.mean((x * x + y * y < 1.0).astype(np.float32))


if __name__ == "__main__":
    print(f"pi ~= {float(estimate_pi(random.key(0))):.4f}")
