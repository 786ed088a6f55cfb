"""jvp and linearize — JAX's forward-mode API, on the forward-mode IR transformation.

The function is traced on its flattened primals, `passes.jvp` turns the computation into
one returning (outputs, output tangents), and that is bound back op by op into the current
context (as `ad.vjp` does): inside `jit` it is compiled and fused with the rest, eagerly it
runs at once, and it can be differentiated again in either mode.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import flowjit.numpy  # noqa: F401  (first: its own imports reach flowjit.ad's custom_vjp)
from flowjit import tree
from flowjit.ad import inline
from flowjit.core import Tracer, shape_of, current_trace, trace_subfunction
from flowjit.ir.builder import NameTable
from flowjit.ir.module import Module
from flowjit.numpy._promote import wrap
from flowjit.passes.jvp import jvp as jvp_transform
from flowjit.source_info import at_user_line

# JAX's dtype of the tangent of an integer or boolean value: it has no bits at all.
float0 = np.dtype([("float0", np.void, 0)])


def _zeros_float0(leaf: Any) -> np.ndarray:
    return np.zeros(shape_of(leaf).dims, float0)


def _check_tangent(primal: Any, tangent: Any) -> Any:
    """The tangent as the transformation takes it (None for an integer primal's float0),
    after JAX's checks: equal shapes, a float tangent for a float primal, float0 else."""
    p = shape_of(primal)
    t_dtype = tangent.dtype if hasattr(tangent, "dtype") else np.asarray(tangent).dtype
    t_dims = tuple(np.shape(tangent))
    if not p.dtype.is_float:
        if t_dtype != float0:
            raise TypeError(at_user_line(
                "primal and tangent arguments to jvp do not match; dtypes must be equal, or "
                "in case of int/bool primal dtype the tangent dtype must be float0. Got "
                f"primal dtype {p.dtype.to_numpy()} and so expected tangent dtype float0, "
                f"but got tangent dtype {t_dtype} instead."))
        return None
    if t_dtype == float0 or not np.issubdtype(t_dtype, np.floating):
        raise TypeError(at_user_line(
            "primal and tangent arguments to jvp do not match; dtypes must be equal. Got "
            f"primal dtype {p.dtype.to_numpy()} and tangent dtype {t_dtype}."))
    if t_dims != p.dims:
        raise ValueError(at_user_line(
            f"jvp called with different primal and tangent shapes; got primal shape {p.dims} "
            f"and tangent shape {t_dims}"))
    if isinstance(tangent, Tracer):
        if tangent.dtype != p.dtype.to_numpy():
            from flowjit import lax
            tangent = lax.convert_element_type(tangent, p.dtype.to_numpy())
        return tangent
    return np.asarray(tangent, p.dtype.to_numpy())


def _forward(fun: Callable, primals: tuple, tangent_leaves: Sequence[Any], has_aux: bool):
    """(output, output tangent, aux) of `fun` at the leaves of `primals` along the tangents
    (None: a zero float0 tangent)."""
    leaves, in_tree = tree.flatten(primals)
    leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]
    found: list = []

    def flat_fun(*xs):
        out = fun(*tree.unflatten(in_tree, xs))
        if not has_aux:
            return out
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(at_user_line("jvp with has_aux=True needs the function to return "
                                         "a pair (output, auxiliary data)"))
        out, extra = out
        aux_leaves, aux_tree = tree.flatten(extra)
        traced = [isinstance(leaf, Tracer) for leaf in aux_leaves]
        found.append((tree.flatten(out)[1], (aux_leaves, aux_tree, traced)))
        return out, [leaf for leaf, t in zip(aux_leaves, traced) if t]
    sub = trace_subfunction(flat_fun, [shape_of(x) for x in leaves], "jvp_fun")
    out_tree = found[0][0] if has_aux else sub.out_tree
    wrt = [k for k, t in enumerate(tangent_leaves) if t is not None]
    trace = current_trace()
    names = trace.names if trace is not None else NameTable.for_module(
        Module("jvp", sub.computation, sub.computations))
    forward, callees = jvp_transform(sub.computation, wrt, names)
    if trace is not None:
        for comp in callees:
            trace.add_computation(comp)
    results = list(inline(forward, leaves + list(sub.captured)
                          + [tangent_leaves[k] for k in wrt]))
    n_all = len(results) // 2
    n_out = out_tree.num_leaves
    outputs = results[:n_out]
    tangents = [wrap(t) if shape_of(o).dtype.is_float else _zeros_float0(o)
                for o, t in zip(outputs, results[n_all:n_all + n_out])]
    out = tree.unflatten(out_tree, [wrap(o) for o in outputs])
    aux = None
    if has_aux:
        aux_leaves, aux_tree, traced = found[0][1]
        values = iter(results[n_out:n_all])
        aux = tree.unflatten(aux_tree, [wrap(next(values)) if t else leaf
                                        for leaf, t in zip(aux_leaves, traced)])
    return out, tree.unflatten(out_tree, tangents), aux


def _checked_tangents(primals: Any, tangents: Any) -> list:
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(at_user_line(
            "primal and tangent arguments to jvp must be tuples or lists; found "
            f"{type(primals).__name__} and {type(tangents).__name__}."))
    p_leaves, p_tree = tree.flatten(primals)
    t_leaves, t_tree = tree.flatten(tangents)
    if p_tree != t_tree:
        raise TypeError(at_user_line(
            "primal and tangent arguments to jvp must have the same tree structure; primals "
            f"have tree structure {p_tree} whereas tangents have tree structure {t_tree}."))
    return [_check_tangent(p, t) for p, t in zip(p_leaves, t_leaves)]


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False):
    """(fun(*primals), J·tangents) in one forward pass; with has_aux, fun returns
    (output, aux) and jvp returns (output, tangent, aux). Tangents match the primals' tree,
    shapes and float dtypes; an integer primal takes (and an integer output gives) a float0
    tangent, as in JAX."""
    tangent_leaves = _checked_tangents(primals, tangents)
    out, tangent, aux = _forward(fun, tuple(primals), tangent_leaves, has_aux)
    return (out, tangent, aux) if has_aux else (out, tangent)


def linearize(fun: Callable, *primals: Any, has_aux: bool = False):
    """(fun(*primals), f_jvp): f_jvp(*tangents) is the JVP at `primals` (linear in the
    tangents). The primal outputs are computed here; each f_jvp call runs the forward
    transformation again (inside `jit`, CSE merges its primal part with the first one)."""
    out, _, aux = _forward(fun, primals, [None] * len(tree.flatten(primals)[0]), has_aux)

    def f_jvp(*tangents):
        leaves = _checked_tangents(primals, tangents)
        return _forward(fun, primals, leaves, has_aux)[1]
    return (out, f_jvp, aux) if has_aux else (out, f_jvp)
