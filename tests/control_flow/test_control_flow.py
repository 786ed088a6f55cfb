"""Loops and branches compiled into the program agree with plain Python loops."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp


def collatz_steps(a):
    def body(state):
        a, n = state
        return fnp.where(a % 2 == 0, a // 2, 3 * a + 1), n + 1
    return flowjit.while_loop(lambda s: s[0] != 1, body, (a, np.int32(0)))[1]


def python_collatz(a: int) -> int:
    n = 0
    while a != 1:
        a = a // 2 if a % 2 == 0 else 3 * a + 1
        n += 1
    return n


@pytest.mark.parametrize("start", [1, 6, 27, 97])
def test_collatz_while_loop(start, opt_level):
    f = flowjit.jit(collatz_steps, opt_level=opt_level)
    assert int(f(np.int32(start))) == python_collatz(start)
    assert int(collatz_steps(np.int32(start))) == python_collatz(start)   # eagerly


def test_while_loop_is_in_the_ir():
    text = flowjit.jit(collatz_steps).lower(np.int32(5)).as_text()
    assert " while(" in text and "condition=%" in text and "body=%" in text


def test_fori_loop_with_captured_values_and_pytree_carry(opt_level):
    x = np.linspace(0, 1, 4)

    def f(x, scale):
        def body(i, carry):
            v, total = carry
            v = v * scale + x            # closes over x and scale
            return v, total + fnp.sum(v) * i
        return flowjit.fori_loop(0, 7, body, (x, 0.0))
    v, total = flowjit.jit(f, opt_level=opt_level)(x, 0.5)
    ev, et = x.copy(), 0.0
    for i in range(7):
        ev = ev * 0.5 + x
        et += ev.sum() * i
    np.testing.assert_allclose(v, ev)
    np.testing.assert_allclose(total, et)


def test_zero_trip_and_nested_loops(opt_level):
    def f(n, x):
        inner = lambda i, acc: flowjit.fori_loop(0, 3, lambda j, a: a + i * j, acc)  # noqa
        return flowjit.fori_loop(0, n, inner, x)
    g = flowjit.jit(f, opt_level=opt_level)
    assert float(g(np.int32(0), 5.0)) == 5.0
    expected = 5.0 + sum(i * j for i in range(4) for j in range(3))
    assert float(g(np.int32(4), 5.0)) == expected


def test_cond_and_switch(opt_level):
    f = flowjit.jit(lambda p, x: flowjit.cond(p, lambda x: (x * 2, x.sum()),
                                                lambda x: (x - 1, x.max()), x),
                     opt_level=opt_level)
    x = np.arange(4.0)
    a, b = f(np.bool_(True), x)
    np.testing.assert_array_equal(a, x * 2)
    assert float(b) == 6.0
    a, b = f(np.bool_(False), x)
    np.testing.assert_array_equal(a, x - 1)
    assert float(b) == 3.0
    branches = [lambda x: x, lambda x: x * 10, lambda x: -x]
    s = flowjit.jit(lambda k, x: flowjit.switch(k, branches, x), opt_level=opt_level)
    for k, want in [(0, x), (1, x * 10), (2, -x), (7, -x), (-3, x)]:   # index is clamped
        np.testing.assert_array_equal(s(np.int32(k), x), want)


def test_cond_inside_while(opt_level):
    def f(x):
        def body(state):
            i, v = state
            v = flowjit.cond(i % 2 == 0, lambda v: v + 1.0, lambda v: v * 2.0, v)
            return i + 1, v
        return flowjit.while_loop(lambda s: s[0] < 6, body, (np.int32(0), x))[1]
    v = 1.0
    for i in range(6):
        v = v + 1 if i % 2 == 0 else v * 2
    assert float(flowjit.jit(f, opt_level=opt_level)(1.0)) == v


def test_scan_matches_a_python_loop(opt_level, x64):
    rng = np.random.default_rng(0)
    h0 = rng.standard_normal(3)
    xs = rng.standard_normal((6, 3))
    w = rng.standard_normal((3, 3)) * 0.4

    def rnn(h, xs, w):
        return flowjit.scan(lambda h, x: (fnp.tanh(h @ w + x), fnp.sum(h)), h, xs)
    for reverse in (False, True):
        f = flowjit.jit(lambda h, xs, w: flowjit.scan(
            lambda h, x: (fnp.tanh(h @ w + x), fnp.sum(h)), h, xs, reverse=reverse),
            opt_level=opt_level)
        carry, ys = f(h0, xs, w)
        h, expected = h0, []
        order = range(5, -1, -1) if reverse else range(6)
        for i in order:
            expected.append(h.sum())
            h = np.tanh(h @ w + xs[i])
        if reverse:
            expected = expected[::-1]
        np.testing.assert_allclose(carry, h, rtol=1e-12)
        np.testing.assert_allclose(ys, expected, rtol=1e-12)
