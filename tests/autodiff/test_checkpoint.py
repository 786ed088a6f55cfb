"""flowjit.checkpoint / remat: values and gradients as jax.checkpoint's, and the backward
pass recomputes instead of storing (peak temporary memory of the compiled gradient falls)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.ir.parser import parse_module

# JAX is compared under its default 32-bit types (some tests turn its x64 on process-wide).
pytestmark = pytest.mark.usefixtures("no_x64")

rng = np.random.default_rng(0)
WIDTH, BATCH, DEPTH, SEGMENT = 128, 32, 16, 4
WEIGHTS = [(rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
           for _ in range(DEPTH)]
X = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)


def deep_mlp_loss(np_, checkpoint=None, policy=None):
    """A 16-layer tanh MLP, checkpointed in segments of 4 layers when `checkpoint` is given."""
    def segment(ws, x):
        for w in ws:
            x = np_.tanh(x @ w)
        return x
    if checkpoint is not None:
        segment = checkpoint(segment, policy=policy)

    def loss(ws, x):
        for k in range(0, len(ws), SEGMENT):
            x = segment(ws[k:k + SEGMENT], x)
        return (x * x).sum()
    return loss


POLICY_NAMES = ["nothing_saveable", "everything_saveable", "dots_saveable",
                "dots_with_no_batch_dims_saveable"]


@pytest.mark.parametrize("policy", [None] + POLICY_NAMES)
def test_values_and_gradients_match_jax(policy):
    ours = flowjit.checkpoint_policies.__dict__[policy] if policy else None
    theirs = getattr(jax.checkpoint_policies, policy) if policy else None
    f = flowjit.jit(flowjit.value_and_grad(deep_mlp_loss(fnp, flowjit.checkpoint, ours)))
    g = jax.value_and_grad(deep_mlp_loss(jnp, jax.checkpoint, theirs))
    (value, grads), (want_value, want_grads) = f(WEIGHTS, X), g(WEIGHTS, X)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def _temp_bytes(loss):
    compiled = flowjit.jit(flowjit.grad(loss), opt_level=2).lower(WEIGHTS, X).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_nothing_saveable_lowers_peak_memory():
    """Without checkpointing the backward pass keeps all 16 layers' activations; with
    4-layer segments it keeps the 4 segment inputs and one segment's recomputed layers."""
    activation = BATCH * WIDTH * 4
    plain = _temp_bytes(deep_mlp_loss(fnp))
    remat = _temp_bytes(deep_mlp_loss(fnp, flowjit.checkpoint))
    assert plain >= DEPTH * activation
    assert remat <= plain * 0.6, (plain, remat)
    everything = _temp_bytes(deep_mlp_loss(fnp, flowjit.checkpoint,
                                           flowjit.checkpoint_policies.everything_saveable))
    assert everything == plain    # saving everything is no checkpoint at all


def test_the_backward_pass_recomputes_the_forward():
    """The compiled value and gradient of a checkpointed function run its tanh twice (for
    the value, and recomputed for the gradient, marked remat=true); without prevent_cse,
    CSE merges them back into one."""
    f = lambda x: fnp.sin(fnp.tanh(x)).sum()   # noqa: E731
    x = np.linspace(-1, 1, 8).astype(np.float32)

    def optimized(prevent_cse):
        fun = flowjit.value_and_grad(flowjit.checkpoint(f, prevent_cse=prevent_cse))
        return flowjit.jit(fun, opt_level=1).lower(x).compile().as_text()
    text = optimized(True)
    assert text.count(" tanh(") == 2 and "remat=true" in text
    assert parse_module(text).to_text() == text   # the mark survives the text
    assert optimized(False).count(" tanh(") == 1
    np.testing.assert_allclose(flowjit.grad(flowjit.checkpoint(f))(x),
                               jax.grad(lambda x: jnp.sin(jnp.tanh(x)).sum())(x), rtol=1e-6)


def test_static_argnums_jvp_and_remat_alias():
    def f(n, x):
        for _ in range(n):
            x = fnp.sin(x) * 1.5
        return x

    def g(n, x):
        for _ in range(n):
            x = jnp.sin(x) * 1.5
        return x
    x = np.float32(0.4)
    ours = flowjit.remat(f, static_argnums=0)
    theirs = jax.checkpoint(g, static_argnums=0)
    np.testing.assert_allclose(ours(3, x), theirs(3, x), rtol=1e-6)
    np.testing.assert_allclose(flowjit.grad(lambda x: ours(3, x))(x),
                               jax.grad(lambda x: theirs(3, x))(x), rtol=1e-6)
    np.testing.assert_allclose(flowjit.jvp(lambda x: ours(3, x), (x,), (np.float32(1),)),
                               jax.jvp(lambda x: theirs(3, x), (x,), (np.float32(1),)),
                               rtol=1e-6)


def test_closure_over_a_traced_value_gets_its_gradient():
    def loss(np_, checkpoint):
        def f(w, x):
            inner = checkpoint(lambda x: np_.tanh(x * w))   # closes over w
            return inner(x).sum()
        return f
    w, x = np.float32(0.7), np.linspace(-1, 1, 5).astype(np.float32)
    ours = flowjit.jit(flowjit.grad(loss(fnp, flowjit.checkpoint), argnums=(0, 1)))(w, x)
    theirs = jax.grad(loss(jnp, jax.checkpoint), argnums=(0, 1))(w, x)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(TypeError, match="checkpoint policy .* is not supported"):
        flowjit.checkpoint(lambda x: x, policy=lambda *a, **k: True)
