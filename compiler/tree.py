"""Pytrees: nested tuples, lists, dicts (and None) flattened to leaves and rebuilt.

Other classes join with `register_pytree_node(cls, flatten, unflatten)` (JAX's protocol:
flatten(x) -> (children, aux_data) with hashable aux_data; unflatten(aux_data, children));
jit, grad and the other transformations all flatten through `flatten` here, so registered
classes pass through them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree with its leaves taken out. Hashable: a cache key part."""

    kind: str    # "leaf", "none", "tuple", "list", "dict", "namedtuple", "custom"
    children: tuple["TreeDef", ...] = ()
    meta: Any = None              # dict keys, the namedtuple class, or (class, aux data)

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __repr__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        if self.kind == "custom":
            cls, aux = self.meta
            return f"CustomNode({cls.__name__}[{aux!r}], [{', '.join(map(repr, self.children))}])"
        inner = ", ".join(map(repr, self.children))
        if self.kind == "dict":
            inner = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.meta, self.children))
            return "{" + inner + "}"
        return f"[{inner}]" if self.kind == "list" else f"({inner})"


LEAF = TreeDef("leaf")


# class -> (flatten, unflatten) for classes registered as pytree nodes.
_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable,
                         flatten_with_keys_func: Optional[Callable] = None) -> None:
    """Make `nodetype` a pytree node: flatten_func(x) -> (children, hashable aux_data),
    unflatten_func(aux_data, children) -> x (JAX's protocol; key paths are not kept)."""
    if nodetype in _REGISTRY:
        raise ValueError(f"Duplicate custom PyTreeDef type registration for {nodetype}.")
    _REGISTRY[nodetype] = (flatten_func, unflatten_func)


def registered_children(value: Any) -> Optional[list]:
    """The children of a value of a registered class, else None."""
    if type(value) not in _REGISTRY:
        return None
    return list(_REGISTRY[type(value)][0](value)[0])


def flatten(tree: Any, is_leaf: Optional[Callable[[Any], bool]] = None
            ) -> tuple[list, TreeDef]:
    """Leaves of `tree` in order, and its structure; `is_leaf(x)` True stops at x."""
    leaves: list = []
    return leaves, _flatten(tree, leaves, is_leaf)


def _flatten(tree: Any, leaves: list, is_leaf: Optional[Callable] = None) -> TreeDef:
    if is_leaf is not None and is_leaf(tree):
        leaves.append(tree)
        return LEAF
    if tree is None:
        return TreeDef("none")
    if type(tree) in _REGISTRY:
        children, aux = _REGISTRY[type(tree)][0](tree)
        return TreeDef("custom", tuple(_flatten(c, leaves, is_leaf) for c in children),
                       (type(tree), aux))
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return TreeDef("namedtuple", tuple(_flatten(c, leaves, is_leaf) for c in tree),
                       type(tree))
    if isinstance(tree, (tuple, list)):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return TreeDef(kind, tuple(_flatten(c, leaves, is_leaf) for c in tree))
    if isinstance(tree, dict):
        keys = tuple(sorted(tree))
        return TreeDef("dict", tuple(_flatten(tree[k], leaves, is_leaf) for k in keys), keys)
    leaves.append(tree)
    return LEAF


def unflatten(treedef: TreeDef, leaves) -> Any:
    """Rebuild the tree of `treedef` from `leaves` (in flatten's order)."""
    it = iter(leaves)
    result = _unflatten(treedef, it)
    return result


def _unflatten(treedef: TreeDef, it) -> Any:
    if treedef.kind == "leaf":
        return next(it)
    if treedef.kind == "none":
        return None
    children = [_unflatten(c, it) for c in treedef.children]
    if treedef.kind == "tuple":
        return tuple(children)
    if treedef.kind == "list":
        return children
    if treedef.kind == "namedtuple":
        return treedef.meta(*children)
    if treedef.kind == "custom":
        cls, aux = treedef.meta
        return _REGISTRY[cls][1](aux, children)
    return dict(zip(treedef.meta, children))


def tree_map(f: Callable, tree: Any, *rest: Any,
             is_leaf: Optional[Callable[[Any], bool]] = None) -> Any:
    """Apply `f` to each leaf (and the matching leaves of `rest`)."""
    leaves, treedef = flatten(tree, is_leaf)
    others = [flatten(r, is_leaf)[0] for r in rest]
    return unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])

