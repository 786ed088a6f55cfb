"""flowjit.tree_util against jax.tree_util (leaves, structures, registered classes), registered
classes through jit / grad / jvp, eval_shape and block_until_ready against JAX's."""
import dataclasses
from collections import namedtuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import flowjit
import flowjit.numpy as fnp
from flowjit import tree_util

# JAX is compared under its default 32-bit types (some tests turn its x64 on process-wide).
pytestmark = pytest.mark.usefixtures("no_x64")

Point = namedtuple("Point", "x y")

trees = st.recursive(
    st.integers() | st.none(),
    lambda children: st.lists(children, max_size=3) | st.tuples(children, children)
    | st.builds(Point, children, children)
    | st.dictionaries(st.text(min_size=1, max_size=3), children, max_size=3),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(trees)
def test_leaves_and_round_trip_match_jax(value):
    leaves, treedef = tree_util.tree_flatten(value)
    assert leaves == jax.tree_util.tree_leaves(value)
    assert treedef.num_leaves == jax.tree_util.tree_structure(value).num_leaves
    assert tree_util.tree_unflatten(treedef, leaves) == value
    assert tree_util.tree_structure(value) == treedef
    doubled = tree_util.tree_map(lambda v: v * 2, value)
    assert doubled == jax.tree_util.tree_map(lambda v: v * 2, value)


def test_none_is_an_empty_subtree_and_is_leaf():
    value = {"a": None, "b": [1, (2, None)]}
    assert tree_util.tree_leaves(value) == jax.tree_util.tree_leaves(value) == [1, 2]
    stop = lambda x: isinstance(x, tuple)   # noqa: E731
    assert tree_util.tree_leaves(value, is_leaf=stop) == \
        jax.tree_util.tree_leaves(value, is_leaf=stop)
    with pytest.raises(ValueError, match="expected 2, got 3"):
        tree_util.tree_unflatten(tree_util.tree_structure(value), [1, 2, 3])


class Linear:
    """A user class registered with each library the same way."""

    def __init__(self, w, b, name="linear"):
        self.w, self.b, self.name = w, b, name

    def tree_flatten(self):
        return (self.w, self.b), self.name

    @classmethod
    def tree_unflatten(cls, name, children):
        return cls(*children, name=name)


flowjit.tree_util.register_pytree_node_class(Linear)
jax.tree_util.register_pytree_node_class(Linear)


@dataclasses.dataclass
class Params:
    scale: object
    shift: object
    label: str = dataclasses.field(default="p", metadata={"static": True})


tree_util.register_dataclass(Params, data_fields=["scale", "shift"], meta_fields=["label"])
jax.tree_util.register_dataclass(Params, data_fields=["scale", "shift"], meta_fields=["label"])


def _model(np_):
    def loss(layer, params, x):
        return (np_.tanh(x @ layer.w + layer.b) * params.scale + params.shift).sum()
    return loss


def test_registered_classes_flatten_as_in_jax():
    layer = Linear(1, 2, name="l1")
    leaves, treedef = tree_util.tree_flatten([layer, Params(3, 4)])
    assert leaves == jax.tree_util.tree_leaves([layer, Params(3, 4)]) == [1, 2, 3, 4]
    rebuilt = tree_util.tree_unflatten(treedef, [10, 20, 30, 40])
    assert (rebuilt[0].w, rebuilt[0].b, rebuilt[0].name) == (10, 20, "l1")
    assert rebuilt[1] == Params(30, 40)
    with pytest.raises(ValueError, match="Duplicate"):
        tree_util.register_pytree_node_class(Linear)


def test_registered_classes_pass_through_jit_grad_and_jvp():
    rng = np.random.default_rng(1)
    layer = Linear(rng.standard_normal((3, 2)).astype(np.float32),
                   rng.standard_normal(2).astype(np.float32))
    params = Params(np.float32(1.5), np.float32(-0.5))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    ours = flowjit.jit(flowjit.grad(_model(fnp), argnums=(0, 1)))(layer, params, x)
    theirs = jax.grad(_model(jnp), argnums=(0, 1))(layer, params, x)
    assert isinstance(ours[0], Linear) and isinstance(ours[1], Params)
    for a, b in zip(tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    tangent = tree_util.tree_map(np.ones_like, layer)
    got = flowjit.jvp(lambda l: _model(fnp)(l, params, x), (layer,), (tangent,))
    want = jax.jvp(lambda l: _model(jnp)(l, params, x), (layer,), (tangent,))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    scaled = flowjit.jit(lambda l: tree_util.tree_map(lambda v: v * 2, l))(layer)
    assert isinstance(scaled, Linear) and scaled.name == "linear"


def test_eval_shape_matches_jax():
    def f(np_):
        return lambda a, b: {"sum": (a @ b).sum(0), "ints": np_.argmax(a, 1), "n": a.shape[0]}
    a = jax.ShapeDtypeStruct((5, 3), np.float32)
    b = np.zeros((3, 4), np.float32)
    ours = flowjit.eval_shape(f(fnp), flowjit.ShapeDtypeStruct((5, 3), np.float32), b)
    theirs = jax.eval_shape(f(jnp), a, b)
    for key in ("sum", "ints"):
        assert ours[key].shape == theirs[key].shape and ours[key].dtype == theirs[key].dtype
    assert ours["n"].shape == theirs["n"].shape == ()


def test_block_until_ready_returns_its_argument():
    out = flowjit.jit(lambda x: {"y": x * 2})(np.arange(3.0, dtype=np.float32))
    assert flowjit.block_until_ready(out) is out
    assert out["y"].block_until_ready() is out["y"]
    np.testing.assert_array_equal(out["y"], jax.block_until_ready(jnp.arange(3.0) * 2))
