"""vmap composed with the other transformations and with control flow, against JAX on the
same programs: per-example gradients (vmap of grad), grad of vmap, loops with batched and
shared conditions, cond/switch with batched predicates, scan, custom_vjp. A property test
checks vmap of random programs against a Python loop that stacks per-example results."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import flowjit
import flowjit.numpy as fnp

from tests.compiler.test_vmap import FLOWJIT, JAX, assert_same, check, indices, normal

jax = pytest.importorskip("jax")
jnp = jax.numpy

pytestmark = pytest.mark.usefixtures("no_x64")


def mlp_loss(np_, m):
    def loss(params, x, y):
        for w, b in params[:-1]:
            x = np_.maximum(x @ w + b, 0)
        w, b = params[-1]
        logits = x @ w + b
        return m.nn.logsumexp(logits) - logits[y]
    return loss


MLP_PARAMS = [(normal(8, 16), normal(16)), (normal(16, 16), normal(16)), (normal(16, 4),
                                                                        normal(4))]


def test_per_example_gradients_of_the_mlp():
    def make(np_, lax, m):
        return m.grad(mlp_loss(np_, m))
    check(make, (MLP_PARAMS, normal(6, 8), indices(6, low=0, high=4)), in_axes=(None, 0, 0))


def test_vmap_of_a_jitted_per_example_gradient():
    def make(np_, lax, m):
        return m.jit(m.grad(mlp_loss(np_, m)))
    check(make, (MLP_PARAMS, normal(6, 8), indices(6, low=0, high=4)), in_axes=(None, 0, 0),
          jit=False)


def test_per_example_gradients_of_a_convolution_and_a_max_pool():
    def make(np_, lax, m):
        def loss(w, x):
            y = np_.tanh(lax.conv_general_dilated(x[None], w, (2, 2), "SAME"))
            return (lax.reduce_window(y, -np_.inf, lax.max, (1, 1, 2, 2), (1, 1, 1, 1),
                                      "VALID") ** 2).sum()
        return m.grad(loss, argnums=(0, 1))
    check(make, (normal(2, 3, 3, 3), normal(4, 3, 6, 6)), in_axes=(None, 0), eager=False)


def test_grad_of_vmap_equals_the_gradient_of_the_batched_loss():
    def make(np_, lax, m):
        def batch_loss(params, x, y):
            return m.vmap(mlp_loss(np_, m), in_axes=(None, 0, 0))(params, x, y).mean()
        return m.grad(batch_loss)
    args = (MLP_PARAMS, normal(6, 8), indices(6, low=0, high=4))
    want = jax.jit(make(*JAX))(*args)
    assert_same(make(*FLOWJIT)(*args), want)
    assert_same(flowjit.jit(make(*FLOWJIT))(*args), want)


def test_grad_of_vmap_of_a_loop_and_a_cond():
    def make(np_, lax, m):
        def loss(w, xs):
            def one(x):
                x = lax.fori_loop(0, 3, lambda i, c: np_.tanh(c @ w), x)
                return lax.cond(x.sum() > 0, lambda v: np_.sin(v * w[0]), lambda v: v * v, x)
            return m.vmap(one)(xs).sum()
        return m.grad(loss)
    args = (normal(3, 3), normal(5, 3))
    assert_same(flowjit.jit(make(*FLOWJIT))(*args), jax.jit(make(*JAX))(*args), rtol=1e-4,
                atol=1e-5)


def test_while_loop_with_a_batched_condition_runs_each_example_its_own_trip_count():
    def make(np_, lax, m):
        def f(x):
            return lax.while_loop(lambda c: c[0] < 10, lambda c: (c[0] + 1, c[1] * 1.5),
                                  (x.astype(np_.int32), np_.float32(1.0)))
        return f
    check(make, (np.array([1., 5., 9., 12.], np.float32),))


def test_while_loop_with_a_shared_condition():
    def make(np_, lax, m):
        return lambda x: lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * 1.5),
                                        (0, x))
    check(make, (normal(4, 3),))


def test_fori_loop_with_shared_and_batched_bounds():
    def shared(np_, lax, m):
        return lambda x, w: lax.fori_loop(0, 3, lambda i, c: np_.tanh(c @ w), x)
    check(shared, (normal(4, 3), normal(3, 3)), in_axes=(0, None))

    def batched(np_, lax, m):
        return lambda n, x: lax.fori_loop(0, n, lambda i, c: c * 2.0 + i, x)
    check(batched, (np.array([1, 3, 0, 2], np.int32), normal(4, 3)))


def test_scan_over_batched_sequences_and_batched_carries():
    def make(np_, lax, m):
        return lambda xs, h: lax.scan(lambda c, x: (np_.tanh(c + x), c.sum()), h, xs)
    check(make, (normal(4, 5, 3), normal(3)), in_axes=(0, None))
    check(make, (normal(5, 3), normal(4, 3)), in_axes=(None, 0))


def test_cond_with_batched_shared_and_mixed_operands():
    def make(np_, lax, m):
        return lambda p, x: lax.cond(p > 0, lambda x: x * 2, lambda x: x - 1, x)
    check(make, (normal(4), normal(4, 3)))
    check(make, (np.float32(1), normal(4, 3)), in_axes=(None, 0))
    check(make, (normal(4), normal(3)), in_axes=(0, None))


def test_cond_returning_a_tuple_under_a_batched_predicate():
    def make(np_, lax, m):
        return lambda p, x: lax.cond(p, lambda x: (x, x.sum()), lambda x: (x * 2, x.max()), x)
    check(make, (np.array([True, False, True]), normal(3, 4)))


def test_vmap_inside_a_loop_body_closing_over_a_shared_value():
    def make(np_, lax, m):
        return lambda x, w: lax.fori_loop(
            0, 3, lambda i, c: m.vmap(lambda row: np_.tanh(row * w))(c), x)
    check(make, (normal(4, 3, 2), normal(2)), in_axes=(0, None))


def test_switch_with_a_batched_index_out_of_range_clamps():
    def make(np_, lax, m):
        return lambda i, x: lax.switch(i, [lambda x: x * 2, lambda x: x - 1, np_.sin], x)
    check(make, (np.array([0, 2, 1, 5, -1], np.int32), normal(5, 3)))


def test_custom_vjp_under_vmap_keeps_its_rule():
    def make(np_, lax, m):
        @m.custom_vjp
        def f(x, y):
            return np_.sin(x) * y

        def fwd(x, y):
            return np_.sin(x) * y, (np_.cos(x), y, x)

        def bwd(res, g):
            cos, y, x = res
            return 2 * cos * g * y, g * np_.sin(x)     # not the true derivative: the rule's
        f.defvjp(fwd, bwd)
        return lambda x, y: (f(x, y), m.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(x, y))
    check(make, (normal(4, 3), normal(3)), in_axes=(0, None))


def test_custom_vjp_with_a_tuple_result_under_vmap():
    def make(np_, lax, m):
        @m.custom_vjp
        def f(x):
            return np_.sin(x), np_.cos(x)

        def fwd(x):
            return (np_.sin(x), np_.cos(x)), x

        def bwd(x, g):
            return (g[0] * np_.cos(x) - 3 * g[1] * np_.sin(x),)
        f.defvjp(fwd, bwd)
        return lambda x: (f(x), m.grad(lambda x: f(x)[0].sum() + f(x)[1].sum())(x))
    check(make, (normal(4, 3),))


# --- property: vmap of a random program equals a loop over the examples -----------------

UNARY = [fnp.tanh, fnp.exp, fnp.sin, fnp.abs, lambda v: v * v]
BINARY = [fnp.add, fnp.multiply, fnp.maximum, fnp.subtract]


@st.composite
def programs(draw):
    """A few steps of elementwise ops, reductions and products on two operands (x mapped,
    w mapped or shared), as a list of (kind, choice) steps."""
    steps = draw(st.lists(st.tuples(st.sampled_from(["unary", "binary", "dot", "sum"]),
                                    st.integers(0, 3)), min_size=1, max_size=5))
    return steps


def _run(steps, x, w):
    """The program of `steps` on one example: x: [3, 3], w: [3, 3]."""
    value = x
    for kind, choice in steps:
        if kind == "unary":
            value = UNARY[choice](value)
        elif kind == "binary":
            value = BINARY[choice](value, w)
        elif kind == "dot":
            value = fnp.tanh(value @ w if choice % 2 else w @ value)
        elif kind == "sum":
            value = fnp.broadcast_to(value.sum(axis=choice % 2, keepdims=True), (3, 3))
    return value


@settings(max_examples=20, deadline=None)
@given(steps=programs(), shared=st.booleans(), axis=st.integers(0, 2), seed=st.integers(0, 99))
def test_vmap_of_random_programs_equals_a_loop_over_examples(steps, shared, axis, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 3, 3)).astype(np.float32) * 0.5
    w = rng.standard_normal((3, 3) if shared else (3, 3, 3)).astype(np.float32) * 0.5
    w_axis = None if shared else 0
    got = flowjit.vmap(lambda x, w: _run(steps, x, w), in_axes=(axis, w_axis))(x, w)
    examples = [np.asarray(_run(steps, np.take(x, k, axis=axis), w if shared else w[k]))
                for k in range(3)]
    np.testing.assert_allclose(np.asarray(got), np.stack(examples), rtol=1e-5, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(steps=programs(), shared=st.booleans(), axis=st.integers(0, 2))
def test_the_batched_module_of_random_programs_prints_and_parses_back(steps, shared, axis):
    from flowjit.ir.parser import parse_module
    x = np.zeros((3, 3, 3), np.float32)
    w = np.zeros((3, 3) if shared else (3, 3, 3), np.float32)
    mapped = flowjit.vmap(lambda x, w: _run(steps, x, w), in_axes=(axis, None if shared else 0))
    text = flowjit.jit(mapped).lower(x, w).as_text()
    assert parse_module(text).to_text() == text
