"""vmap: JAX's vectorizing map, as a transformation of the traced IR.

The function is traced at the per-example shapes into a computation (inside the current
trace, or on its own when called eagerly); `passes.batching` rewrites that computation to
work on the whole batch, op by op; the result is bound back op by op into the current
context. So vmap works eagerly, inside `jit`, under `grad` and nested, and the batched ops
are compiled and fused like any others.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np

import flowjit.numpy  # noqa: F401  (first: flowjit.ad, imported alone, is an import cycle)
from flowjit import tree
from flowjit.ad import inline
from flowjit.core import Tracer, current_trace, shape_of, trace_subfunction
from flowjit.numpy._promote import wrap
from flowjit.source_info import at_user_line
from flowjit.ir.builder import NameTable
from flowjit.ir.module import Module
from flowjit.ir.shapes import ArrayShape
from flowjit.passes.batching import BatchingError, batch


def _check_axes_spec(axes: Any, what: str) -> None:
    """in_axes/out_axes: a pytree whose leaves are ints or None."""
    leaves = []

    def walk(node):
        if node is None or isinstance(node, (int, np.integer)) and not isinstance(node, bool):
            leaves.append(node)
        elif isinstance(node, (tuple, list)):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)
        else:
            raise TypeError(at_user_line(
                f"vmap {what} must be an int, None, or a (nested) tuple/list/dict of them, "
                f"got {node!r} of type {type(node).__name__}"))
    walk(axes)


def _broadcast_prefix(prefix: Any, full: Any, what: str) -> list:
    """One axis per leaf of `full`: each leaf of the `prefix` tree (an int or None) stands
    for every leaf of the matching subtree of `full` (JAX's tree-prefix rule)."""
    out: list = []

    def walk(p, node, path):
        if p is None or isinstance(p, (int, np.integer)):
            out.extend([p] * len(tree.flatten(node)[0]))
            return
        if isinstance(p, dict) and isinstance(node, dict):
            if sorted(p) != sorted(node):
                raise ValueError(at_user_line(
                    f"vmap {what} at {path or 'the top'} has keys {sorted(p)} but the value "
                    f"has keys {sorted(node)}"))
            for key in sorted(node):
                walk(p[key], node[key], f"{path}[{key!r}]")
            return
        if isinstance(p, (tuple, list)) and isinstance(node, (tuple, list)) and \
                len(p) == len(node):
            for k, (pk, nk) in enumerate(zip(p, node)):
                walk(pk, nk, f"{path}[{k}]")
            return
        raise ValueError(at_user_line(
            f"vmap {what} specification must be a tree prefix of the corresponding value: "
            f"at {path or 'the top'} it is {p!r} but the value is "
            f"{tree.flatten(node)[1]!r}"))
    walk(prefix, full, "")
    return out


def _describe(label: str, leaf: Any) -> str:
    s = shape_of(leaf)
    return f"{label} of type {s.dtype.to_numpy().name}[{','.join(map(str, s.dims))}]"


def _leaf_labels(args: tuple, kwargs: dict, names: list[str]) -> list[str]:
    labels = []
    for k, arg in enumerate(args):
        name = names[k] if k < len(names) else f"argument {k}"
        count = len(tree.flatten(arg)[0])
        labels += [name if count == 1 else f"leaf {j} of {name}" for j in range(count)]
    for key in sorted(kwargs):
        count = len(tree.flatten(kwargs[key])[0])
        labels += [f"keyword argument {key!r}" if count == 1 else
                   f"leaf {j} of keyword argument {key!r}" for j in range(count)]
    return labels


def _mapped_size(leaves, axes, labels, axis_size: Optional[int]) -> int:
    """The size of the mapped axis, checked to agree across arguments; ValueError naming
    every argument's shape otherwise."""
    sizes = []
    for leaf, axis, label in zip(leaves, axes, labels):
        if axis is None:
            continue
        rank = shape_of(leaf).rank
        if not -rank <= axis < rank:
            raise ValueError(at_user_line(
                f"vmap was requested to map its argument along axis {axis}, which implies "
                f"that its rank should be at least {axis + 1 if axis >= 0 else -axis}, but "
                f"is only {rank} ({_describe(label, leaf)})"))
        sizes.append((shape_of(leaf).dims[axis % rank], axis % rank, label, leaf))
    if axis_size is not None:
        sizes = [(int(axis_size), None, "axis_size", None)] + sizes
    if not sizes:
        raise ValueError(at_user_line(
            "vmap must have at least one non-None value in in_axes (or be given axis_size)"))
    if len({s for s, *_ in sizes}) > 1:
        lines = [f"  * axis_size={s}" if leaf is None else
                 f"  * an axis of size {s}: axis {a} of {_describe(label, leaf)}"
                 for s, a, label, leaf in sizes]
        raise ValueError(at_user_line("vmap got inconsistent sizes for array axes to be "
                                      "mapped:\n" + "\n".join(lines)))
    return sizes[0][0]


def _argument_names(fun: Callable) -> list[str]:
    import inspect
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return []
    return [f"argument {p.name!r}" for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _flatten_arguments(fun: Callable, in_axes: Any, axis_size: Optional[int], args: tuple,
                       kwargs: dict) -> tuple[list, Any, list, int]:
    """The argument leaves (positional, then keyword by name), their tree, each leaf's
    mapped axis (non-negative, or None) and the mapped size; clear errors otherwise."""
    if isinstance(in_axes, tuple) and len(in_axes) != len(args):
        raise ValueError(at_user_line(
            f"vmap in_axes must be an int, None, or a tuple of entries corresponding to "
            f"the positional arguments passed to the function, but got "
            f"len(in_axes)={len(in_axes)}, len(args)={len(args)}"))
    positional = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    axes = _broadcast_prefix(tuple(positional), tuple(args), "in_axes")
    keys = sorted(kwargs)
    axes += [0] * len(tree.flatten([kwargs[k] for k in keys])[0])   # as JAX: axis 0
    leaves, in_tree = tree.flatten((tuple(args), [kwargs[k] for k in keys]))
    leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]
    labels = _leaf_labels(args, kwargs, _argument_names(fun))
    size = _mapped_size(leaves, axes, labels, axis_size)
    axes = [None if a is None else a % shape_of(x).rank for a, x in zip(axes, leaves)]
    return leaves, in_tree, axes, size


def _output_axes(out_axes: Any, example_out: Any, comp) -> list:
    """Each output leaf's mapped axis (non-negative, or None) from the out_axes prefix."""
    wanted = _broadcast_prefix(out_axes, example_out, "out_axes")
    dims = []
    for axis, out in zip(wanted, comp.root.operands):
        rank = out.shape.rank + 1
        if axis is not None and not -rank <= axis < rank:
            raise ValueError(at_user_line(
                f"vmap out_axes={axis} is out of range for an output of rank {rank} "
                f"(the mapped {out.shape} with the mapped axis)"))
        dims.append(None if axis is None else axis % rank)
    return dims


def _is_jitted(fun: Callable) -> bool:
    from flowjit.jitted import Jitted
    return isinstance(fun, Jitted) and not fun.static_argnums and not fun.static_argnames


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
         axis_size: Optional[int] = None, spmd_axis_name: Any = None,
         sum_match: bool = False) -> Callable:
    """`fun` mapped over an axis of its arguments, as `jax.vmap`.

    `in_axes`: an int, None, or a tuple with one entry per positional argument, each a
    pytree prefix of that argument whose leaves are ints (the mapped axis, negative counts
    from the end) or None (not mapped); keyword arguments are mapped along axis 0.
    `out_axes`: the same for the result. `axis_size` gives the size when nothing is
    mapped. With `sum_match`, a mapped output whose out_axes is None is summed over the
    mapped axis (else it is an error). `axis_name` and `spmd_axis_name` are accepted for
    JAX's signature; flowjit has no collectives that could use them."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)    # as JAX: a list is read as the tuple of positional axes
    if not (in_axes is None or isinstance(in_axes, (int, tuple)) or
            isinstance(in_axes, np.integer)) or isinstance(in_axes, bool):
        raise TypeError(at_user_line(
            "vmap in_axes must be an int, None, or a tuple of entries corresponding to the "
            f"positional arguments passed to the function, but got {in_axes!r}"))
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    if not callable(fun):
        raise TypeError(f"vmap expects a callable, got {fun!r}")

    compiled: list = []

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        if current_trace() is None and _is_jitted(fun):
            # vmap of a jitted function, called eagerly: the batched function is compiled
            # (as JAX's batched pjit is), not run op by op.
            if not compiled:
                from flowjit.jitted import jit
                compiled.append(jit(batched, opt_level=fun.opt_level, device=fun.device))
            return compiled[0](*args, **kwargs)
        leaves, in_tree, axes, size = _flatten_arguments(fun, in_axes, axis_size, args,
                                                         kwargs)
        keys = sorted(kwargs)
        shapes = []
        for leaf, axis in zip(leaves, axes):
            s = shape_of(leaf)
            dims = s.dims if axis is None else s.dims[:axis] + s.dims[axis + 1:]
            shapes.append(ArrayShape(s.dtype, dims))
        found: list = []

        def flat_fun(*xs):
            pos, kw = tree.unflatten(in_tree, xs)
            out = fun(*pos, **dict(zip(keys, kw)))
            out_leaves, out_tree = tree.flatten(out)
            found.append((out, out_tree))
            return out_leaves
        sub = trace_subfunction(flat_fun, shapes, "vmap_fun")
        example_out, out_tree = found[0]
        out_dims = _output_axes(out_axes, example_out, sub.computation)
        trace = current_trace()
        names = trace.names if trace is not None else NameTable.for_module(
            Module("vmap", sub.computation, sub.computations))
        param_bdims = axes + [None] * len(sub.captured)
        try:
            comp, extra, _ = batch(sub.computation, param_bdims, size, names, out_dims,
                                  sum_match)
        except BatchingError as e:
            raise BatchingError(at_user_line(str(e))) from None
        if trace is not None:
            for c in extra:
                trace.add_computation(c)
        results = inline(comp, leaves + list(sub.captured))
        return tree.unflatten(out_tree, [wrap(r) for r in results])

    return batched
