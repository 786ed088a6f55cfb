"""while_loop and fori_loop against plain Python loops: eager, reference, compiled O0/O2."""
import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import flowjit
import flowjit.numpy as fnp
from flowjit import cond, fori_loop, while_loop
from tests.control_flow.helpers import check, lowered_module


def collatz_steps(a):
    def step(state):
        a, n = state
        return fnp.where(a % 2 == 0, a // 2, 3 * a + 1), n + 1
    return while_loop(lambda state: state[0] != 1, step, (a, np.int32(0)))


def python_collatz(a):
    n = 0
    while a != 1:
        a = a // 2 if a % 2 == 0 else 3 * a + 1
        n += 1
    return a, n


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 10_000))
def test_collatz_matches_python(a):
    check(collatz_steps, python_collatz(a), np.int32(a))


def test_zero_trip_while_returns_init():
    check(collatz_steps, (1, 0), np.int32(1))


def test_while_with_pytree_carry():
    Point = collections.namedtuple("Point", "x y")

    def f(v, limit):
        def body(s):
            return {"p": Point(s["p"].x * 2, s["p"].y - 1), "k": [s["k"][0] + 1]}
        return while_loop(lambda s: s["k"][0] < limit, body,
                          {"p": Point(v, v.sum()), "k": [np.int32(0)]})
    v = np.arange(3, dtype=np.float32)
    expected = {"p": Point(v * 2 ** 5, v.sum() - 5), "k": [5]}
    check(f, expected, v, np.int32(5))


def test_while_captures_outer_values_in_body_and_cond():
    def f(x, step, limit):
        # `step` is used in the body, `limit` in the condition, `x` in both.
        return while_loop(lambda s: s.sum() < limit + x[0], lambda s: s + step * x, x)
    x = np.array([1.0, 2.0], np.float32)
    s = x.copy()
    while s.sum() < 20 + x[0]:
        s = s + 0.5 * x
    check(f, s, x, np.float32(0.5), np.float32(20))
    module = lowered_module(f, x, np.float32(0.5), np.float32(20))
    loop = next(i for i in module.entry.instructions if i.opcode == "while")
    # XLA's form: body and condition take one tuple parameter, and the outer values they
    # close over ride in the loop state after the carry.
    for comp in (loop.calls["body"], loop.calls["condition"]):
        assert [p.shape for p in comp.parameters] == [loop.shape]
    assert len(loop.shape.elements) > 1


def test_fori_loop_static_bounds_marks_trip_count_and_counts_first():
    def f(x):
        return fori_loop(2, 7, lambda i, acc: acc * 2 + i, x)
    acc = np.float64(1.5)
    for i in range(2, 7):
        acc = acc * 2 + i
    check(f, acc, np.float64(1.5))
    module = lowered_module(f, np.float64(1.5))
    loop = next(i for i in module.entry.instructions if i.opcode == "while")
    assert loop.attrs["known_trip_count"] == 5
    assert loop.shape.elements[0].dtype.value == "s32"  # the counter is element 0
    assert 'backend_config={"known_trip_count":{"n":"5"}}' in module.to_text()


@pytest.mark.parametrize("lo,hi", [(3, 3), (5, 2), (0, 1), (-3, 4)])
def test_fori_loop_traced_bounds(lo, hi):
    def f(lo, hi, x):
        return fori_loop(lo, hi, lambda i, v: v + i.astype(np.float32) * v, x)
    v = np.float32(1.0)
    for i in range(lo, hi):
        v = v + i * v
    check(f, v, np.int32(lo), np.int32(hi), np.float32(1.0))
    loop = next(i for i in lowered_module(f, np.int32(lo), np.int32(hi), np.float32(1))
                .entry.instructions if i.opcode == "while")
    assert "known_trip_count" not in loop.attrs


def test_fori_loop_zero_trip_static():
    check(lambda x: fori_loop(4, 4, lambda i, v: v * 0, x), np.ones(3), np.ones(3))


def test_nested_loops_capture_the_outer_counter():
    def f(m):
        def outer(i, total):
            def inner(j, t):
                return t + m[i, j] * (j <= i)
            return fori_loop(0, m.shape[1], inner, total)
        return fori_loop(0, m.shape[0], outer, np.float32(0))
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    check(f, np.tril(m).sum(), m)


def test_nested_while_inside_while_with_grandparent_capture():
    def f(x, n):
        def outer_body(s):
            i, acc = s
            # The inner loop closes over `x` (two traces out) and `i` (one out).
            _, inner = while_loop(lambda t: t[0] < i, lambda t: (t[0] + 1, t[1] + x),
                                  (np.int32(0), acc))
            return i + 1, inner
        return while_loop(lambda s: s[0] < n, outer_body, (np.int32(0), x * 0))[1]
    x = np.array([1.0, -2.0], np.float32)
    check(f, x * (0 + 1 + 2 + 3), x, np.int32(4))


def test_cond_inside_while():
    def f(a):
        def step(state):
            a, n = state
            a = cond(a % 2 == 0, lambda a: a // 2, lambda a: 3 * a + 1, a)
            return a, n + 1
        return while_loop(lambda state: state[0] != 1, step, (a, np.int32(0)))
    check(f, python_collatz(27), np.int32(27))


def test_loop_over_a_traced_array_carry_with_weak_scalar_init():
    # The carry starts as a Python float; the body makes it f32, as in a Python loop.
    def f(x):
        return fori_loop(0, 3, lambda i, c: c + x, 0.0)
    result = flowjit.jit(f)(np.float32(1))
    assert result.dtype == np.float32
    check(f, np.float32(3), np.float32(1))


def test_weak_python_scalar_from_body_takes_the_carry_type():
    def f(x):
        return while_loop(lambda c: c < 100, lambda c: fnp.where(c > 50, 1000, c * 3), x)
    assert flowjit.jit(f)(np.int32(2)).dtype == np.int32
    check(f, 1000, np.int32(2))


def test_python_int_carry_that_becomes_a_float_is_promoted_not_truncated(x64):
    def f(x):
        return fori_loop(0, 3, lambda i, c: c + 0.5, 0) + x
    check(f, 1.5, np.float64(0))
    assert flowjit.jit(f)(np.float64(0)).dtype == np.float64


def test_loop_in_a_jitted_function_runs_without_python_in_it():
    calls = []

    def body(i, v):
        calls.append(i)
        return v + 1
    f = flowjit.jit(lambda x: fori_loop(0, 100, body, x))
    assert f(np.float32(0)) == 100
    assert f(np.float32(1)) == 101
    assert len(calls) == 1  # traced once, never called again


def test_retraced_body_with_a_reduction_leaves_a_valid_module():
    # The Python-float carry is promoted to f32 and the body traced again; the first trace's
    # reducer is left unused, which must not upset the verifier, the parser or the compiler.
    def f(x):
        return fori_loop(0, 3, lambda i, c: c + (x * i.astype(np.float32)).sum(), 0.0)
    x = np.arange(4, dtype=np.float32)
    check(f, np.float32(x.sum() * 3), x)
    assert flowjit.jit(f)(x).dtype == np.float32
