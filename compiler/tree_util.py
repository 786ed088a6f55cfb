"""flowjit.tree_util — JAX's pytree utilities, over the one flatten in `flowjit.tree`.

Tuples, lists, dicts (by sorted key), namedtuples and None (an empty subtree) are nodes;
other classes become nodes by registration; everything else is a leaf.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

from flowjit.tree import TreeDef, flatten, register_pytree_node, tree_map, unflatten

PyTreeDef = TreeDef

__all__ = ["PyTreeDef", "register_dataclass", "register_pytree_node",
           "register_pytree_node_class", "tree_flatten", "tree_leaves", "tree_map",
           "tree_structure", "tree_unflatten"]


def tree_flatten(tree: Any, is_leaf: Optional[Callable[[Any], bool]] = None
                 ) -> tuple[list, TreeDef]:
    """(leaves, treedef) of `tree`."""
    return flatten(tree, is_leaf)


def tree_unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    """The tree of `treedef` holding `leaves`; ValueError if their number differs."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"Too {'few' if len(leaves) < treedef.num_leaves else 'many'} "
                         f"leaves for PyTreeDef; expected {treedef.num_leaves}, got "
                         f"{len(leaves)}.")
    return unflatten(treedef, leaves)


def tree_leaves(tree: Any, is_leaf: Optional[Callable[[Any], bool]] = None) -> list:
    """The leaves of `tree`, in flatten's order."""
    return flatten(tree, is_leaf)[0]


def tree_structure(tree: Any, is_leaf: Optional[Callable[[Any], bool]] = None) -> TreeDef:
    """The treedef of `tree`."""
    return flatten(tree, is_leaf)[1]


def register_pytree_node_class(cls: type) -> type:
    """Class decorator: `cls.tree_flatten(self) -> (children, aux)` and the classmethod
    `cls.tree_unflatten(aux, children)` make it a pytree node."""
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(nodetype: type, data_fields: Optional[Sequence[str]] = None,
                       meta_fields: Optional[Sequence[str]] = None,
                       drop_fields: Sequence[str] = ()) -> type:
    """A dataclass as a pytree node: `data_fields` are children, `meta_fields` static
    (hashable) data. Without either, every field is data (JAX's default for dataclasses)."""
    cls = nodetype
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"register_dataclass: {cls.__name__} is not a dataclass; give "
                            "data_fields and meta_fields")
        data_fields = [f.name for f in dataclasses.fields(cls) if f.init
                       and not f.metadata.get("static", False)]
        meta_fields = [f.name for f in dataclasses.fields(cls) if f.init
                       and f.metadata.get("static", False)]
    data_fields, meta_fields = tuple(data_fields or ()), tuple(meta_fields or ())

    def flatten_fn(x):
        return ([getattr(x, name) for name in data_fields],
                tuple(getattr(x, name) for name in meta_fields))

    def unflatten_fn(aux, children):
        return cls(**dict(zip(data_fields, children)), **dict(zip(meta_fields, aux)))
    register_pytree_node(cls, flatten_fn, unflatten_fn)
    return cls
