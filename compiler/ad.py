"""grad, value_and_grad, vjp, jvp, custom_vjp, stop_gradient — JAX's API.

The function is traced into a computation (inside the current trace, or on its own when
called eagerly), `passes.vjp` turns that into its VJP computation, and the result is bound
back op by op into the current context. So the gradient ops are ordinary primitives: inside
`jit` they are compiled and fused with everything else, eagerly they run at once, and
`grad(grad(f))` differentiates the gradient's own ops.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import numpy as np

from compiler import tree
from compiler.core import Tracer, bind, current_trace, shape_of, trace_subfunction
from compiler.numpy._promote import wrap
from compiler.source_info import at_user_line
from ir.builder import NameTable
from ir.module import Computation
from passes.vjp import vjp as vjp_transform


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
        elif op == "get-tuple-element":
            value = values[id(inst.operands[0])][inst.attrs["index"]]
        else:
            value = bind(op, [values[id(o)] for o in inst.operands], inst.attrs, inst.calls,
                         shape=inst.shape)
        values[id(inst)] = value
    return values[id(comp.root)]


def _check_differentiable(leaf: Any, label: str) -> None:
    dtype = shape_of(leaf).dtype
    if not dtype.is_float:
        raise TypeError(at_user_line(
            f"grad requires real-valued (float) inputs, but {label} has dtype "
            f"{dtype.to_numpy()}; "
            "differentiate with respect to float arguments only"))


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """(fun(*primals), vjp_fn): vjp_fn(cotangent) gives the cotangent of each primal."""
    leaves, in_tree = tree.flatten(primals)
    leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]
    for k, leaf in enumerate(leaves):
        _check_differentiable(leaf, f"differentiated argument {k}" if len(leaves) > 1
                              else "the differentiated argument")
    shapes = [shape_of(x) for x in leaves]
    aux_box: list = []

    def flat_fun(*xs):
        out = fun(*tree.unflatten(in_tree, xs))
        if has_aux:
            out, aux = out
            aux_box.append(aux)
        return out
    sub = trace_subfunction(flat_fun, shapes, "vjp_fun")
    comp = sub.computation
    trace = current_trace()
    names = trace.names if trace is not None else NameTable.for_module(_fake_module(comp))
    backward, callees = vjp_transform(comp, list(range(len(leaves))), names)
    if trace is not None:
        for c in callees:
            trace.add_computation(c)
    operands = list(leaves) + list(sub.captured)
    outputs = inline(comp, operands)
    out_leaves = list(outputs)

    def vjp_fn(cotangent: Any):
        ct_leaves, ct_tree = tree.flatten(cotangent)
        if len(ct_leaves) != len(out_leaves):
            raise TypeError(f"vjp_fn expects a cotangent with the output's structure "
                            f"({sub.out_tree}), got {ct_tree}")
        cts = [_like(c, o) for c, o in zip(ct_leaves, out_leaves)]
        results = inline(backward, operands + cts)
        grads = [wrap(g) for g in results[len(out_leaves):]]
        return tree.unflatten(in_tree, grads)

    primal_out = tree.unflatten(sub.out_tree, [wrap(o) for o in out_leaves])
    if has_aux:
        return primal_out, vjp_fn, aux_box[0]
    return primal_out, vjp_fn


def _fake_module(comp: Computation):
    from ir.module import Module
    return Module("vjp", comp)


def _like(value: Any, reference: Any) -> Any:
    """`value` as an array of `reference`'s dtype."""
    dtype = shape_of(reference).dtype.to_numpy()
    if isinstance(value, Tracer):
        from compiler import lax
        return lax.convert_element_type(value, dtype)
    return np.asarray(value, dtype=dtype)


def value_and_grad(fun: Callable, argnums: Union[int, Sequence[int]] = 0,
                   has_aux: bool = False) -> Callable:
    """fun's value and its gradient w.r.t. the arguments `argnums` (pytrees allowed)."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    def wrapped(*args):
        chosen = tuple(args[i] for i in nums)

        def partial(*xs):
            full = list(args)
            for i, x in zip(nums, xs):
                full[i] = x
            return fun(*full)
        result = vjp(partial, *chosen, has_aux=has_aux)
        value, vjp_fn = result[0], result[1]
        out_shape = shape_of(value)
        if out_shape.rank != 0 or not out_shape.dtype.is_float:
            raise TypeError(at_user_line(
                f"grad requires a scalar float output, but the function returned "
                f"{out_shape}; use vjp for non-scalar outputs"))
        grads = vjp_fn(np.ones((), out_shape.dtype.to_numpy()))
        grads = grads[0] if single else grads
        if has_aux:
            return (value, result[2]), grads
        return value, grads
    return wrapped


def grad(fun: Callable, argnums: Union[int, Sequence[int]] = 0,
         has_aux: bool = False) -> Callable:
    """The gradient of scalar-valued `fun` w.r.t. the arguments `argnums`."""
    vg = value_and_grad(fun, argnums, has_aux)

    def wrapped(*args):
        (value, grads) = vg(*args)
        if has_aux:
            return grads, value[1]
        return grads
    return wrapped


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any]):
    """(fun(*primals), J·tangents), by transposing the (linear) VJP with a second VJP."""
    out, vjp_fn = vjp(fun, *primals)
    out_leaves, out_tree = tree.flatten(out)
    zeros = tree.unflatten(out_tree, [np.zeros(shape_of(o).dims, shape_of(o).dtype.to_numpy())
                                      for o in out_leaves])
    _, transpose = vjp(lambda ct: vjp_fn(ct), zeros)
    (tangent_out,) = transpose(tuple(tangents))
    return out, tangent_out


def stop_gradient(x: Any) -> Any:
    """x, but gradients do not flow through it (a constant for differentiation)."""
    return tree.tree_map(lambda leaf: wrap(bind("custom-call", [leaf], {
        "custom_call_target": "stop_gradient"})), x)


class custom_vjp:
    """A function with its own VJP rule, as `jax.custom_vjp`:

        @custom_vjp
        def f(x): ...
        f.defvjp(f_fwd, f_bwd)   # f_fwd(x) -> (f(x), residuals); f_bwd(residuals, g) -> (dx,)

    When traced, the call is one `custom-call` in the IR whose called computations are the
    primal, fwd and bwd: the VJP transformation uses fwd/bwd, codegen runs the primal.
    Supports functions of arrays returning one array.
    """

    def __init__(self, fun: Callable):
        self.fun = fun
        self.fwd = self.bwd = None
        self.__name__ = getattr(fun, "__name__", "custom_vjp")

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"{self.__name__}: call defvjp(fwd, bwd) before using it")
        leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in args]
        shapes = [shape_of(x) for x in leaves]
        primal = trace_subfunction(self.fun, shapes, f"{self.__name__}_primal", False)
        residual_shapes: list = []
        residual_tree: list = []

        def fwd_flat(*xs):
            out, residuals = self.fwd(*xs)
            res_leaves, res_tree = tree.flatten(residuals)
            residual_shapes.extend(shape_of(r) for r in res_leaves)
            residual_tree.append(res_tree)
            return (out, *res_leaves)
        fwd = trace_subfunction(fwd_flat, shapes, f"{self.__name__}_fwd")
        out_shape = primal.computation.root.shape
        if out_shape.is_tuple:
            raise TypeError("custom_vjp here supports functions returning one array")
        bwd = trace_subfunction(lambda *rg: tuple(self.bwd(
                                    tree.unflatten(residual_tree[0], rg[:-1]), rg[-1])),
                                residual_shapes + [out_shape], f"{self.__name__}_bwd")
        if primal.captured or fwd.captured or bwd.captured:
            raise TypeError(at_user_line(f"{self.__name__}: custom_vjp functions must take "
                                         "every traced value as an argument"))
        calls = {"called_computations": [primal.computation, fwd.computation,
                                         bwd.computation]}
        for sub in (primal, fwd, bwd):
            if current_trace() is not None:
                current_trace().add_computation(sub.computation)
        return wrap(bind("custom-call", leaves, {"custom_call_target": "flowjit.custom_vjp"},
                         calls))
