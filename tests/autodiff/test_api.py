"""grad / value_and_grad / vjp / jvp / custom_vjp / stop_gradient behave as JAX's do."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

# float64 / int64 against 64-bit oracles at 64-bit tolerances: 64-bit types on, as JAX needs.
pytestmark = pytest.mark.usefixtures("x64")


def log1pexp(x):
    return fnp.log(1.0 + fnp.exp(x))


def test_log1pexp_needs_a_custom_rule_in_float32():
    # The seed talk's example: exp(100) overflows float32, so the automatic gradient is
    # inf/inf = nan; the custom rule gives the exact limit 1.0.
    x = np.float32(100.0)
    assert np.isnan(flowjit.grad(log1pexp)(x))

    stable = flowjit.custom_vjp(log1pexp)
    stable.defvjp(lambda x: (log1pexp(x), x),
                  lambda x, g: (g * (1.0 - 1.0 / (1.0 + fnp.exp(x))),))
    assert float(flowjit.grad(stable)(x)) == 1.0
    assert float(flowjit.jit(flowjit.grad(stable))(x)) == 1.0
    # Away from overflow both agree with the hand derivative e^x / (1 + e^x).
    np.testing.assert_allclose(flowjit.grad(stable)(2.0), np.exp(2) / (1 + np.exp(2)))
    np.testing.assert_allclose(flowjit.jit(stable)(3.0), np.log1p(np.exp(3.0)))


def test_compositions_agree():
    f = lambda x: fnp.sum(fnp.sin(x) * x)  # noqa: E731
    x = np.array([0.3, -1.2, 2.0])
    expected = np.cos(x) * x + np.sin(x)
    for g in (flowjit.grad(f), flowjit.jit(flowjit.grad(f)),
              flowjit.grad(flowjit.jit(f)), flowjit.jit(flowjit.grad(flowjit.jit(f)))):
        np.testing.assert_allclose(g(x), expected, rtol=1e-12)
    second = flowjit.grad(lambda x: fnp.sum(flowjit.grad(f)(x)))
    np.testing.assert_allclose(second(x), 2 * np.cos(x) - x * np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(flowjit.jit(second)(x), 2 * np.cos(x) - x * np.sin(x),
                               rtol=1e-12)


def test_pytrees_argnums_has_aux_and_value():
    def loss(params, x, scale):
        y = x @ params["w"] + params["b"]
        return fnp.sum(y ** 2) * scale, y.shape[0]
    params = {"w": np.arange(6.0).reshape(3, 2) / 5, "b": np.array([0.1, -0.2])}
    x = np.arange(12.0).reshape(4, 3) / 7
    (value, aux), (gp, gs) = flowjit.value_and_grad(loss, argnums=(0, 2), has_aux=True)(
        params, x, 2.0)
    y = x @ params["w"] + params["b"]
    assert aux == 4
    np.testing.assert_allclose(value, 2 * np.sum(y ** 2))
    np.testing.assert_allclose(gp["w"], 2 * x.T @ (2 * y))
    np.testing.assert_allclose(gp["b"], 2 * (2 * y).sum(axis=0))
    np.testing.assert_allclose(gs, np.sum(y ** 2))


def test_traced_aux_values_come_back_as_arrays():
    f = lambda x: (fnp.sum(x ** 2), {"scaled": x * 3, "count": 2})  # noqa: E731
    x = np.array([1.0, 2.0])
    for fn in (flowjit.value_and_grad(f, has_aux=True),
               flowjit.jit(flowjit.value_and_grad(f, has_aux=True))):
        (value, aux), g = fn(x)
        np.testing.assert_allclose(value, 5.0)
        np.testing.assert_allclose(aux["scaled"], [3.0, 6.0])
        assert int(aux["count"]) == 2
        np.testing.assert_allclose(g, 2 * x)


def test_vjp_and_jvp():
    x = np.array([0.5, 1.5])
    out, vjp_fn = flowjit.vjp(lambda x: fnp.exp(x) * 2, x)
    (ct,) = vjp_fn(np.array([1.0, 3.0]))
    np.testing.assert_allclose(ct, 2 * np.exp(x) * [1.0, 3.0])
    value, tangent = flowjit.jvp(lambda x: x ** 3, (x,), (np.array([1.0, -1.0]),))
    np.testing.assert_allclose(value, x ** 3)
    np.testing.assert_allclose(tangent, 3 * x ** 2 * [1.0, -1.0])


def test_stop_gradient():
    f = lambda x: fnp.sum(x * flowjit.stop_gradient(x))  # noqa: E731
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(flowjit.grad(f)(x), x)      # not 2x
    np.testing.assert_allclose(flowjit.jit(flowjit.grad(f))(x), x)


def test_integer_inputs_and_non_scalar_outputs_are_errors():
    with pytest.raises(TypeError, match="int64"):
        flowjit.grad(lambda x: fnp.sum(x))(np.array([1, 2]))

    def scaled(x, steps):
        return fnp.sum(x) * steps
    with pytest.raises(TypeError, match="argument 'steps' \\(argnums=1\\) has dtype int64"):
        flowjit.grad(scaled, argnums=(0, 1))(np.array([1.0]), np.array(3))
    with pytest.raises(TypeError, match="scalar float output"):
        flowjit.grad(lambda x: x * 2)(np.array([1.0, 2.0]))


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
    np.testing.assert_allclose(flowjit.grad(ours)(w), jax.grad(theirs)(w), rtol=1e-10)
    np.testing.assert_allclose(flowjit.grad(lambda w: fnp.sum(flowjit.grad(ours)(w)))(w),
                               jax.grad(lambda w: jnp.sum(jax.grad(theirs)(w)))(w),
                               rtol=1e-8)


def test_while_loop_with_a_run_time_trip_count_is_refused_clearly():
    def f(x):
        return flowjit.while_loop(lambda v: fnp.sum(v) < 10.0, lambda v: v * 2, x).sum()
    with pytest.raises(TypeError, match="while loop.*trip count"):
        flowjit.grad(f)(np.array([1.0, 2.0]))


def test_loops_differentiate_eagerly_and_compiled():
    # d/dx of prod over a scan is the product of the others (hand-computed).
    def f(xs):
        carry, _ = flowjit.scan(lambda c, x: (c * x, c), np.float64(1.0), xs)
        return carry
    xs = np.array([2.0, 3.0, 5.0])
    for g in (flowjit.grad(f), flowjit.jit(flowjit.grad(f))):
        np.testing.assert_allclose(g(xs), [15.0, 10.0, 6.0])
    # fori_loop: x -> x * a, three times: d/da sum(x a^3) = 3 x a^2.
    h = lambda x, a: fnp.sum(flowjit.fori_loop(0, 3, lambda i, v: v * a, x))  # noqa: E731
    x, a = np.array([1.0, 2.0]), np.array([0.5, -1.5])
    np.testing.assert_allclose(flowjit.grad(h, argnums=1)(x, a), 3 * x * a ** 2)


def test_custom_vjp_with_several_arguments_and_outputs():
    @flowjit.custom_vjp
    def scale(x, k):
        return {"out": x * k, "k": k}

    def fwd(x, k):
        return scale(x, k), (x, k)

    def bwd(res, g):
        x, k = res
        return g["out"] * k * 10.0, None  # a deliberately "wrong" rule, to see it is used
    scale.defvjp(fwd, bwd)
    x, k = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    loss = lambda x, k: fnp.sum(scale(x, k)["out"]) + fnp.sum(scale(x, k)["k"])  # noqa
    for fn in (flowjit.grad(loss, argnums=(0, 1)),
               flowjit.jit(flowjit.grad(loss, argnums=(0, 1)))):
        gx, gk = fn(x, k)
        np.testing.assert_allclose(gx, k * 10.0)
        np.testing.assert_allclose(gk, [0.0, 0.0])
    np.testing.assert_allclose(flowjit.jit(loss)(x, k), np.sum(x * k) + np.sum(k))


def test_second_order_through_custom_vjp_differentiates_the_bwd_rule():
    sin = flowjit.custom_vjp(fnp.sin)
    sin.defvjp(lambda x: (fnp.sin(x), x), lambda x, g: (g * fnp.cos(x),))
    x = np.array([0.2, 1.0])
    hess = flowjit.grad(lambda x: fnp.sum(flowjit.grad(lambda x: fnp.sum(sin(x)))(x)))
    np.testing.assert_allclose(hess(x), -np.sin(x))
    np.testing.assert_allclose(flowjit.jit(hess)(x), -np.sin(x))


def test_jvp_through_a_loop_and_a_branch():
    def f(x):
        y = flowjit.fori_loop(0, 2, lambda i, v: fnp.sin(v), x)
        return flowjit.cond(x[0] > 0, lambda v: v * 3, lambda v: v, y)
    x, t = np.array([0.4, -0.3]), np.array([1.0, 2.0])
    value, tangent = flowjit.jvp(f, (x,), (t,))
    np.testing.assert_allclose(value, 3 * np.sin(np.sin(x)))
    np.testing.assert_allclose(tangent, 3 * np.cos(np.sin(x)) * np.cos(x) * t)


def test_nested_loops_and_branches_first_and_second_order():
    x = np.array([0.3, -0.5, 0.8])

    def f(x):
        def outer(i, v):
            return flowjit.fori_loop(0, 2, lambda j, u: fnp.sin(u) * x + 0.1, v) * 0.9
        v = flowjit.fori_loop(0, 3, outer, x)
        w = flowjit.cond(v[0] > 0,
                          lambda a: flowjit.scan(lambda c, t: (c * t, c), 1.0, a)[1],
                          lambda a: a, v)
        return fnp.sum(w ** 2)

    def h(x):
        return fnp.sum(flowjit.grad(f)(x) * np.array([1.0, 2.0, 3.0]))
    for fn, eps in ((f, 1e-6), (h, 1e-5)):
        expected = [(fn(x + eps * e) - fn(x - eps * e)) / (2 * eps) for e in np.eye(3)]
        np.testing.assert_allclose(flowjit.grad(fn)(x), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(flowjit.jit(flowjit.grad(h))(x), flowjit.grad(h)(x),
                               rtol=1e-12)
