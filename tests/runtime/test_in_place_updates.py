"""Updates run in place: a dynamic-update-slice (or scatter) whose operand is dead after it
gets the operand's bytes and writes only its window, in straight-line code and in loop
bodies. Values are checked against numpy; which buffers are shared, against the plan."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import flowjit
import flowjit.numpy as jnp
from flowjit import lax
from flowjit.ir.buffers import flatten_slots, plan_buffers, updated_operand
from flowjit.passes import optimize
from tests.finite_differences import central_difference

F32 = np.float32


def compiled_module(fn, *args):
    module, _ = optimize(flowjit.jit(fn).lower(*args).module.copy(), opt_level=2)
    return module


def updates_in_place(module):
    """(updates, of which planned in place) over every computation of the module."""
    plan, trees = plan_buffers(module)
    total = shared = 0
    for comp in module.computations:
        for inst in comp.instructions:
            k = updated_operand(inst)
            if k is None or id(inst) not in trees:
                continue
            total += 1
            shared += flatten_slots(trees[id(inst)]) == flatten_slots(
                trees[id(inst.operands[k])])
    return total, shared


def stacked_scan(x, w):
    def step(h, _):
        h = jnp.tanh(h @ w)
        return h, h
    return lax.scan(step, x, None, length=12)


def test_a_scan_writes_each_step_into_its_stack_in_place():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 8), dtype=F32), 0.3 * rng.standard_normal((8, 8), dtype=F32)
    total, shared = updates_in_place(compiled_module(stacked_scan, x, w))
    assert total >= 1 and shared == total
    h, hs = flowjit.jit(stacked_scan)(x, w)
    want, stack = x.astype(np.float64), []
    for _ in range(12):
        want = np.tanh(want @ w)
        stack.append(want)
    np.testing.assert_allclose(hs, np.stack(stack), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, want, rtol=1e-5, atol=1e-5)


def test_the_gradient_of_a_scan_accumulates_slices_in_place():
    """d/dxs of a scan over xs adds one slice per step: in place, not a whole stack."""
    def loss(xs, w):
        def step(h, x):
            h = jnp.tanh(h @ w + x)
            return h, h.sum()
        return lax.scan(step, jnp.zeros((3, 5), F32), xs)[1].sum()
    rng = np.random.default_rng(1)
    xs, w = rng.standard_normal((7, 3, 5), dtype=F32), 0.4 * rng.standard_normal((5, 5), dtype=F32)
    module = compiled_module(flowjit.grad(loss), xs, w)
    total, shared = updates_in_place(module)
    assert total >= 2 and shared == total
    got = np.asarray(flowjit.jit(flowjit.grad(loss))(xs, w), np.float64)
    # float64 central differences
    x64, w64 = xs.astype(np.float64), w.astype(np.float64)

    def f(v):
        h, total = np.zeros((3, 5)), 0.0
        for x in v:
            h = np.tanh(h @ w64 + x)
            total += h.sum()
        return total
    want = central_difference(f, [x64])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_an_update_whose_operand_is_read_later_is_not_in_place():
    def f(x, u, i):
        y = lax.dynamic_update_slice(x, u, (i, 0))
        return y, x * 2.0     # x's old value is read after the update
    x = np.arange(12, dtype=F32).reshape(4, 3)
    u = -np.ones((1, 3), F32)
    y, doubled = flowjit.jit(f)(x, u, np.int32(2))
    want = x.copy()
    want[2] = -1
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(doubled, x * 2)


# Straight-line programs of window updates and reads on one array, in any order: each read
# must see exactly the updates before it.
_step = st.tuples(st.sampled_from(["update", "add", "read"]), st.integers(-1, 6),
                  st.integers(-1, 4))


@settings(max_examples=25, deadline=None)
@given(st.lists(_step, min_size=1, max_size=6))
def test_any_sequence_of_window_updates_and_reads_matches_numpy(steps):
    base = np.arange(30, dtype=F32).reshape(6, 5)

    def program(x):
        reads = []
        for k, (kind, i, j) in enumerate(steps):
            if kind == "read":
                reads.append(lax.dynamic_slice(x, (i, j), (2, 2)) * 1.0)
            else:
                patch = jnp.full((2, 2), float(k + 100), F32)
                if kind == "add":
                    patch = lax.dynamic_slice(x, (i, j), (2, 2)) + patch
                x = lax.dynamic_update_slice(x, patch, (i, j))
        return x, reads

    def numpy_program(x):
        x, reads = x.copy(), []
        for k, (kind, i, j) in enumerate(steps):
            # As jax.lax: a negative start counts from the end, then XLA clamps it.
            i, j = i + 6 if i < 0 else i, j + 5 if j < 0 else j
            i, j = min(max(i, 0), 4), min(max(j, 0), 3)
            if kind == "read":
                reads.append(x[i:i + 2, j:j + 2].copy())
            else:
                patch = np.full((2, 2), k + 100, F32)
                if kind == "add":
                    patch = x[i:i + 2, j:j + 2] + patch
                x[i:i + 2, j:j + 2] = patch
        return x, reads
    got, got_reads = flowjit.jit(program)(base)
    want, want_reads = numpy_program(base)
    np.testing.assert_array_equal(got, want)
    for g, w in zip(got_reads, want_reads):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("m, k, n", [(4, 2, 4), (64, 32, 96), (256, 32, 1024)])
def test_a_product_added_to_a_loop_accumulator_is_a_gemm_into_it(m, k, n):
    """acc + a.T @ b_i in a loop (a weight's gradient over time steps): the product is added
    straight into the accumulator's buffer (beta = 1), small (loops) and large (BLAS)."""
    def f(acc, a, b):
        return lax.fori_loop(0, 3, lambda i, c: c + a.T @ (b * i.astype(jnp.float32)), acc)
    rng = np.random.default_rng(m)
    acc = rng.standard_normal((m, n), dtype=F32)
    a, b = rng.standard_normal((k, m), dtype=F32), rng.standard_normal((k, n), dtype=F32)
    total, shared = updates_in_place(compiled_module(f, acc, a, b))
    assert total >= 1 and shared == total
    want = acc.astype(np.float64) + 3 * (a.astype(np.float64).T @ b)
    np.testing.assert_allclose(flowjit.jit(f)(acc, a, b), want, rtol=1e-4, atol=1e-3)
