"""grad, value_and_grad, vjp, jvp, custom_vjp, stop_gradient — JAX's API.

The function is traced into a computation (inside the current trace, or on its own when
called eagerly), `passes.vjp` turns that into its VJP computation, and the result is bound
back op by op into the current context. So the gradient ops are ordinary primitives: inside
`jit` they are compiled and fused with everything else, eagerly they run at once, and
`grad(grad(f))` differentiates the gradient's own ops.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import numpy as np

from flowjit import tree
from flowjit.core import (Tracer, as_array, bind, current_trace, shape_of,
                          trace_subfunction)
from flowjit.numpy._promote import wrap
from flowjit.source_info import at_user_line
from flowjit.ir.builder import NameTable
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.reference import evaluate_instruction
from flowjit.passes.vjp import vjp as vjp_transform


def _pack(value: Any) -> Any:
    """A tuple value as one operand: a traced tuple if any element is traced."""
    if not isinstance(value, tuple):
        return value
    elements = [_pack(v) for v in value]
    if any(isinstance(v, Tracer) for v in elements):
        return bind("tuple", elements, unpack=False)
    return tuple(elements)


def _concrete(value: Any) -> Any:
    return tuple(_concrete(v) for v in value) if isinstance(value, tuple) else as_array(value)


def _apply(inst: Instruction, operands: list) -> Any:
    """`inst`'s op on new operands: staged when any is traced, else evaluated."""
    operands = [_pack(o) for o in operands]
    traced = any(isinstance(o, Tracer) for o in operands)
    if not traced and (inst.shape.is_tuple or any(isinstance(o, tuple) for o in operands)):
        return _concrete(evaluate_instruction(inst, operands))
    value = bind(inst.opcode, operands, inst.attrs, inst.calls, shape=inst.shape, unpack=False)
    if isinstance(value, Tracer):
        value.inst.extra_attrs.update(inst.extra_attrs)  # e.g. a loop's known trip count
    return value


def inline(comp: Computation, args: Sequence[Any]) -> Any:
    """Re-bind each instruction of `comp` on `args`: returns the root's value(s)."""
    values: dict[int, Any] = {}
    for inst in comp.instructions:
        op = inst.opcode
        if op == "parameter":
            value = args[inst.attrs["number"]]
        elif op == "constant":
            value = np.asarray(inst.literal)
        elif op == "tuple":
            value = tuple(values[id(o)] for o in inst.operands)
        elif op == "get-tuple-element" and isinstance(values[id(inst.operands[0])], tuple):
            value = values[id(inst.operands[0])][inst.attrs["index"]]
        else:
            value = _apply(inst, [values[id(o)] for o in inst.operands])
        values[id(inst)] = value
    return values[id(comp.root)]


def _check_differentiable(leaf: Any, label: str) -> None:
    dtype = shape_of(leaf).dtype
    if not dtype.is_float:
        raise TypeError(at_user_line(
            f"grad requires real-valued (float) inputs, but {label} has dtype "
            f"{dtype.to_numpy()}; differentiate with respect to float arguments only"))


@dataclass
class _Linearized:
    """A function traced on flat leaves, its VJP computation, and the operands of both.

    The traced function's outputs are its result's leaves, then the traced leaves of its
    auxiliary data (has_aux), which get zero cotangents."""

    forward: Computation
    backward: Computation
    operands: list
    in_tree: Any
    out_tree: Any
    aux: Any                      # (leaves, tree, which leaves are outputs) or None

    @property
    def n_out(self) -> int:
        return self.out_tree.num_leaves

    def outputs(self) -> list:
        """The result's leaves (computed by re-binding the forward computation)."""
        return list(inline(self.forward, self.operands))[:self.n_out]

    def pull_back(self, cotangents: Sequence[Any]) -> tuple[list, list, Any]:
        """(result leaves, cotangent leaves of the primals, aux) for these cotangents."""
        extra = [np.zeros(o.shape.dims, o.shape.dtype.to_numpy())
                 for o in self.forward.root.operands[self.n_out:]]
        results = inline(self.backward, self.operands + list(cotangents) + extra)
        n_all = len(self.forward.root.operands)
        aux = None
        if self.aux is not None:
            leaves, aux_tree, traced = self.aux
            values = iter(results[self.n_out:n_all])
            aux = tree.unflatten(aux_tree, [wrap(next(values)) if t else leaf
                                            for leaf, t in zip(leaves, traced)])
        return list(results[:self.n_out]), list(results[n_all:]), aux


def _linearize(fun: Callable, primals: Sequence[Any], labels: Sequence[str],
               has_aux: bool = False) -> _Linearized:
    leaves, in_tree = tree.flatten(tuple(primals))
    leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]
    for leaf, label in zip(leaves, labels):
        _check_differentiable(leaf, label)
    found: list = []

    def flat_fun(*xs):
        out = fun(*tree.unflatten(in_tree, xs))
        if not has_aux:
            return out
        out, extra = out
        aux_leaves, aux_tree = tree.flatten(extra)
        traced = [isinstance(leaf, Tracer) for leaf in aux_leaves]
        found.append((tree.flatten(out)[1], (aux_leaves, aux_tree, traced)))
        return out, [leaf for leaf, t in zip(aux_leaves, traced) if t]
    sub = trace_subfunction(flat_fun, [shape_of(x) for x in leaves], "vjp_fun")
    out_tree, aux = found[0] if has_aux else (sub.out_tree, None)
    trace = current_trace()
    names = trace.names if trace is not None else NameTable.for_module(
        Module("vjp", sub.computation, sub.computations))
    backward, callees = vjp_transform(sub.computation, list(range(len(leaves))), names)
    if trace is not None:
        for comp in callees:
            trace.add_computation(comp)
    return _Linearized(sub.computation, backward, leaves + list(sub.captured), in_tree,
                       out_tree, aux)


def _labels(primals: Sequence[Any], names: Sequence[str]) -> list[str]:
    """A name for each leaf of `primals` for error messages."""
    out = []
    for primal, name in zip(primals, names):
        count = len(tree.flatten(primal)[0])
        out += [name if count == 1 else f"leaf {k} of {name}" for k in range(count)]
    return out


def _like(value: Any, reference: Any) -> Any:
    """`value` as an array of `reference`'s dtype."""
    dtype = shape_of(reference).dtype.to_numpy()
    if isinstance(value, Tracer):
        from flowjit import lax
        return lax.convert_element_type(value, dtype)
    return np.asarray(value, dtype=dtype)


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """(fun(*primals), vjp_fn): vjp_fn(cotangent) gives the cotangent of each primal."""
    names = [f"argument {k}" for k in range(len(primals))]
    lin = _linearize(fun, primals, _labels(primals, names), has_aux)
    results = inline(lin.forward, lin.operands)
    out_leaves = list(results[:lin.n_out])

    def vjp_fn(cotangent: Any):
        ct_leaves, ct_tree = tree.flatten(cotangent)
        if ct_tree != lin.out_tree:
            raise TypeError(at_user_line(f"vjp_fn expects a cotangent with the output's "
                                         f"structure {lin.out_tree}, got {ct_tree}"))
        _, grads, _ = lin.pull_back([_like(c, o) for c, o in zip(ct_leaves, out_leaves)])
        return tree.unflatten(lin.in_tree, [wrap(g) for g in grads])

    primal_out = tree.unflatten(lin.out_tree, [wrap(o) for o in out_leaves])
    if has_aux:
        leaves, aux_tree, traced = lin.aux
        values = iter(results[lin.n_out:])
        aux = tree.unflatten(aux_tree, [wrap(next(values)) if t else leaf
                                        for leaf, t in zip(leaves, traced)])
        return primal_out, vjp_fn, aux
    return primal_out, vjp_fn


def _argument_names(fun: Callable, nums: Sequence[int]) -> list[str]:
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    out = []
    for i in nums:
        named = i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY,
                                                        params[i].POSITIONAL_OR_KEYWORD)
        out.append(f"argument {params[i].name!r} (argnums={i})" if named
                   else f"argument {i}")
    return out


def value_and_grad(fun: Callable, argnums: Union[int, Sequence[int]] = 0,
                   has_aux: bool = False) -> Callable:
    """fun's value and its gradient w.r.t. the arguments `argnums` (pytrees allowed)."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    def wrapped(*args):
        if any(not -len(args) <= i < len(args) for i in nums):
            raise TypeError(at_user_line(f"argnums={argnums} is out of range for "
                                         f"{len(args)} positional arguments"))
        chosen = tuple(args[i] for i in nums)

        def partial(*xs):
            full = list(args)
            for i, x in zip(nums, xs):
                full[i] = x
            return fun(*full)
        labels = _labels(chosen, _argument_names(fun, nums))
        lin = _linearize(partial, chosen, labels, has_aux)
        outputs = lin.forward.root.operands[:lin.n_out]
        if len(outputs) != 1 or outputs[0].shape.rank != 0 or \
                not outputs[0].shape.dtype.is_float:
            shown = ", ".join(str(o.shape) for o in outputs)
            raise TypeError(at_user_line(
                f"grad requires a scalar float output, but the function returned {shown}; "
                "use vjp for non-scalar outputs"))
        one = np.ones((), outputs[0].shape.dtype.to_numpy())
        (value,), grads, aux = lin.pull_back([one])
        grads = tree.unflatten(lin.in_tree, [wrap(g) for g in grads])
        grads = grads[0] if single else grads
        if has_aux:
            return (wrap(value), aux), grads
        return wrap(value), grads
    return wrapped


def grad(fun: Callable, argnums: Union[int, Sequence[int]] = 0,
         has_aux: bool = False) -> Callable:
    """The gradient of scalar-valued `fun` w.r.t. the arguments `argnums`."""
    vg = value_and_grad(fun, argnums, has_aux)

    def wrapped(*args):
        value, grads = vg(*args)
        if has_aux:
            return grads, value[1]
        return grads
    return wrapped


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False):
    """(fun(*primals), J·tangents): forward mode, `flowjit.forward.jvp`."""
    from flowjit.forward import jvp as forward_jvp
    return forward_jvp(fun, primals, tangents, has_aux)


def stop_gradient(x: Any) -> Any:
    """x, but gradients do not flow through it (a constant for differentiation)."""
    return tree.tree_map(lambda leaf: wrap(bind("custom-call", [leaf], {
        "custom_call_target": "stop_gradient"})), x)


class custom_vjp:
    """A function with its own VJP rule, as `jax.custom_vjp`:

        @custom_vjp
        def f(x, y): ...
        f.defvjp(f_fwd, f_bwd)  # f_fwd(x, y) -> (f(x, y), residuals)
                                # f_bwd(residuals, g) -> (dx, dy)

    Arguments are arrays (or Python scalars); the result and residuals are pytrees of arrays;
    bwd may return None for an argument with a zero cotangent. Traced, the call is one
    `custom-call` whose called computations are the primal, fwd and bwd: the VJP
    transformation calls fwd and bwd, code generation runs the primal.
    """

    def __init__(self, fun: Callable):
        self.fun = fun
        self.fwd = self.bwd = None
        self._tracing_rule = False
        self.__name__ = getattr(fun, "__name__", "custom_vjp")
        self.__doc__ = getattr(fun, "__doc__", None)

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Use `fwd` (value and residuals) and `bwd` (residuals, g -> cotangents)."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(at_user_line(f"{self.__name__}: call defvjp(fwd, bwd) first"))
        if self._tracing_rule:  # fwd or bwd calls f itself (as JAX allows): the plain function
            return self.fun(*args)
        self._tracing_rule = True
        try:
            return self._bind(args)
        finally:
            self._tracing_rule = False

    def _bind(self, args):
        leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in args]
        shapes = [shape_of(x) for x in leaves]
        name = self.__name__
        primal = trace_subfunction(self.fun, shapes, f"{name}_primal", False)
        out_tree = primal.out_tree
        residual_tree: list = []

        def fwd_flat(*xs):
            out, residuals = self.fwd(*xs)
            out_leaves, tree_of_out = tree.flatten(out)
            if tree_of_out != out_tree:
                raise TypeError(at_user_line(f"{name}: fwd must return (output, residuals) "
                                             f"with the output structured as {out_tree}"))
            res_leaves, res_tree = tree.flatten(residuals)
            residual_tree.append(res_tree)
            return (*out_leaves, *res_leaves)
        fwd = trace_subfunction(fwd_flat, shapes, f"{name}_fwd")
        n_out = out_tree.num_leaves
        fwd_outputs = [o.shape for o in fwd.computation.root.operands]

        def bwd_flat(*rg):
            res = tree.unflatten(residual_tree[0], rg[:len(rg) - n_out])
            cts = self.bwd(res, tree.unflatten(out_tree, rg[len(rg) - n_out:]))
            if not isinstance(cts, (tuple, list)) or len(cts) != len(args):
                raise TypeError(at_user_line(f"{name}: bwd must return a tuple with one "
                                             f"cotangent per argument ({len(args)})"))
            return tuple(np.zeros(s.dims, s.dtype.to_numpy()) if c is None else c
                         for c, s in zip(cts, shapes))
        bwd = trace_subfunction(bwd_flat, fwd_outputs[n_out:] + fwd_outputs[:n_out],
                                f"{name}_bwd")
        if primal.captured or fwd.captured or bwd.captured:
            raise TypeError(at_user_line(f"{name}: custom_vjp functions must take every "
                                         "traced value they use as an argument"))
        calls = {"called_computations": [primal.computation, fwd.computation,
                                         bwd.computation]}
        out = bind("custom-call", leaves, {"custom_call_target": "flowjit.custom_vjp"}, calls)
        out = list(out) if isinstance(out, tuple) else [out]
        return tree.unflatten(out_tree, [wrap(o) for o in out])
