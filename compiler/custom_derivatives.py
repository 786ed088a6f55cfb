"""custom_jvp — a function with its own forward-mode rule, as `jax.custom_jvp`.

Traced, a call is one `custom-call` "flowjit.custom_jvp" whose called computations are the
primal function and the rule, both on flat leaves: rule(x..., t...) -> (f(x)..., J·t...).
Forward mode (`passes.jvp_control`) calls the rule; reverse mode (`passes.vjp_custom_jvp`)
transposes the rule's linear tangent part (the VJP of the rule w.r.t. its tangents, which
is J transposed: JAX's way, linearize then transpose); code generation runs the primal.
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable, Sequence

import numpy as np

from flowjit import tree
from flowjit.core import Tracer, bind, shape_of, trace_subfunction
from flowjit.numpy._promote import wrap
from flowjit.source_info import at_user_line


class custom_jvp:
    """`f = custom_jvp(fun, nondiff_argnums=())`, then `f.defjvp(rule)` with
    rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out), or
    `f.defjvps(jvp_0, jvp_1, ...)` with jvp_i(tangent_i, primal_out, *primals) (None for an
    argument without a derivative). Arguments at `nondiff_argnums` (or named in
    `nondiff_argnames`, passed by position) are static Python values
    passed to fun and rule as they are; the others are pytrees of arrays. Used under `jvp`,
    `grad` (the rule transposed), `jit`, and eagerly (fun itself)."""

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = (),
                 nondiff_argnames: Sequence[str] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        from flowjit.checkpointing import argument_positions
        named = argument_positions(fun, nondiff_argnames)
        self.nondiff_argnums = tuple(sorted(set(nondiff_argnums) | set(named)))
        self.jvp = None
        self._tracing_rule = False

    def defjvp(self, jvp: Callable, symbolic_zeros: bool = False) -> Callable:
        """Use `jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`."""
        if symbolic_zeros:
            raise NotImplementedError("custom_jvp.defjvp(symbolic_zeros=True): tangents are "
                                      "always arrays here (zeros where there are none)")
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps: Callable) -> None:
        """One rule per argument: jvp_i(tangent_i, primal_out, *primals), summed."""
        def rule(*args):
            *static, primals, tangents = args
            out = self.fun(*self._merge(static, primals))
            parts = [j(t, out, *primals) for j, t in zip(jvps, tangents) if j is not None]
            if not parts:
                return out, tree.tree_map(lambda o: o * 0, out)
            return out, functools.reduce(
                lambda a, b: tree.tree_map(operator.add, a, b), parts)
        self.defjvp(rule)

    def _merge(self, static: Sequence[Any], dynamic: Sequence[Any]) -> list:
        """The full argument list from the static (nondiff) and the other arguments."""
        args, static_it, dynamic_it = [], iter(static), iter(dynamic)
        for i in range(len(static) + len(dynamic)):
            args.append(next(static_it) if i in self.nondiff_argnums else next(dynamic_it))
        return args

    def __call__(self, *args: Any) -> Any:
        if self.jvp is None:
            raise TypeError(at_user_line(f"{self.__name__}: no JVP rule; call defjvp(rule) "
                                         "or defjvps(...) before calling it"))
        if any(not -len(args) <= i < len(args) for i in self.nondiff_argnums):
            raise TypeError(at_user_line(f"{self.__name__}: nondiff_argnums="
                                         f"{self.nondiff_argnums} out of range for "
                                         f"{len(args)} arguments"))
        if self._tracing_rule:   # the rule calls f itself (as JAX allows): the plain function
            return self.fun(*args)
        self._tracing_rule = True
        try:
            return self._bind(args)
        finally:
            self._tracing_rule = False

    def _bind(self, args: Sequence[Any]) -> Any:
        static = [args[i] for i in self.nondiff_argnums]
        dynamic = [a for i, a in enumerate(args) if i not in self.nondiff_argnums]
        leaves, in_tree = tree.flatten(tuple(dynamic))
        leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]
        shapes = [shape_of(x) for x in leaves]
        name = self.__name__

        def primal_flat(*xs):
            return self.fun(*self._merge(static, tree.unflatten(in_tree, xs)))
        primal = trace_subfunction(primal_flat, shapes, f"{name}_primal")
        out_tree = primal.out_tree
        out_shapes = [o.shape for o in primal.computation.root.operands]

        def rule_flat(*xs):
            n = len(xs) // 2
            primals = tree.unflatten(in_tree, xs[:n])
            tangents = tree.unflatten(in_tree, xs[n:])
            result = self.jvp(*static, tuple(primals), tuple(tangents))
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(at_user_line(f"{name}: the JVP rule must return a pair "
                                             "(primal_out, tangent_out)"))
            out_leaves, tree_of_out = tree.flatten(result[0])
            t_leaves, tree_of_tangent = tree.flatten(result[1])
            if tree_of_out != out_tree or tree_of_tangent != out_tree:
                raise TypeError(at_user_line(
                    f"{name}: the JVP rule's primal and tangent outputs must have the "
                    f"function's output structure {out_tree}; got {tree_of_out} and "
                    f"{tree_of_tangent}"))
            return (*out_leaves, *[_as_tangent(t, s, name) for t, s in zip(t_leaves,
                                                                           out_shapes)])
        rule = trace_subfunction(rule_flat, shapes + shapes, f"{name}_jvp_rule")
        if primal.captured or rule.captured:
            raise TypeError(at_user_line(f"{name}: custom_jvp functions must take every "
                                         "traced value they use as an argument"))
        calls = {"called_computations": [primal.computation, rule.computation]}
        out = bind("custom-call", leaves, {"custom_call_target": "flowjit.custom_jvp"}, calls)
        out = list(out) if isinstance(out, tuple) else [out]
        return tree.unflatten(out_tree, [wrap(o) for o in out])


def _as_tangent(t: Any, shape, name: str) -> Any:
    """The rule's tangent output `t` as an array of the primal output's shape and dtype."""
    if tuple(np.shape(t)) != shape.dims:
        raise TypeError(at_user_line(
            f"{name}: the JVP rule's tangent output has shape {tuple(np.shape(t))} but the "
            f"primal output has shape {shape.dims}"))
    dtype = shape.dtype.to_numpy()
    if isinstance(t, Tracer):
        if t.dtype == dtype:
            return t
        from flowjit import lax
        return lax.convert_element_type(t, dtype)
    return np.asarray(t, dtype)
