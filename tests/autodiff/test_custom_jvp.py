"""flowjit.custom_jvp against jax.custom_jvp: under jvp, grad (the rule transposed), jit,
second order, defjvps, nondiff_argnums, pytrees; and its errors."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

# JAX is compared under its default 32-bit types (some tests turn its x64 on process-wide).
pytestmark = pytest.mark.usefixtures("no_x64")


def log1pexp(custom_jvp, np_):
    """The seed talk's example: log(1 + e^x), whose plain gradient is nan at x = 100."""
    @custom_jvp
    def f(x):
        return np_.log(1.0 + np_.exp(x))

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), t * (1 - 1 / (1 + np_.exp(x)))
    return f


OURS, THEIRS = log1pexp(flowjit.custom_jvp, fnp), log1pexp(jax.custom_jvp, jnp)


@pytest.mark.parametrize("x", [0.0, 3.0, 100.0, -20.0])
def test_log1pexp_under_jvp_and_grad(x):
    x, t = np.float32(x), np.float32(1.5)
    want_value, want_tangent = jax.jvp(THEIRS, (x,), (t,))
    value, tangent = flowjit.jvp(OURS, (x,), (t,))
    np.testing.assert_allclose(value, want_value, rtol=1e-6)
    np.testing.assert_allclose(tangent, want_tangent, rtol=1e-6)
    np.testing.assert_allclose(flowjit.grad(OURS)(x), jax.grad(THEIRS)(x), rtol=1e-6)
    np.testing.assert_allclose(flowjit.jit(flowjit.grad(OURS))(x), jax.grad(THEIRS)(x),
                               rtol=1e-6)
    assert np.isfinite(flowjit.grad(OURS)(x))   # the point of the custom rule


def test_second_order_through_the_rule():
    x = np.float32(0.7)
    np.testing.assert_allclose(flowjit.grad(flowjit.grad(OURS))(x),
                               jax.grad(jax.grad(THEIRS))(x), rtol=1e-5)
    hvp = flowjit.jvp(flowjit.grad(OURS), (x,), (np.float32(1),))[1]
    np.testing.assert_allclose(hvp, jax.jvp(jax.grad(THEIRS), (x,), (np.float32(1),))[1],
                               rtol=1e-5)


def test_the_rule_not_the_function_is_differentiated():
    """A deliberately 'wrong' rule (tangent 3·t) shows which derivative is used."""
    for custom_jvp, np_, grad, jvp in ((flowjit.custom_jvp, fnp, flowjit.grad, flowjit.jvp),
                                       (jax.custom_jvp, jnp, jax.grad, jax.jvp)):
        f = custom_jvp(lambda x: np_.sin(x))
        f.defjvp(lambda p, t: (np_.sin(p[0]), 3.0 * t[0]))
        assert float(grad(lambda x: f(x) * 2)(np.float32(0.3))) == pytest.approx(6.0)
        assert float(jvp(f, (np.float32(0.3),), (np.float32(1),))[1]) == pytest.approx(3.0)


def _two_argument(custom_jvp, np_):
    @custom_jvp
    def f(x, y):
        return np_.sin(x) * y, x + y

    f.defjvps(lambda tx, out, x, y: (np_.cos(x) * y * tx, tx),
              lambda ty, out, x, y: (np_.sin(x) * ty, ty))
    return f


def test_defjvps_vectors_and_multiple_outputs():
    ours, theirs = _two_argument(flowjit.custom_jvp, fnp), _two_argument(jax.custom_jvp, jnp)
    x = np.linspace(-1, 1, 4).astype(np.float32)
    y = np.linspace(0.5, 2, 4).astype(np.float32)
    tx, ty = np.ones(4, np.float32), np.full(4, 0.5, np.float32)
    got = flowjit.jvp(ours, (x, y), (tx, ty))
    want = jax.jvp(theirs, (x, y), (tx, ty))
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    loss = lambda f, np_: lambda x, y: (f(x, y)[0] * f(x, y)[1]).sum()   # noqa: E731
    got = flowjit.grad(loss(ours, fnp), argnums=(0, 1))(x, y)
    want = jax.grad(loss(theirs, jnp), argnums=(0, 1))(x, y)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def _with_function_argument(custom_jvp, np_):
    """JAX's docs example: a Python function among the arguments (nondiff_argnums)."""
    @functools.partial(custom_jvp, nondiff_argnums=(0,))
    def apply(fn, x):
        return fn(x)

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        (x,), (t,) = primals, tangents
        return apply(fn, x), 2.0 * t * fn(x)
    return apply


def test_nondiff_argnums():
    ours = _with_function_argument(flowjit.custom_jvp, fnp)
    theirs = _with_function_argument(jax.custom_jvp, jnp)
    x = np.float32(1.2)
    assert float(ours(fnp.sin, x)) == pytest.approx(float(theirs(jnp.sin, x)))
    got = flowjit.grad(lambda x: ours(fnp.sin, x))(x)
    want = jax.grad(lambda x: theirs(jnp.sin, x))(x)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got = flowjit.jvp(lambda x: ours(fnp.exp, x), (x,), (np.float32(1),))
    want = jax.jvp(lambda x: theirs(jnp.exp, x), (x,), (np.float32(1),))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_pytree_arguments_inside_jit():
    def make(custom_jvp, np_):
        @custom_jvp
        def f(p):
            return {"out": p["a"] * p["b"]}

        @f.defjvp
        def f_jvp(primals, tangents):
            (p,), (t,) = primals, tangents
            return f(p), {"out": t["a"] * p["b"] + p["a"] * t["b"]}
        return f
    ours, theirs = make(flowjit.custom_jvp, fnp), make(jax.custom_jvp, jnp)
    p = {"a": np.arange(3, dtype=np.float32), "b": np.ones(3, np.float32) * 2}
    loss = lambda f: lambda p: (f(p)["out"] ** 2).sum()   # noqa: E731
    got = flowjit.jit(flowjit.grad(loss(ours)))(p)
    want = jax.grad(loss(theirs))(p)
    for k in p:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6)


def test_errors():
    f = flowjit.custom_jvp(lambda x: x * 2)
    with pytest.raises(TypeError, match="defjvp"):
        f(np.float32(1))
    f.defjvp(lambda p, t: (p[0] * 2, fnp.ones(3)))
    with pytest.raises(TypeError, match=r"tangent output has shape \(3,\)"):
        flowjit.jvp(f, (np.float32(1),), (np.float32(1),))
    g = flowjit.custom_jvp(lambda x: (x, x))
    g.defjvp(lambda p, t: (p[0], t[0]))
    with pytest.raises(TypeError, match="output structure"):
        flowjit.jvp(g, (np.float32(1),), (np.float32(1),))
