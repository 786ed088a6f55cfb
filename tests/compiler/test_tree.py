"""Pytrees flatten and rebuild to the same structure."""
from collections import namedtuple

from hypothesis import given, strategies as st

from flowjit import tree

leaves = st.integers()
trees = st.recursive(leaves | st.none(), lambda children: st.lists(children, max_size=3)
                     | st.tuples(children, children)
                     | st.dictionaries(st.text(min_size=1, max_size=3), children, max_size=3),
                     max_leaves=12)


@given(trees)
def test_flatten_unflatten_roundtrip(value):
    flat, treedef = tree.flatten(value)
    assert tree.unflatten(treedef, flat) == value
    assert treedef.num_leaves == len(flat)


def test_namedtuple_and_dict_order():
    Point = namedtuple("Point", "x y")
    flat, treedef = tree.flatten({"b": Point(1, 2), "a": [3]})
    assert flat == [3, 1, 2]  # dict keys sorted, as JAX does
    assert tree.unflatten(treedef, [30, 10, 20]) == {"a": [30], "b": Point(10, 20)}
