"""Loops and branches that run inside the compiled program: JAX's cond, switch, while_loop,
fori_loop and scan, over pytrees.

Traced, they become XLA's `while` and `conditional`. Each body, condition and branch is traced
once into a computation of its own; the outer values it closes over (closure conversion in
`trace_subfunction`) become extra elements of the loop state or of the branch operand, so every
while body and condition and every branch takes exactly one tuple parameter, as XLA prints them.
With no trace active they run as plain Python loops and ifs on concrete arrays, which gives the
same values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from flowjit import lax, tree
from flowjit.core import (SubTrace, Tracer, as_array, current_trace, lift, shape_of,
                          trace_subfunction)
from flowjit.numpy._promote import is_python_scalar
from flowjit.source_info import at_user_line, user_metadata
from flowjit.ir import dtypes
from flowjit.ir.builder import Builder
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Computation, Instruction
from flowjit.ir.shapes import ArrayShape, TupleShape

_PRED_SCALAR = ArrayShape(DType.PRED, ())

# A leaf's type while tracing: its shape and whether it is weakly typed (a Python scalar,
# which adopts the dtype of what it meets, as in JAX).
LeafType = tuple[ArrayShape, bool]


def _is_weak(x: Any) -> bool:
    return is_python_scalar(x) or (isinstance(x, Tracer) and x.weak_type)


def _leaf_types(leaves: Sequence[Any]) -> list[LeafType]:
    return [(shape_of(x), _is_weak(x)) for x in leaves]


def _describe(shapes: Sequence[ArrayShape]) -> str:
    return "(" + ", ".join(str(s) for s in shapes) + ")"


def _cast(x: Any, shape: ArrayShape) -> Any:
    """`x` converted to `shape`'s dtype (used for weakly typed values only)."""
    if shape_of(x).dtype == shape.dtype:
        return x
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, shape.dtype)
    return np.asarray(x, dtype=shape.dtype.to_numpy())


@dataclass
class _Traced:
    """A user function traced on flat leaves: root is the tuple of its result's leaves."""

    sub: SubTrace
    out_weak: list[bool]

    @property
    def out_shapes(self) -> list[ArrayShape]:
        return [o.shape for o in self.sub.computation.root.operands]

    def where(self, k: int) -> str:
        """Where output leaf k was computed, for error messages."""
        outputs = self.sub.computation.root.operands
        line = outputs[k].source_line if k < len(outputs) else None
        return f" (computed at {line})" if line else ""


def _trace_flat(fun: Callable, in_types: Sequence[LeafType], name: str,
                expected: Sequence[LeafType] = (), branch: bool = False) -> _Traced:
    """Trace `fun(*leaves) -> list of leaves`. A weakly typed output (a Python scalar) whose
    dims match a strongly typed `expected[k]` takes its dtype, as JAX casts weak outputs to
    the carry type (a weak expected type is promoted by the caller instead)."""
    weak_out: list[bool] = []

    def run(*tracers):
        # A branch's work must stay in the branch (only the taken one runs); a loop body's
        # work on outer values alone may be hoisted out of the loop (core._innermost).
        current_trace().barrier = branch
        for t, (_, weak) in zip(tracers, in_types):
            t.weak_type = weak
        outs = list(fun(*tracers))
        weak_out[:] = [_is_weak(x) for x in outs]
        for k, (shape, weak) in enumerate(expected[:len(outs)]):
            if weak_out[k] and not weak and shape_of(outs[k]).dims == shape.dims:
                outs[k] = _cast(outs[k], shape)
        return outs
    sub = trace_subfunction(run, [s for s, _ in in_types], name)
    return _Traced(sub, list(weak_out))


def _fix_carry(fun: Callable, carry: list[LeafType], extra: list[LeafType], name: str,
               what: str) -> tuple[_Traced, list[LeafType]]:
    """Trace a loop body whose first outputs must have the carry's types. A weakly typed
    carry leaf that comes back with another dtype (0.0 + f32 gives f32) is promoted and the
    body traced again, so eager and compiled loops agree; any other mismatch is an error."""
    for _ in range(len(carry) + 1):
        traced = _trace_flat(fun, carry + extra, name, expected=carry)
        outs = traced.out_shapes[:len(carry)]
        promoted = list(carry)
        for k, ((s_in, weak_in), s_out) in enumerate(zip(carry, outs)):
            if s_in == s_out:
                continue
            if weak_in and s_in.dims == s_out.dims:
                promoted[k] = (s_out, traced.out_weak[k])
                continue
            raise TypeError(at_user_line(
                f"{what} must return the carry types it was given: it takes "
                f"{_describe([s for s, _ in carry])} but returns {_describe(outs)}; element {k} "
                f"is {s_out}, expected {s_in}{traced.where(k)}"))
        if promoted == carry:
            return traced, carry
        carry = promoted
    raise AssertionError("carry types did not settle")  # each round fixes one leaf at least


def _tuple_parameter_form(comp: Computation, state: Sequence[ArrayShape],
                          arg_positions: Sequence[int], passthrough: Sequence[int] = (),
                          scalar_root: bool = False) -> Computation:
    """`comp`'s instructions moved under one tuple parameter of type `state`, as XLA's while and
    conditional want: parameter k becomes get-tuple-element(state, arg_positions[k]); the root
    tuple gains the `passthrough` state elements unchanged, or is replaced by its only
    element when `scalar_root`."""
    b = Builder(comp.name, current_trace().names)
    param = b.parameter(0, TupleShape(tuple(state)), "state")
    element = {k: b.add("get-tuple-element", [param], {"index": k}, metadata={})
               for k in sorted(set(arg_positions) | set(passthrough))}
    replace = {id(p): element[arg_positions[p.attrs["number"]]] for p in comp.parameters}
    old_root = comp.root
    for inst in comp.instructions:
        if inst.opcode != "parameter" and inst is not old_root:
            inst.operands = [replace.get(id(o), o) for o in inst.operands]
            b.computation.instructions.append(inst)
    outputs = [replace.get(id(o), o) for o in old_root.operands]
    if scalar_root:
        return b.finish(outputs[0])
    return b.finish(b.add("tuple", outputs + [element[k] for k in passthrough], metadata={}))


def _unique(values: Sequence[Tracer]) -> list[Tracer]:
    seen: dict[int, Tracer] = {}
    for v in values:
        seen.setdefault(id(v), v)
    return list(seen.values())


def _results(inst: Instruction, weak: Sequence[bool]) -> list[Tracer]:
    trace = current_trace()
    return [Tracer(trace, trace.builder.add("get-tuple-element", [inst], {"index": k},
                                            metadata=user_metadata()), w)
            for k, w in enumerate(weak)]


def _emit_while(init: Sequence[Any], types: list[LeafType], body: _Traced, cond: _Traced,
                trip_count: Optional[int]) -> list[Tracer]:
    """A `while` over the state (carry leaves..., captured outer values...)."""
    trace = current_trace()
    n = len(types)
    captured = _unique(body.sub.captured + cond.sub.captured)
    slot = {id(c): n + k for k, c in enumerate(captured)}
    state = [s for s, _ in types] + [c.inst.shape for c in captured]
    body_comp = _tuple_parameter_form(
        body.sub.computation, state, list(range(n)) + [slot[id(c)] for c in body.sub.captured],
        passthrough=range(n, len(state)))
    cond_comp = _tuple_parameter_form(
        cond.sub.computation, state, list(range(n)) + [slot[id(c)] for c in cond.sub.captured],
        scalar_root=True)
    trace.add_computation(body_comp)
    trace.add_computation(cond_comp)
    metadata = user_metadata()
    elements = [lift(_cast(x, s), trace) for x, (s, _) in zip(init, types)]
    elements += [lift(c, trace) for c in captured]
    start = trace.builder.add("tuple", elements, metadata=metadata)
    loop = trace.builder.add("while", [start], calls={"condition": cond_comp, "body": body_comp},
                             metadata=metadata)
    if trip_count is not None:
        # Printed as XLA's backend_config; it keeps the trip count in the IR for autodiff.
        loop.attrs["known_trip_count"] = trip_count
    out_weak = [weak and w for (_, weak), w in zip(types, body.out_weak)]
    return _results(loop, out_weak)


def _loop(cond_fun: Callable, body_fun: Callable, init_val: Any, trip_count: Optional[int],
          what: str) -> Any:
    leaves, treedef = tree.flatten(init_val)

    def body_flat(*xs):
        out_leaves, out_tree = tree.flatten(body_fun(tree.unflatten(treedef, xs)))
        if out_tree != treedef:
            raise TypeError(at_user_line(f"{what} must return the structure of its input, "
                                         f"{treedef}, but returned {out_tree}"))
        return out_leaves
    body, types = _fix_carry(body_flat, _leaf_types(leaves), [], "while_body", what)
    cond = _trace_flat(lambda *xs: [cond_fun(tree.unflatten(treedef, xs))], types, "while_cond")
    if cond.out_shapes != [_PRED_SCALAR]:
        raise TypeError(at_user_line(f"while_loop cond_fun must return a scalar bool, got "
                                     f"{_describe(cond.out_shapes)}{cond.where(0)}"))
    return tree.unflatten(treedef, _emit_while(leaves, types, body, cond, trip_count))


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """Repeat `val = body_fun(val)` while `cond_fun(val)`; compiled as one XLA `while`."""
    if current_trace() is None:
        val = init_val
        while bool(np.asarray(cond_fun(val))):
            val = body_fun(val)
        return val
    return _loop(cond_fun, body_fun, init_val, None, "while_loop body_fun")


def _counter_dtype(lower: Any, upper: Any) -> np.dtype:
    """JAX's rule: Python-int bounds count in int32 (int64 if they need it), arrays in
    their own integer dtype."""
    arrays = [b for b in (lower, upper) if not is_python_scalar(b)]
    if not arrays:
        fits = all(-2**31 <= int(b) < 2**31 for b in (lower, upper))
        return np.dtype(np.int32 if fits else np.int64)
    dtype = np.result_type(*[np.dtype(b.dtype) if isinstance(b, Tracer) else np.asarray(b).dtype
                             for b in arrays])
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"fori_loop bounds must be integers, got {dtype}"))
    return dtype


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any, *,
              unroll: Any = None) -> Any:
    """`for i in range(lower, upper): val = body_fun(i, val)`, compiled as one `while` whose
    counter is state element 0; with concrete bounds the trip count is marked in the IR.
    (`unroll` is accepted for JAX's signature; the loop is compiled rolled.)"""
    dtype = _counter_dtype(lower, upper)
    if current_trace() is None:
        val = init_val
        for i in range(int(np.asarray(lower)), int(np.asarray(upper))):
            val = body_fun(as_array(np.asarray(i, dtype)), val)
        return val
    static = not isinstance(lower, Tracer) and not isinstance(upper, Tracer)
    start, stop = (_cast(b, ArrayShape(dtypes.from_numpy(dtype), ())) if isinstance(b, Tracer)
                   else np.asarray(b, dtype) for b in (lower, upper))
    one = np.asarray(1, dtype)

    def body(state):
        i, val = state
        return lax.add(i, one), body_fun(i, val)
    trip = max(int(stop) - int(start), 0) if static else None
    _, result = _loop(lambda state: lax.compare(state[0], stop, "LT"), body, (start, init_val),
                      trip, "fori_loop body_fun")
    return result


def _trace_branches(functions: Sequence[Callable], leaves: list, treedef, names: list[str]
                    ) -> tuple[list[_Traced], tree.TreeDef]:
    """Each branch traced on the operand leaves; outputs made to agree (a weakly typed output
    takes the dtype the other branches give it) or a TypeError naming both types."""
    in_types = _leaf_types(leaves)
    out_trees: list = [None] * len(functions)

    def flat(k, f):
        def run(*xs):
            out_leaves, out_trees[k] = tree.flatten(f(*tree.unflatten(treedef, xs)))
            return out_leaves
        return run
    traced = [_trace_flat(flat(k, f), in_types, f"branch_{k}", branch=True)
              for k, f in enumerate(functions)]
    for k in range(1, len(traced)):
        if out_trees[k] != out_trees[0]:
            raise TypeError(at_user_line(
                f"{names[0]} and {names[k]} must return the same structure: {out_trees[0]} vs "
                f"{out_trees[k]}"))
    targets = _common_output_types(traced)
    if any(t.out_shapes != [s for s, _ in targets] for t in traced):
        traced = [_trace_flat(flat(k, f), in_types, f"branch_{k}", expected=targets,
                              branch=True) for k, f in enumerate(functions)]
    first = traced[0].out_shapes
    for k, t in enumerate(traced[1:], 1):
        if t.out_shapes != first:
            bad = next(j for j, (a, b) in enumerate(zip(first, t.out_shapes)) if a != b)
            raise TypeError(at_user_line(
                f"branches must return the same types: {names[0]} returns {_describe(first)}"
                f"{traced[0].where(bad)} but {names[k]} returns {_describe(t.out_shapes)}"
                f"{t.where(bad)}"))
    return traced, out_trees[0]


def _common_output_types(traced: list[_Traced]) -> list[LeafType]:
    """Per output: the one dtype the strongly typed branches agree on, else numpy's promotion
    of the weak ones (so `0` in one branch and an s32 array in the other gives s32)."""
    targets = []
    for j, shape in enumerate(traced[0].out_shapes):
        column = [(t.out_shapes[j], t.out_weak[j]) for t in traced]
        strong = {s for s, weak in column if not weak}
        if len(strong) == 1:
            targets.append((strong.pop(), False))
        elif strong:
            targets.append((shape, False))  # a real mismatch: reported by the caller
        else:
            dtype = np.result_type(*[s.dtype.to_numpy() for s, _ in column])
            # Marked strong so that _trace_flat casts every branch's weak output to it.
            targets.append((ArrayShape(dtypes.from_numpy(dtype), shape.dims), False))
    return targets


def _emit_conditional(selector: Any, leaves: list, branches: list[_Traced], pred_form: bool
                      ) -> list[Tracer]:
    trace = current_trace()
    lifted = [lift(x, trace) for x in leaves]
    comps, operands = [], []
    for br in branches:
        state = [x.shape for x in lifted] + [c.inst.shape for c in br.sub.captured]
        comps.append(_tuple_parameter_form(br.sub.computation, state, range(len(state))))
        operands.append(trace.builder.add(
            "tuple", lifted + [lift(c, trace) for c in br.sub.captured], metadata=user_metadata()))
    for comp in comps:
        trace.add_computation(comp)
    calls = ({"true_computation": comps[0], "false_computation": comps[1]} if pred_form
             else {"branch_computations": comps})
    inst = trace.builder.add("conditional", [lift(selector, trace)] + operands, calls=calls,
                             metadata=user_metadata())
    weak = [all(t.out_weak[j] for t in branches) for j in range(len(branches[0].out_weak))]
    return _results(inst, weak)


def _scalar(value: Any, what: str) -> ArrayShape:
    shape = shape_of(value)
    if shape.rank != 0:
        raise TypeError(at_user_line(f"{what} must be a scalar, got {shape}"))
    return shape


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """`true_fun(*operands) if pred else false_fun(*operands)`, decided when the program runs."""
    shape = _scalar(pred, "cond's pred")
    if current_trace() is None:
        return true_fun(*operands) if bool(np.asarray(pred)) else false_fun(*operands)
    if shape.dtype is not DType.PRED:
        pred = lax.compare(pred, np.zeros((), shape.dtype.to_numpy()), "NE")
    leaves, treedef = tree.flatten(operands)
    traced, out_tree = _trace_branches([true_fun, false_fun], leaves, treedef,
                                       ["true_fun", "false_fun"])
    return tree.unflatten(out_tree, _emit_conditional(pred, leaves, traced, pred_form=True))


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """`branches[clamp(index, 0, len - 1)](*operands)`, decided when the program runs."""
    shape = _scalar(index, "switch's index")
    if not shape.dtype.is_int:
        raise TypeError(at_user_line(f"switch's index must be an integer, got {shape}"))
    branches = list(branches)
    if not branches:
        raise ValueError(at_user_line("switch needs at least one branch"))
    if current_trace() is None:
        return branches[int(np.clip(int(np.asarray(index)), 0, len(branches) - 1))](*operands)
    if len(branches) == 1:
        return branches[0](*operands)
    index = lax.clamp(np.int32(0), lax.convert_element_type(index, np.int32),
                      np.int32(len(branches) - 1))
    leaves, treedef = tree.flatten(operands)
    traced, out_tree = _trace_branches(branches, leaves, treedef,
                                       [f"branch {k}" for k in range(len(branches))])
    return tree.unflatten(out_tree, _emit_conditional(index, leaves, traced, pred_form=False))


def _replay(sub: SubTrace, args: Sequence[Any]) -> list[Tracer]:
    """Emit the instructions of an already traced computation again into the current trace, on
    `args` for its explicit parameters (and the outer values it captured for the rest);
    returns its root tuple's elements. Lets scan trace `f` once yet build its loop around it."""
    trace = current_trace()
    comp = sub.computation
    explicit = len(comp.parameters) - len(sub.captured)
    values: dict[int, Instruction] = {}
    for p in comp.parameters:
        k = p.attrs["number"]
        values[id(p)] = lift(args[k] if k < explicit else sub.captured[k - explicit], trace)
    for inst in comp.instructions:
        if inst.opcode == "parameter" or inst is comp.root:
            continue
        if inst.opcode == "constant":
            new = trace.builder.constant(inst.literal, inst.shape.dtype)
        else:
            new = trace.builder.add(inst.opcode, [values[id(o)] for o in inst.operands],
                                    inst.attrs, inst.calls, inst.shape, metadata=inst.metadata)
            new.extra_attrs = dict(inst.extra_attrs)
        values[id(inst)] = new
    return [Tracer(trace, values[id(o)]) for o in comp.root.operands]


def _scan_length(x_leaves: list, length: Optional[int]) -> int:
    sizes = {shape_of(x).dims[0] if shape_of(x).rank else None for x in x_leaves}
    if None in sizes:
        raise TypeError(at_user_line("scan's xs must all have a leading axis to scan over"))
    if length is not None:
        sizes.add(int(length))
    if len(sizes) > 1:
        raise ValueError(at_user_line(f"scan got different lengths to scan over: {sorted(sizes)}"
                                      " (the leading axes of xs, and `length`)"))
    if not sizes:
        raise ValueError(at_user_line("scan needs xs or an explicit length"))
    return sizes.pop()


def _scan_eager(f: Callable, init: Any, x_leaves: list, x_tree, n: int, reverse: bool):
    carry, ys = init, [None] * n
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        carry, ys[i] = f(carry, tree.unflatten(x_tree, [as_array(x[i]) for x in x_leaves]))
    if n == 0:  # no step ran: one on zeros tells the types of the (empty) stacked ys
        zeros = [np.zeros(np.shape(x)[1:], np.asarray(x).dtype) for x in x_leaves]
        y_leaves, y_tree = tree.flatten(f(init, tree.unflatten(x_tree, zeros))[1])
        return carry, tree.unflatten(y_tree, [as_array(np.zeros((0,) + np.shape(y),
                                                                np.asarray(y).dtype))
                                              for y in y_leaves])
    y_tree = tree.flatten(ys[0])[1]
    columns = zip(*[tree.flatten(y)[0] for y in ys])
    return carry, tree.unflatten(y_tree, [as_array(np.stack([np.asarray(v) for v in column]))
                                          for column in columns])


def scan(f: Callable, init: Any, xs: Any = None, length: Optional[int] = None,
         reverse: bool = False, unroll: Any = 1, _split_transpose: bool = False):
    """Loop `carry, y = f(carry, x)` over the leading axis of xs; returns (carry, stacked ys).
    (`unroll` and `_split_transpose` are accepted for JAX's signature; the loop is rolled.)

    Compiled as a `while` over an s32 index: xs are read with dynamic-slice and the ys written
    with dynamic-update-slice into buffers carried in the loop state."""
    x_leaves, x_tree = tree.flatten(xs)
    n = _scan_length(x_leaves, length)
    trace = current_trace()
    if trace is not None:
        # xs enter the loop as state elements (captured values), not as constants in its body.
        x_leaves = [x if isinstance(x, Tracer) else Tracer(trace, trace.builder.constant(x))
                    for x in x_leaves]
    carry_leaves, carry_tree = tree.flatten(init)
    nc = len(carry_leaves)
    x_types = [(ArrayShape(s.dtype, s.dims[1:]), False) for s in map(shape_of, x_leaves)]
    y_trees: list = [None]

    def step_flat(*args):
        out = f(tree.unflatten(carry_tree, args[:nc]), tree.unflatten(x_tree, args[nc:]))
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(at_user_line("scan's f must return a pair (carry, y)"))
        new_carry, out_tree = tree.flatten(out[0])
        if out_tree != carry_tree:
            raise TypeError(at_user_line(f"scan's f must return a carry of the structure of "
                                         f"init, {carry_tree}, but returned {out_tree}"))
        y_leaves, y_trees[0] = tree.flatten(out[1])
        return new_carry + y_leaves
    if trace is None and not any(_is_weak(c) for c in carry_leaves):
        return _scan_eager(f, init, x_leaves, x_tree, n, reverse)
    step, carry_types = _fix_carry(step_flat, _leaf_types(carry_leaves), x_types, "scan_body",
                                   "scan's f")
    init_carry = [_cast(c, s) for c, (s, _) in zip(carry_leaves, carry_types)]
    if trace is None:
        # A Python-scalar carry settles to the type the traced loop gives it before the
        # first step, so the stacked ys have one dtype, as compiled.
        return _scan_eager(f, tree.unflatten(carry_tree, init_carry), x_leaves, x_tree, n,
                           reverse)
    y_shapes = step.out_shapes[nc:]
    zero = np.int32(0)

    def body(state):
        i, carry, ys = state
        at = lax.sub(np.int32(n - 1), i) if reverse else i
        x = [lax.reshape(lax.dynamic_slice(leaf, [at] + [zero] * (s.rank), (1,) + s.dims,
                                              allow_negative_indices=False), s.dims)
             for leaf, (s, _) in zip(x_leaves, x_types)]
        outs = _replay(step.sub, list(carry) + x)
        ys = [lax.dynamic_update_slice(acc, lax.reshape(y, (1,) + s.dims), [at] + [zero] * s.rank,
                                      allow_negative_indices=False)
              for acc, y, s in zip(ys, outs[nc:], y_shapes)]
        return lax.add(i, np.int32(1)), outs[:nc], ys
    init_ys = [lax.broadcast_in_dim(np.zeros((), s.dtype.to_numpy()), (n,) + s.dims, [])
               for s in y_shapes]
    if n == 0:  # nothing to loop over; f was traced only for the types of the ys
        return tree.unflatten(carry_tree, init_carry), tree.unflatten(y_trees[0], init_ys)
    _, carry, ys = _loop(lambda state: lax.compare(state[0], np.int32(n), "LT"), body,
                         (zero, init_carry, init_ys), n, "scan's f")
    for c, (_, weak), w in zip(carry, carry_types, step.out_weak):
        c.weak_type = weak and w
    return tree.unflatten(carry_tree, carry), tree.unflatten(y_trees[0], ys)
