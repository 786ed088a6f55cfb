"""grad / value_and_grad / vjp / jvp / custom_vjp / stop_gradient behave as JAX's do."""
import numpy as np
import pytest

import compiler
import compiler.numpy as fnp


def log1pexp(x):
    return fnp.log(1.0 + fnp.exp(x))


def test_log1pexp_needs_a_custom_rule_in_float32():
    # The seed talk's example: exp(100) overflows float32, so the automatic gradient is
    # inf/inf = nan; the custom rule gives the exact limit 1.0.
    x = np.float32(100.0)
    assert np.isnan(compiler.grad(log1pexp)(x))

    stable = compiler.custom_vjp(log1pexp)
    stable.defvjp(lambda x: (log1pexp(x), x),
                  lambda x, g: (g * (1.0 - 1.0 / (1.0 + fnp.exp(x))),))
    assert float(compiler.grad(stable)(x)) == 1.0
    assert float(compiler.jit(compiler.grad(stable))(x)) == 1.0
    # Away from overflow both agree with the hand derivative e^x / (1 + e^x).
    np.testing.assert_allclose(compiler.grad(stable)(2.0), np.exp(2) / (1 + np.exp(2)))
    np.testing.assert_allclose(compiler.jit(stable)(3.0), np.log1p(np.exp(3.0)))


def test_compositions_agree():
    f = lambda x: fnp.sum(fnp.sin(x) * x)  # noqa: E731
    x = np.array([0.3, -1.2, 2.0])
    expected = np.cos(x) * x + np.sin(x)
    for g in (compiler.grad(f), compiler.jit(compiler.grad(f)),
              compiler.grad(compiler.jit(f)), compiler.jit(compiler.grad(compiler.jit(f)))):
        np.testing.assert_allclose(g(x), expected, rtol=1e-12)
    second = compiler.grad(lambda x: fnp.sum(compiler.grad(f)(x)))
    np.testing.assert_allclose(second(x), 2 * np.cos(x) - x * np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(compiler.jit(second)(x), 2 * np.cos(x) - x * np.sin(x),
                               rtol=1e-12)


def test_pytrees_argnums_has_aux_and_value():
    def loss(params, x, scale):
        y = x @ params["w"] + params["b"]
        return fnp.sum(y ** 2) * scale, y.shape[0]
    params = {"w": np.arange(6.0).reshape(3, 2) / 5, "b": np.array([0.1, -0.2])}
    x = np.arange(12.0).reshape(4, 3) / 7
    (value, aux), (gp, gs) = compiler.value_and_grad(loss, argnums=(0, 2), has_aux=True)(
        params, x, 2.0)
    y = x @ params["w"] + params["b"]
    assert aux == 4
    np.testing.assert_allclose(value, 2 * np.sum(y ** 2))
    np.testing.assert_allclose(gp["w"], 2 * x.T @ (2 * y))
    np.testing.assert_allclose(gp["b"], 2 * (2 * y).sum(axis=0))
    np.testing.assert_allclose(gs, np.sum(y ** 2))


def test_vjp_and_jvp():
    x = np.array([0.5, 1.5])
    out, vjp_fn = compiler.vjp(lambda x: fnp.exp(x) * 2, x)
    (ct,) = vjp_fn(np.array([1.0, 3.0]))
    np.testing.assert_allclose(ct, 2 * np.exp(x) * [1.0, 3.0])
    value, tangent = compiler.jvp(lambda x: x ** 3, (x,), (np.array([1.0, -1.0]),))
    np.testing.assert_allclose(value, x ** 3)
    np.testing.assert_allclose(tangent, 3 * x ** 2 * [1.0, -1.0])


def test_stop_gradient():
    f = lambda x: fnp.sum(x * compiler.stop_gradient(x))  # noqa: E731
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(compiler.grad(f)(x), x)      # not 2x
    np.testing.assert_allclose(compiler.jit(compiler.grad(f))(x), x)


def test_integer_inputs_and_non_scalar_outputs_are_errors():
    with pytest.raises(TypeError, match="int64"):
        compiler.grad(lambda x: fnp.sum(x))(np.array([1, 2]))
    with pytest.raises(TypeError, match="scalar float output"):
        compiler.grad(lambda x: x * 2)(np.array([1.0, 2.0]))


def test_matches_jax_where_installed():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    jax.config.update("jax_enable_x64", True)
    w = np.random.default_rng(0).standard_normal((4, 3))
    x = np.random.default_rng(1).standard_normal((5, 4))

    def ours(w):
        return fnp.sum(fnp.tanh(x @ w) ** 2) + fnp.max(w)

    def theirs(w):
        return jnp.sum(jnp.tanh(x @ w) ** 2) + jnp.max(w)
    np.testing.assert_allclose(compiler.grad(ours)(w), jax.grad(theirs)(w), rtol=1e-10)
    np.testing.assert_allclose(compiler.grad(lambda w: fnp.sum(compiler.grad(ours)(w)))(w),
                               jax.grad(lambda w: jnp.sum(jax.grad(theirs)(w)))(w),
                               rtol=1e-8)
