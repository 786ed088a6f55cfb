"""scan against Python loops over the leading axis: eager, reference, compiled O0/O2."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import scan
from tests.control_flow.helpers import check, lowered_module


def python_scan(f, carry, xs, reverse=False):
    ys = [None] * len(xs)
    for i in (reversed(range(len(xs))) if reverse else range(len(xs))):
        carry, ys[i] = f(carry, xs[i])
    return carry, np.stack(ys)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_sum(reverse):
    xs = np.arange(1, 7, dtype=np.float32)

    def f(xs):
        return scan(lambda c, x: (c + x, c + x), np.float32(0), xs, reverse=reverse)
    expected = python_scan(lambda c, x: (c + x, c + x), np.float32(0), xs, reverse)
    check(f, expected, xs)
    assert np.allclose(expected[1], np.cumsum(xs[::-1])[::-1] if reverse else np.cumsum(xs))


def test_scan_lowers_to_one_while_with_dynamic_slices():
    xs = np.ones((5, 3), np.float32)
    module = lowered_module(lambda xs: scan(lambda c, x: (c * x, c), np.ones(3, np.float32),
                                            xs), xs)
    loop = next(i for i in module.entry.instructions if i.opcode == "while")
    body_ops = {i.opcode for i in loop.calls["body"].instructions}
    assert {"dynamic-slice", "dynamic-update-slice"} <= body_ops
    assert loop.attrs["known_trip_count"] == 5


def test_rnn_like_scan_with_pytree_carry_xs_and_ys():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4)).astype(np.float32) * 0.5
    xs = {"a": rng.standard_normal((6, 4)).astype(np.float32),
          "b": rng.standard_normal((6,)).astype(np.float32)}

    def cell(w):
        def step(carry, x):
            h, n = carry
            h = np.tanh(h @ w + x["a"] * x["b"]) if isinstance(h, np.ndarray) else \
                fnp.tanh(h @ w + x["a"] * x["b"])
            return (h, n + 1), {"h": h, "norm": (h * h).sum()}
        return step

    def f(w, xs):
        return scan(cell(w), (np.zeros(4, np.float32), np.int32(0)), xs)
    carry, ys = (np.zeros(4, np.float32), 0), []
    for i in range(6):
        carry, y = cell(w)(carry, {"a": xs["a"][i], "b": xs["b"][i]})
        ys.append(y)
    expected = (carry, {"h": np.stack([y["h"] for y in ys]),
                        "norm": np.stack([y["norm"] for y in ys])})
    check(f, expected, w, xs, rtol=1e-5, atol=1e-5)


def test_scan_with_length_and_no_xs():
    def f(x):
        return scan(lambda c, _: (c * 2, c), x, None, length=4)
    check(f, (np.float32(48), np.array([3, 6, 12, 24], np.float32)), np.float32(3))


def test_scan_with_no_ys_and_captured_values():
    def f(xs, scale):
        return scan(lambda c, x: (c + x * scale, None), np.float32(0), xs)
    xs = np.arange(4, dtype=np.float32)
    check(f, (np.float32(12), None), xs, np.float32(2))


def test_zero_length_scan():
    def f(xs):
        return scan(lambda c, x: (c + x.sum(), x * 2), np.float32(1), xs)
    xs = np.zeros((0, 3), np.float32)
    check(f, (np.float32(1), np.zeros((0, 3), np.float32)), xs)


def test_weak_scalar_carry_settles_to_the_xs_type():
    def f(xs):
        return scan(lambda c, x: (c + x, fnp.sin(c)), 0.0, xs)
    xs = np.arange(5, dtype=np.float32)
    eager, compiled = f(xs), flowjit.jit(f)(xs)
    assert eager[1].dtype == compiled[1].dtype == np.float32
    assert eager[0].dtype == compiled[0].dtype == np.float32
    np.testing.assert_allclose(eager[1], compiled[1], rtol=1e-6)


def test_scan_inside_fori_loop_and_fori_inside_scan():
    def f(xs):
        def outer(i, total):
            c, _ = scan(lambda c, x: (c + x * i.astype(np.float32), None), total, xs)
            return c
        return flowjit.fori_loop(0, 3, outer, np.float32(0))
    xs = np.arange(4, dtype=np.float32)
    check(f, np.float32(xs.sum() * (0 + 1 + 2)), xs)

    def g(xs):
        return scan(lambda c, x: (flowjit.fori_loop(0, 3, lambda i, v: v + x, c), c), 0.0 * xs[0],
                    xs)
    expected = python_scan(lambda c, x: (c + 3 * x, c), np.float32(0), xs)
    check(g, expected, xs)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="different lengths"):
        scan(lambda c, x: (c, x), 0.0, (np.ones(3), np.ones(4)))


def test_the_gradient_of_a_scan_does_not_stack_its_output_buffer():
    # The scan's ys buffer is only written by the body, never read by its VJP: the
    # gradient must not save a copy of it per step (an O(T^2) stack, 20x the forward).
    steps, width = 6, 5
    xs = np.linspace(-1.0, 1.0, steps * width).reshape(steps, width).astype(np.float32)

    def loss(w, xs):
        def step(h, x):
            h = fnp.tanh(h * w + x)
            return h, h
        _, hs = scan(step, np.zeros(width, np.float32), xs)
        return (hs * hs).sum()
    compiled = flowjit.jit(flowjit.grad(loss)).lower(np.float32(0.5), xs).compile()
    shapes = [str(i.shape) for c in compiled.module.computations for i in c.instructions]
    assert not any(f"f32[{steps},{steps},{width}]" in s for s in shapes)
    # And the gradient is still right: float64 central differences.
    w, eps = 0.5, 1e-6

    def loss64(w):
        h, total = np.zeros(width), 0.0
        for x in xs.astype(np.float64):
            h = np.tanh(h * w + x)
            total += (h * h).sum()
        return total
    want = (loss64(w + eps) - loss64(w - eps)) / (2 * eps)
    np.testing.assert_allclose(flowjit.grad(loss)(np.float32(w), xs), want, rtol=1e-4)
