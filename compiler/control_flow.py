"""Loops and branches that run inside the compiled program: JAX's cond, switch, while_loop,
fori_loop and scan.

Traced, they become XLA's `while` and `conditional`: the body, condition and branches are
traced into computations of their own (values they close over are passed in as extra
loop-state or branch operands), and the loop runs in the executable with no Python in it.
Outside any trace they simply run as Python loops and ifs on concrete arrays.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from compiler import lax, tree
from compiler.core import Tracer, bind, current_trace, shape_of, trace_subfunction
from compiler.numpy._promote import wrap
from compiler.source_info import at_user_line
from ir.builder import Builder
from ir.dtypes import DType
from ir.module import Computation
from ir.shapes import ArrayShape, TupleShape


def _leaves(value: Any):
    leaves, treedef = tree.flatten(value)
    return [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves], treedef


def _traced(*values: Any) -> bool:
    return current_trace() is not None or any(isinstance(v, Tracer) for v in values)


def _describe(shapes) -> str:
    return "(" + ", ".join(str(s) for s in shapes) + ")"


def _wrapper(name: str, state: list, callee: Computation, arg_positions: list[int],
             passthrough: list[int], tuple_out: bool) -> Computation:
    """A computation over one tuple parameter that calls `callee` on some elements and
    returns its result (plus the `passthrough` elements unchanged, when tuple_out)."""
    names = current_trace().names
    b = Builder(name, names)
    param = b.parameter(0, TupleShape(tuple(state)), "state")
    elements = [b.add("get-tuple-element", [param], {"index": k}, metadata={})
                for k in range(len(state))]
    result = b.add("call", [elements[k] for k in arg_positions], {}, {"to_apply": callee},
                   metadata={})
    if not tuple_out:
        return b.finish(result)
    outs = [b.add("get-tuple-element", [result], {"index": k}, metadata={})
            for k in range(len(result.shape.elements))]
    return b.finish(b.add("tuple", outs + [elements[k] for k in passthrough], metadata={}))


def _register(*computations: Computation) -> None:
    for comp in computations:
        current_trace().add_computation(comp)


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """Repeat `val = body_fun(val)` while `cond_fun(val)`; runs inside the executable."""
    leaves, treedef = _leaves(init_val)
    if not _traced(*leaves):
        val = init_val
        while bool(cond_fun(val)):
            val = body_fun(val)
        return val
    shapes = [shape_of(x) for x in leaves]
    body = trace_subfunction(lambda *xs: tree.flatten(body_fun(tree.unflatten(treedef, xs)))[0],
                             shapes, "while_body")
    out_shapes = [o.shape for o in body.computation.root.operands]
    if out_shapes != shapes:
        raise TypeError(at_user_line(
            f"while_loop body must return the type it takes: got {_describe(out_shapes)}, "
            f"expected {_describe(shapes)}"))
    cond = trace_subfunction(lambda *xs: cond_fun(tree.unflatten(treedef, xs)), shapes,
                             "while_cond", tuple_result=False)
    if cond.computation.root.shape != ArrayShape(DType.PRED, ()):
        raise TypeError(at_user_line(f"while_loop cond_fun must return a scalar bool, got "
                                     f"{cond.computation.root.shape}"))
    captured = list(body.captured) + list(cond.captured)
    state = shapes + [shape_of(c) for c in captured]
    n, nb = len(leaves), len(body.captured)
    body_w = _wrapper("while_body_wrapper", state, body.computation,
                      list(range(n)) + list(range(n, n + nb)), list(range(n, len(state))), True)
    cond_w = _wrapper("while_cond_wrapper", state, cond.computation,
                      list(range(n)) + list(range(n + nb, len(state))), [], False)
    _register(body.computation, cond.computation, body_w, cond_w)
    init = bind("tuple", leaves + captured, unpack=False)
    results = bind("while", [init], calls={"condition": cond_w, "body": body_w})
    return tree.unflatten(treedef, [wrap(r) for r in results[:n]])


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """`for i in range(lower, upper): val = body_fun(i, val)`, compiled as one while."""
    if not _traced(lower, upper, *_leaves(init_val)[0]):
        val = init_val
        for i in range(int(lower), int(upper)):
            val = body_fun(np.int32(i), val)
        return val
    start = lax.convert_element_type(lower, np.int32) if isinstance(lower, Tracer) \
        else np.asarray(lower, np.int32)
    stop = lax.convert_element_type(upper, np.int32) if isinstance(upper, Tracer) \
        else np.asarray(upper, np.int32)

    def cond(carry):
        return lax.compare(carry[0], carry[2], "LT")

    def body(carry):
        i, val, end = carry
        return (lax.add(i, np.asarray(1, np.int32)), body_fun(i, val), end)
    _, result, _ = while_loop(cond, body, (start, init_val, stop))
    return result


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """`true_fun(*operands) if pred else false_fun(*operands)`, decided at run time."""
    if not _traced(pred, *_leaves(operands)[0]):
        return true_fun(*operands) if bool(np.asarray(pred)) else false_fun(*operands)
    selector = pred if shape_of(pred).dtype is DType.PRED else lax.compare(
        pred, np.zeros((), shape_of(pred).dtype.to_numpy()), "NE")
    return _branches(selector, [true_fun, false_fun], operands, pred_form=True)


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """`branches[clamp(index)](*operands)`, decided at run time (as jax.lax.switch)."""
    if not _traced(index, *_leaves(operands)[0]):
        k = int(np.clip(int(np.asarray(index)), 0, len(branches) - 1))
        return branches[k](*operands)
    k = lax.clamp(np.asarray(0, np.int32), lax.convert_element_type(index, np.int32),
                  np.asarray(len(branches) - 1, np.int32))
    return _branches(k, list(branches), operands, pred_form=False)


def _branches(selector, functions, operands, pred_form: bool):
    leaves, treedef = _leaves(operands)
    shapes = [shape_of(x) for x in leaves]
    out_trees: list = []

    def flat(f):
        def run(*xs):
            leaves_out, out_tree = tree.flatten(f(*tree.unflatten(treedef, xs)))
            out_trees.append(out_tree)
            return leaves_out
        return run
    traced = [trace_subfunction(flat(f), shapes, f"branch_{k}")
              for k, f in enumerate(functions)]
    out_types = [[o.shape for o in t.computation.root.operands] for t in traced]
    for k, types in enumerate(out_types[1:], 1):
        if types != out_types[0] or out_trees[k] != out_trees[0]:
            raise TypeError(at_user_line(
                f"branches must return the same types: branch 0 gives "
                f"{_describe(out_types[0])}, branch {k} gives {_describe(types)}"))
    wrappers, tuples = [], []
    for k, t in enumerate(traced):
        state = shapes + [shape_of(c) for c in t.captured]
        wrappers.append(_wrapper(f"branch_{k}_wrapper", state, t.computation,
                                 list(range(len(state))), [], False))
        tuples.append(bind("tuple", leaves + list(t.captured), unpack=False))
        _register(t.computation)
    _register(*wrappers)
    calls = ({"true_computation": wrappers[0], "false_computation": wrappers[1]} if pred_form
             else {"branch_computations": wrappers})
    results = bind("conditional", [selector] + tuples, calls=calls)
    return tree.unflatten(out_trees[0], [wrap(r) for r in results])


def scan(f: Callable, init: Any, xs: Any, length: int = None, reverse: bool = False):
    """(final carry, stacked ys) of `carry, y = f(carry, x)` over the leading axis of xs."""
    x_leaves, x_tree = _leaves(xs)
    n = length if length is not None else shape_of(x_leaves[0]).dims[0]
    if not _traced(*x_leaves, *_leaves(init)[0]):
        carry, ys = init, []
        order = range(n - 1, -1, -1) if reverse else range(n)
        for i in order:
            x = tree.unflatten(x_tree, [leaf[i] for leaf in x_leaves])
            carry, y = f(carry, x)
            ys.append(y)
        if reverse:
            ys = ys[::-1]
        from compiler.numpy import stack
        y_leaves = [tree.flatten(y)[0] for y in ys]
        stacked = [stack([y[k] for y in y_leaves]) for k in range(len(y_leaves[0]))] \
            if ys else []
        return carry, tree.unflatten(tree.flatten(ys[0])[1], stacked) if ys else None

    def x_at(i):
        parts = []
        for leaf in x_leaves:
            s = shape_of(leaf)
            zeros = [np.zeros((), np.int32)] * (s.rank - 1)
            piece = lax.dynamic_slice(leaf, [i] + zeros, (1,) + s.dims[1:])
            parts.append(lax.reshape(piece, s.dims[1:]))
        return tree.unflatten(x_tree, parts)

    # The ys' types: trace f once on abstract values, then allocate the stacked outputs.
    carry_leaves, carry_tree = _leaves(init)
    probe = trace_subfunction(
        lambda *a: tree.flatten(f(tree.unflatten(carry_tree, a[:len(carry_leaves)]),
                                  tree.unflatten(x_tree, a[len(carry_leaves):]))[1])[0],
        [shape_of(c) for c in carry_leaves] +
        [ArrayShape(shape_of(x).dtype, shape_of(x).dims[1:]) for x in x_leaves], "scan_probe")
    y_shapes = [o.shape for o in probe.computation.root.operands]
    y_tree_holder: list = []
    ys0 = [lax.broadcast_in_dim(np.zeros((), s.dtype.to_numpy()), (n,) + s.dims, [])
           for s in y_shapes]

    def body(i, state):
        carry, ys = state
        position = lax.sub(np.asarray(n - 1, np.int32), i) if reverse else i
        carry, y = f(carry, x_at(position))
        y_leaves, y_tree = tree.flatten(y)
        y_tree_holder[:] = [y_tree]
        new_ys = []
        for acc, value, s in zip(ys, y_leaves, y_shapes):
            update = lax.reshape(value, (1,) + s.dims)
            new_ys.append(lax.dynamic_update_slice(
                acc, update, [position] + [np.zeros((), np.int32)] * s.rank))
        return carry, new_ys
    carry, ys = fori_loop(0, n, body, (init, ys0))
    return carry, tree.unflatten(y_tree_holder[0], ys) if y_tree_holder else ys
