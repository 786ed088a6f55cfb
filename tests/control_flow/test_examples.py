"""The control-flow and random examples do what they say, checked against Python loops,
finite differences and the binomial error of a Monte Carlo count."""
import math
import os
import sys

import numpy as np
from hypothesis import given, settings, strategies as st

import flowjit
from flowjit import random, scan
from tests.control_flow.helpers import check

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))

import collatz  # noqa: E402
import monte_carlo_pi  # noqa: E402
import rnn_scan  # noqa: E402


def test_collatz_example_matches_the_python_loop():
    for start in (1, 27, 871):
        assert int(collatz.compiled(np.int32(start))) == collatz.python_collatz_steps(start)


def test_rnn_scan_example_forward_and_gradient(x64):
    rnn_scan.main()  # asserts forward vs numpy, gradient vs unrolled and finite differences


def test_monte_carlo_pi_is_within_five_standard_errors():
    estimate = float(monte_carlo_pi.estimate_pi(random.key(1)))
    n = monte_carlo_pi.BATCHES * monte_carlo_pi.POINTS
    p = math.pi / 4
    assert abs(estimate - math.pi) < 5 * 4 * math.sqrt(p * (1 - p) / n)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 6), st.booleans(), st.integers(0, 2 ** 31 - 1))
def test_scan_matches_a_python_loop_for_any_length(length, reverse, seed):
    xs = np.random.default_rng(seed).standard_normal((length, 2))

    def f(xs):
        return scan(lambda c, x: (c * 0.5 + x, c.sum() - x[0]), np.zeros(2), xs, reverse=reverse)
    carry, ys = np.zeros(2), [0.0] * length
    for i in (reversed(range(length)) if reverse else range(length)):
        carry, ys[i] = carry * 0.5 + xs[i], carry.sum() - xs[i][0]
    with flowjit.config.override("enable_x64", True):   # float64 at float64 tolerances
        check(f, (carry, np.array(ys, np.float64).reshape(length)), xs, rtol=1e-12,
              atol=1e-12)


def test_random_draws_inside_loops_are_the_eager_ones():
    def f(key):
        return flowjit.fori_loop(0, 4, lambda i, total: total + random.normal(
            random.fold_in(key, i), (3,)), np.zeros(3, np.float32))
    key = random.key(8)
    np.testing.assert_allclose(flowjit.jit(f)(key), f(key), rtol=1e-5, atol=1e-6)
