"""eval_shape, ShapeDtypeStruct and block_until_ready — JAX's names for the shape of a
result without computing it, and for waiting on a result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from flowjit import tree
from flowjit.core import shape_of, trace_subfunction
from flowjit.ir import dtypes
from flowjit.ir.shapes import ArrayShape


@dataclass(frozen=True)
class ShapeDtypeStruct:
    """An array's shape and dtype only (JAX's `jax.ShapeDtypeStruct`)."""

    shape: tuple
    dtype: np.dtype
    sharding: Any = None
    weak_type: bool = False

    def __init__(self, shape, dtype, sharding=None, weak_type: bool = False):
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))
        object.__setattr__(self, "dtype", np.dtype(dtype))
        object.__setattr__(self, "sharding", sharding)
        object.__setattr__(self, "weak_type", weak_type)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _abstract(leaf: Any) -> ArrayShape:
    if isinstance(leaf, ShapeDtypeStruct):
        from flowjit.config import canonicalize_dtype
        return ArrayShape(dtypes.from_numpy(canonicalize_dtype(leaf.dtype)), leaf.shape)
    return shape_of(leaf)


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """The ShapeDtypeStructs of fun(*args, **kwargs), found by tracing it, running nothing;
    array leaves of the arguments may be arrays or ShapeDtypeStructs."""
    leaves, in_tree = tree.flatten((args, kwargs))

    def flat(*xs):
        positional, named = tree.unflatten(in_tree, xs)
        return fun(*positional, **named)
    traced = trace_subfunction(flat, [_abstract(leaf) for leaf in leaves], "eval_shape")
    outs = [ShapeDtypeStruct(o.shape.dims, o.shape.dtype.to_numpy())
            for o in traced.computation.root.operands]
    return tree.unflatten(traced.out_tree, outs)


def block_until_ready(x: Any) -> Any:
    """`x` once every array in it is computed (flowjit runs synchronously: at once)."""
    for leaf in tree.flatten(x)[0]:
        wait = getattr(leaf, "block_until_ready", None)
        if callable(wait):
            wait()
    return x
