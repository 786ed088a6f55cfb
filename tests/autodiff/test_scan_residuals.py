"""The gradient of a loop keeps the step's costly values (residuals) from the forward loop
instead of computing the step again in the backward loop, as JAX's scan does."""
import numpy as np

import flowjit
import flowjit.numpy as jnp
from flowjit import lax
from flowjit.passes import optimize
from tests.finite_differences import central_difference

F32 = np.float32


def loss(w, h0, xs):
    def step(h, x):
        h = jnp.tanh(h @ w + x)
        return h, h
    return lax.scan(step, h0, xs)[1].sum()


def test_the_backward_loop_does_not_recompute_the_steps_product():
    rng = np.random.default_rng(0)
    w = 0.3 * rng.standard_normal((6, 6)).astype(F32)
    h0, xs = rng.standard_normal((2, 6)).astype(F32), rng.standard_normal((5, 2, 6)).astype(F32)
    module, _ = optimize(flowjit.jit(flowjit.grad(loss)).lower(w, h0, xs).module.copy(),
                         opt_level=1)
    loops = [i for i in module.entry.post_order() if i.opcode == "while"]
    assert len(loops) == 2
    products = []
    for loop in loops:
        body = loop.calls["body"]
        products.append(sum(i.opcode == "dot" for i in body.post_order()))
    # forward: h @ w; backward: the two products of its VJP (g @ w.T, h.T @ g), not a third
    assert sorted(products) == [1, 2]


def test_the_gradient_with_residuals_matches_finite_differences():
    rng = np.random.default_rng(1)
    w = 0.3 * rng.standard_normal((4, 4))
    h0, xs = rng.standard_normal((3, 4)), rng.standard_normal((6, 3, 4))

    def f(w):
        h, total = h0, 0.0
        for x in xs:
            h = np.tanh(h @ w + x)
            total += h.sum()
        return total
    want = central_difference(f, [w])
    got = flowjit.jit(flowjit.grad(loss))(w.astype(F32), h0.astype(F32), xs.astype(F32))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
