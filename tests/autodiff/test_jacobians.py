"""jacfwd, jacrev and hessian against JAX's on the same programs: values, shapes, dtypes,
pytrees and argnums, eagerly and under jit."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy


def _both(fn):
    """The same program on flowjit and on JAX (fn takes the numpy module)."""
    return (lambda *a: fn(fnp, *a)), (lambda *a: fn(jnp, *a))


def _mlp(np_, w, x):
    return np_.tanh(x @ w["a"] + w["b"]).sum(axis=0)


PROGRAMS = {
    "vector": (lambda np_, x: np_.tanh(x) * np_.sum(x ** 2), (np.linspace(-1, 1, 6),)),
    "matrix to vector": (lambda np_, m: np_.exp(m).sum(axis=1) / (1 + m[:, 0] ** 2),
                         (np.arange(12.0).reshape(3, 4) / 10,)),
    "scalar out": (lambda np_, x: np_.sum(np_.sin(x) ** 3), (np.linspace(-2, 2, 5),)),
    "pytree in": (_mlp, ({"a": np.linspace(-1, 1, 12).reshape(4, 3),
                          "b": np.linspace(0, 1, 3)}, np.linspace(-1, 1, 8).reshape(2, 4))),
}


def _f32(args):
    return flowjit.tree.tree_map(lambda a: np.asarray(a, np.float32), args)


def _close(ours, theirs):
    ours_leaves = flowjit.tree_util.tree_leaves(ours)
    theirs_leaves = jax.tree_util.tree_leaves(theirs)
    assert len(ours_leaves) == len(theirs_leaves)
    for a, b in zip(ours_leaves, theirs_leaves):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev"])
@pytest.mark.parametrize("name", list(PROGRAMS))
@pytest.mark.parametrize("jitted", [False, True])
def test_jacobians_match_jax(transform, name, jitted):
    fn, args = PROGRAMS[name]
    ours, theirs = _both(fn)
    args = _f32(args)
    argnums = (0, 1) if len(args) > 1 else 0
    mine = getattr(flowjit, transform)(ours, argnums=argnums)
    if jitted:
        mine = flowjit.jit(mine)
    _close(mine(*args), getattr(jax, transform)(theirs, argnums=argnums)(*args))


@pytest.mark.parametrize("name", ["vector", "scalar out"])
def test_hessian_is_forward_over_reverse_as_in_jax(name):
    fn, args = PROGRAMS[name]
    ours, theirs = _both(fn)
    args = _f32(args)
    _close(flowjit.hessian(ours)(*args), jax.hessian(theirs)(*args))


def test_jacobians_of_a_256_to_256_function_agree_with_finite_differences():
    # An independent oracle besides JAX: float64 central differences, column by column.
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    x = rng.standard_normal(256).astype(np.float32)
    f = lambda v: fnp.tanh(w @ v) * v          # noqa: E731
    want = np.empty((256, 256))
    h = 1e-4
    for j in range(256):
        e = np.zeros(256)
        e[j] = h
        up = np.tanh(w.astype(np.float64) @ (x + e)) * (x + e)
        down = np.tanh(w.astype(np.float64) @ (x - e)) * (x - e)
        want[:, j] = (up - down) / (2 * h)
    for jac in (flowjit.jacfwd, flowjit.jacrev):
        np.testing.assert_allclose(np.asarray(flowjit.jit(jac(f))(x)), want, atol=2e-4)


def test_has_aux_and_errors_follow_jax():
    x = np.linspace(-1, 1, 4).astype(np.float32)
    ours = flowjit.jacfwd(lambda v: (fnp.sin(v) * 2, v.sum()), has_aux=True)(x)
    theirs = jax.jacfwd(lambda v: (jnp.sin(v) * 2, v.sum()), has_aux=True)(x)
    _close(ours, theirs)
    ours = flowjit.jacrev(lambda v: (fnp.sin(v) * 2, v.sum()), has_aux=True)(x)
    theirs = jax.jacrev(lambda v: (jnp.sin(v) * 2, v.sum()), has_aux=True)(x)
    _close(ours, theirs)
    with pytest.raises(TypeError, match="real- or complex-valued"):
        flowjit.jacfwd(lambda v: v * 2)(np.arange(3))
    with pytest.raises(ValueError, match="argnums"):
        flowjit.jacrev(lambda v: v * 2, argnums=3)(x)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "hessian"])
def test_signatures_match_jax(name):
    ours = inspect.signature(getattr(flowjit, name))
    theirs = inspect.signature(getattr(jax, name))
    assert list(ours.parameters) == list(theirs.parameters)
    for p in ours.parameters.values():
        assert p.default == theirs.parameters[p.name].default
