"""Gradients where a function has a kink or a tie (0 for relu and abs, the ends of clip,
equal operands of maximum...): flowjit's conventions are JAX's, checked against jax.grad at
the kinks and at ordinary points, for every function of flowjit.nn and the non-smooth
functions of flowjit.numpy and flowjit.lax."""
import numpy as np
import pytest

import flowjit
import flowjit.lax as flax
import flowjit.nn as fnn
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy

pytestmark = pytest.mark.usefixtures("no_x64")


class Lib:
    def __init__(self, np_, nn, lax):
        self.np, self.nn, self.lax = np_, nn, lax


FLOWJIT = Lib(fnp, fnn, flax)
JAX = Lib(jnp, jax.nn, jax.lax)

# name: (function of (lib, x) -> scalar, points that include its kinks)
NON_SMOOTH = {
    "abs": (lambda L, x: L.np.abs(x), [0.0, -0.0, 2.0, -2.0]),
    "maximum(x, 0)": (lambda L, x: L.np.maximum(x, 0.0), [0.0, 1.0, -1.0]),
    "maximum(0, x)": (lambda L, x: L.np.maximum(0.0, x), [0.0, 1.0]),
    "maximum(x, x)": (lambda L, x: L.np.maximum(x, x), [0.0, 1.5]),
    "minimum(x, 0)": (lambda L, x: L.np.minimum(x, 0.0), [0.0, 1.0, -1.0]),
    "clip": (lambda L, x: L.np.clip(x, 0.0, 1.0), [0.0, 1.0, 0.5, -1.0, 2.0]),
    "lax.clamp": (lambda L, x: L.lax.clamp(-0.5, x, 0.5), [-0.5, 0.5, 0.0, 1.0]),
    "where": (lambda L, x: L.np.where(x > 0, x, 2 * x), [0.0, 1.0, -1.0]),
    "sign": (lambda L, x: L.np.sign(x), [0.0, 1.0]),
    "floor": (lambda L, x: L.np.floor(x), [0.0, 1.5]),
    "ceil": (lambda L, x: L.np.ceil(x), [0.0, 1.5]),
    "round": (lambda L, x: L.np.round(x), [0.5, 1.5, 0.2]),
    "sqrt(abs)": (lambda L, x: L.np.sqrt(L.np.abs(x)), [0.0, 4.0]),
    "max reduce, ties": (lambda L, x: L.np.max(L.np.stack([x, x, 0.0 * x])), [0.0, 1.0]),
    "relu": (lambda L, x: L.nn.relu(x), [0.0, 1.0, -1.0]),
    "relu6": (lambda L, x: L.nn.relu6(x), [0.0, 6.0, 3.0, 7.0, -1.0]),
    "leaky_relu": (lambda L, x: L.nn.leaky_relu(x), [0.0, 1.0, -1.0]),
    "elu": (lambda L, x: L.nn.elu(x), [0.0, 1.0, -1.0]),
}
# The smooth activations: the same gradient up to float32 rounding.
SMOOTH = {
    "sigmoid": (lambda L, x: L.nn.sigmoid(x), [0.0, 1.0, 6.0, -6.0]),
    "softplus": (lambda L, x: L.nn.softplus(x), [0.0, 1.0, 6.0, -6.0]),
    "log_sigmoid": (lambda L, x: L.nn.log_sigmoid(x), [0.0, 1.0, -6.0]),
    "silu": (lambda L, x: L.nn.silu(x), [0.0, 1.0, -6.0]),
    "gelu": (lambda L, x: L.nn.gelu(x), [0.0, 1.0, -2.0]),
    "gelu exact": (lambda L, x: L.nn.gelu(x, approximate=False), [0.0, 1.0, -2.0]),
}


def _gradients(fn, point):
    ours = flowjit.grad(lambda x: fn(FLOWJIT, x))(np.float32(point))
    jitted = flowjit.jit(flowjit.grad(lambda x: fn(FLOWJIT, x)))(np.float32(point))
    theirs = jax.grad(lambda x: fn(JAX, x))(np.float32(point))
    return np.asarray(ours), np.asarray(jitted), np.asarray(theirs)


@pytest.mark.parametrize("name", sorted(NON_SMOOTH))
def test_gradient_at_kinks_is_jaxs(name):
    fn, points = NON_SMOOTH[name]
    for point in points:
        ours, jitted, theirs = _gradients(fn, point)
        assert ours.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{name} at {point}")
        np.testing.assert_array_equal(jitted, theirs, err_msg=f"{name} at {point}, jit")


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_smooth_activation_gradients_are_jaxs(name):
    fn, points = SMOOTH[name]
    for point in points:
        ours, jitted, theirs = _gradients(fn, point)
        # float32: a few ulps, plus one rounding of 1 - sigmoid(x) (6e-8) in sigmoid's
        # derivative.
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name} at {point}")
        np.testing.assert_allclose(jitted, theirs, rtol=1e-6, atol=1e-7)


def test_lax_clamp_bounds_get_jaxs_gradients():
    def fn(L):
        return lambda lo, x, hi: L.lax.clamp(lo, x, hi)
    for x in (-1.0, -0.5, 0.0, 0.5, 1.0):
        args = (np.float32(-0.5), np.float32(x), np.float32(0.5))
        ours = flowjit.grad(fn(FLOWJIT), argnums=(0, 1, 2))(*args)
        theirs = jax.grad(fn(JAX), argnums=(0, 1, 2))(*args)
        np.testing.assert_array_equal(np.array(ours), np.array(theirs), err_msg=f"x={x}")


def test_activation_values_at_edges_are_jaxs():
    x = np.array([-np.inf, -7.0, -0.0, 0.0, 3.0, 6.0, 7.0, np.inf, np.nan], np.float32)
    for name in ("relu", "relu6", "elu", "leaky_relu", "softplus"):
        np.testing.assert_allclose(getattr(fnn, name)(x), getattr(jax.nn, name)(x),
                                   rtol=1e-6, err_msg=name)
