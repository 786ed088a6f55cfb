"""Slices' cotangents join as one concatenate (no adds of zero-padded pieces), and a fused
concatenate runs one loop per part. Values against numpy and JAX."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as jnp
from flowjit.passes import optimize

F32 = np.float32


def gates(z):
    """An LSTM cell's gate split: four slices of the last axis, each transformed."""
    h = z.shape[-1] // 4
    i, f, g, o = z[:, :h], z[:, h:2 * h], z[:, 2 * h:3 * h], z[:, 3 * h:]
    return (jnp.tanh(i) * f + g * g - o).sum()


@pytest.mark.parametrize("rows, width", [(3, 8), (64, 1024)])
def test_the_gradient_of_four_slices_is_one_concatenate(rows, width):
    z = np.random.default_rng(rows).standard_normal((rows, width)).astype(F32)
    module = flowjit.jit(flowjit.grad(gates)).lower(z).module
    opcodes = [i.opcode for i in module.entry.post_order()]   # what the result needs
    assert "concatenate" in opcodes and "pad" not in opcodes
    got = flowjit.jit(flowjit.grad(gates))(z)
    h = width // 4
    i, f, g, o = (z[:, k * h:(k + 1) * h].astype(np.float64) for k in range(4))
    want = np.concatenate([(1 - np.tanh(i) ** 2) * f, np.tanh(i), 2 * g, -np.ones_like(o)],
                          axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gaps_between_pieces_are_zeros():
    def f(z):
        return (z[:, 1:3] ** 2).sum() + (z[:, 5:6] * 3.0).sum()
    z = np.arange(16, dtype=F32).reshape(2, 8)
    want = np.zeros((2, 8))
    want[:, 1:3] = 2 * z[:, 1:3]
    want[:, 5:6] = 3
    np.testing.assert_array_equal(flowjit.jit(flowjit.grad(f))(z), want)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("rows", [4, 512])
def test_a_fused_concatenate_matches_numpy(axis, rows):
    def f(a, b, c):
        return jnp.concatenate([jnp.exp(a) + 1.0, b * b, jnp.tanh(c) - a], axis=axis)
    rng = np.random.default_rng(axis)
    a, b, c = (rng.standard_normal((rows, 96)).astype(F32) for _ in range(3))
    module, _ = optimize(flowjit.jit(f).lower(a, b, c).module.copy(), opt_level=2)
    fused = [i for i in module.entry.instructions if i.opcode == "fusion"]
    assert any(i.calls["calls"].root.opcode == "concatenate" for i in fused)
    want = np.concatenate([np.exp(a) + 1, b * b, np.tanh(c) - a], axis=axis)
    np.testing.assert_allclose(flowjit.jit(f)(a, b, c), want, rtol=2e-6, atol=2e-6)


def test_jax_agrees_on_the_gate_gradient():
    jax = pytest.importorskip("jax")
    z = np.random.default_rng(7).standard_normal((16, 64)).astype(F32)

    def jax_gates(z):
        h = z.shape[-1] // 4
        i, f, g, o = z[:, :h], z[:, h:2 * h], z[:, 2 * h:3 * h], z[:, 3 * h:]
        return (jax.numpy.tanh(i) * f + g * g - o).sum()
    np.testing.assert_allclose(flowjit.jit(flowjit.grad(gates))(z), jax.grad(jax_gates)(z),
                               rtol=1e-5, atol=1e-6)
