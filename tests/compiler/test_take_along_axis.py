"""flowjit.numpy.take_along_axis / put_along_axis against JAX: values, modes, gradients
(the batched gather's VJP is a batched scatter-add and the reverse), eager and under jit."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.ir.errors import ShapeError

jax = pytest.importorskip("jax")
jnp = jax.numpy
# JAX's 32-bit defaults, whatever another test set for the process.
pytestmark = pytest.mark.usefixtures("no_x64")

RNG = np.random.default_rng(11)
X3 = RNG.standard_normal((3, 4, 5)).astype(np.float32)


def same(got, want, **tol):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), equal_nan=True,
                               **(tol or dict(rtol=1e-6, atol=1e-6)))


@pytest.mark.parametrize("name", ["take_along_axis", "put_along_axis"])
def test_signature_is_jax_s(name):
    assert inspect.signature(getattr(fnp, name)).parameters.keys() == \
        inspect.signature(getattr(jnp, name)).parameters.keys()


@pytest.mark.parametrize("axis, index_shape, mode", [
    (0, (6, 4, 5), None), (1, (3, 2, 5), "clip"), (-1, (3, 4, 7), "fill"),
    (2, (1, 4, 3), None), (1, (3, 6, 1), "clip")])
def test_take_matches_jax_with_broadcasting_and_every_mode(axis, index_shape, mode, opt_level):
    size = X3.shape[axis]
    idx = RNG.integers(-size - 2, size + 2, index_shape).astype(np.int32)
    want = jnp.take_along_axis(X3, idx, axis=axis, mode=mode)
    fn = flowjit.jit(lambda x, i: fnp.take_along_axis(x, i, axis=axis, mode=mode),
                     opt_level=opt_level)
    same(fn(X3, idx), want)
    same(fnp.take_along_axis(X3, idx, axis=axis, mode=mode), want)   # eager


def test_take_with_fill_value_and_axis_none():
    idx = np.array([3, -1, 60, -61, 7], np.int32)
    same(fnp.take_along_axis(X3.ravel(), idx, axis=None, fill_value=-5.0),
         jnp.take_along_axis(X3.ravel(), idx, axis=None, fill_value=-5.0))
    ints = np.arange(12, dtype=np.int32).reshape(3, 4)
    i2 = np.array([[0], [9], [-2]], np.int32)
    np.testing.assert_array_equal(fnp.take_along_axis(ints, i2, axis=1),
                                  jnp.take_along_axis(ints, i2, axis=1))


def test_integer_label_cross_entropy_and_its_gradient_match_jax():
    logits = RNG.standard_normal((16, 10)).astype(np.float32) * 3
    labels = RNG.integers(0, 10, 16).astype(np.int32)

    def loss(lib, nn):
        return lambda z, y: -lib.take_along_axis(nn.log_softmax(z), y[:, None], axis=-1).mean()
    same(flowjit.jit(loss(fnp, flowjit.nn))(logits, labels), loss(jnp, jax.nn)(logits, labels))
    got = flowjit.jit(flowjit.grad(loss(fnp, flowjit.nn)))(logits, labels)
    same(got, jax.grad(loss(jnp, jax.nn))(logits, labels), rtol=1e-5, atol=1e-7)
    # independent of JAX: (softmax - one_hot) / batch
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    probs[np.arange(16), labels] -= 1
    same(got, probs / 16, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", [None, "clip"])
def test_take_gradient_matches_jax(mode):
    idx = RNG.integers(-6, 6, (3, 4, 3)).astype(np.int32)   # duplicates and out of range
    w = RNG.standard_normal((3, 4, 3)).astype(np.float32)

    def f(lib):
        return lambda x: (lib.where(lib.isnan(t := lib.take_along_axis(x, idx, axis=2,
                                                                       mode=mode)), 0.0, t)
                          * w).sum()
    same(flowjit.grad(f(fnp))(X3), jax.grad(f(jnp))(X3))


def test_put_matches_jax_and_its_gradient_counts_the_last_write_only():
    idx = np.array([[0, 1, 2, 3, 0], [1, 2, 3, 0, 0], [9, -1, 3, -5, 2]], np.int32)
    x = X3[0]

    def f(lib):
        return lambda a, v: (lib.put_along_axis(a, idx, v * 3, axis=0, inplace=False) ** 2).sum()
    same(flowjit.jit(lambda a, v: fnp.put_along_axis(a, idx, v, axis=0, inplace=False))(x, x[:3]),
         jnp.put_along_axis(x, idx, x[:3], axis=0, inplace=False))
    got = flowjit.jit(flowjit.grad(f(fnp), argnums=(0, 1)))(x, x[:3])
    want = jax.grad(f(jnp), argnums=(0, 1))(x, x[:3])
    same(got[0], want[0])
    same(got[1], want[1])


def test_bad_input_names_the_shapes():
    with pytest.raises(ShapeError, match=r"\(3, 2\).*\(3, 4, 5\)"):
        fnp.take_along_axis(X3, np.zeros((3, 2), np.int32), axis=1)
    with pytest.raises(ShapeError, match="do not broadcast outside axis 1"):
        fnp.take_along_axis(X3, np.zeros((2, 2, 5), np.int32), axis=1)
    with pytest.raises(ShapeError, match="must be integers"):
        fnp.take_along_axis(X3, np.zeros((3, 2, 5), np.float32), axis=1)
    with pytest.raises(ValueError, match="inplace=False"):
        fnp.put_along_axis(X3, np.zeros((3, 1, 5), np.int32), 1.0, axis=1)
