"""jacfwd, jacrev, hessian — JAX's Jacobians, built as JAX builds them: a `vmap` of forward
(`jvp`) or reverse (`vjp`) mode over the standard basis, so the columns (or rows) of a
Jacobian are one batched program, not a Python loop of them.

The result's leaves have shape `out.shape + in.shape` (JAX's convention); with several
`argnums`, one per argument, in a tuple; pytrees on either side give the same nesting as
JAX (the output's structure outside, the argument's inside).
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np

from flowjit import tree_util as tree
from flowjit.core import shape_of


def _argnums(argnums: Union[int, Sequence[int]], count: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -count <= n < count:
            raise ValueError(f"argnums {argnums!r} out of range for a function of {count} "
                             "positional arguments")
    return tuple(n % count for n in nums)


def _dtype(leaf) -> np.dtype:
    return np.dtype(shape_of(leaf).dtype.to_numpy())


def _float_check(leaves, name: str) -> None:
    for leaf in leaves:
        dtype = _dtype(leaf)
        if not np.issubdtype(dtype, np.inexact):
            raise TypeError(f"{name} requires real- or complex-valued inputs (input dtype that "
                            f"is a sub-dtype of np.inexact), but got {dtype.name}.")


def _basis(leaves) -> list:
    """The standard basis of the flattened leaves: for each leaf, an [n, *leaf.shape] array
    whose rows are the basis vectors restricted to that leaf (n: all leaves' sizes)."""
    import flowjit.numpy as fnp
    sizes = [int(np.prod(shape_of(leaf).dims)) for leaf in leaves]
    total = sum(sizes)
    parts, at = [], 0
    for leaf, size in zip(leaves, sizes):
        eye = np.zeros((total, size), dtype=_dtype(leaf))
        eye[np.arange(at, at + size), np.arange(size)] = 1
        parts.append(fnp.asarray(eye.reshape((total,) + tuple(shape_of(leaf).dims))))
        at += size
    return parts


def _split(batched, leaves, outer_shape: tuple, axis_first: bool):
    """Cut the basis axis of `batched` (size = the leaves' total size) into one piece per
    leaf and shape each as outer_shape + leaf.shape (axis_first: the basis axis leads)."""
    pieces, at = [], 0
    for leaf in leaves:
        shape = tuple(shape_of(leaf).dims)
        size = int(np.prod(shape))
        if axis_first:
            piece = batched[at:at + size]
            pieces.append(piece.reshape(shape + outer_shape))
        else:
            piece = batched[..., at:at + size]
            pieces.append(piece.reshape(outer_shape + shape))
        at += size
    return pieces


def _with_args(fun: Callable, args: tuple, nums: tuple[int, ...]) -> Callable:
    def partial(*chosen):
        full = list(args)
        for n, value in zip(nums, chosen):
            full[n] = value
        return fun(*full)
    return partial


def jacfwd(fun: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian of `fun` by forward mode: a vmap of `jvp` over the input basis."""
    from flowjit.batching import vmap
    from flowjit.forward import jvp
    if holomorphic:
        raise NotImplementedError("jacfwd(holomorphic=True): flowjit has no complex types")

    def jacobian(*args):
        nums = _argnums(argnums, len(args))
        chosen = tuple(args[n] for n in nums)
        leaves, treedef = tree.tree_flatten(chosen)
        _float_check(leaves, "jacfwd")
        basis = _basis(leaves)
        partial = _with_args(fun, args, nums)

        def push(*directions):
            tangents = tree.tree_unflatten(treedef, list(directions))
            out = jvp(partial, chosen, tangents, has_aux=has_aux)
            return out[1] if not has_aux else (out[1], out[2])
        pushed = vmap(push, out_axes=-1)(*basis)
        if has_aux:
            pushed, aux = pushed
            aux = tree.tree_map(lambda a: a[..., 0], aux)
        out_leaves, out_def = tree.tree_flatten(pushed)
        columns = [_pack(_split(out, leaves, tuple(out.shape[:-1]), axis_first=False),
                         treedef, argnums) for out in out_leaves]
        result = tree.tree_unflatten(out_def, columns)
        return (result, aux) if has_aux else result
    return jacobian


def jacrev(fun: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False,
           holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """The Jacobian of `fun` by reverse mode: a vmap of the VJP over the output basis."""
    from flowjit.ad import vjp
    from flowjit.batching import vmap
    if holomorphic:
        raise NotImplementedError("jacrev(holomorphic=True): flowjit has no complex types")

    def jacobian(*args):
        nums = _argnums(argnums, len(args))
        chosen = tuple(args[n] for n in nums)
        leaves, treedef = tree.tree_flatten(chosen)
        if not allow_int:
            _float_check(leaves, "jacrev")
        partial = _with_args(fun, args, nums)
        if has_aux:
            out, pullback, aux = vjp(partial, *chosen, has_aux=True)
        else:
            out, pullback = vjp(partial, *chosen)
        out_leaves, out_def = tree.tree_flatten(out)
        basis = _basis(out_leaves)

        def pull(*directions):
            return pullback(tree.tree_unflatten(out_def, list(directions)))
        # Per argument leaf: [basis, *arg.shape], the basis running over the output leaves.
        pulled = tree.tree_leaves(vmap(pull)(*basis))
        per_arg = [_split(g, out_leaves, tuple(shape_of(a).dims), axis_first=True)
                   for a, g in zip(leaves, pulled)]
        columns = [_pack([piece[k] for piece in per_arg], treedef, argnums)
                   for k in range(len(out_leaves))]
        result = tree.tree_unflatten(out_def, columns)
        return (result, aux) if has_aux else result
    return jacobian


def _pack(pieces: list, treedef, argnums):
    """The per-argument-leaf pieces in the arguments' structure; a single int argnums gives
    that argument's structure alone (JAX)."""
    packed = tree.tree_unflatten(treedef, pieces)
    return packed[0] if isinstance(argnums, int) else packed


def hessian(fun: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian: forward over reverse, `jacfwd(jacrev(fun))`, as JAX computes it."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic), argnums,
                  has_aux=has_aux, holomorphic=holomorphic)

