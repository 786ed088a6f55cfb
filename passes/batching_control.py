"""Batching rules of the ops that call computations: call, fusion, while, conditional and
the custom calls (stop_gradient, custom_vjp).

A loop whose condition depends on the mapped inputs runs until every example's condition
is false, each example's state frozen (by select) once its own condition is false; a
conditional whose predicate depends on them runs every branch and selects, as JAX's
`_while_loop_batching_rule` and `_cond_batching_rule` do.
"""
from __future__ import annotations

from flowjit.ir.builder import Builder
from flowjit.ir.dtypes import DType
from flowjit.ir.shapes import ArrayShape, Shape
from flowjit.passes.batching import (Batcher, BatchingError, BDim, batched_shape, is_batched,
                                     unbatched_bdim)


def all_at_front(shape: Shape) -> BDim:
    """The bdim of a value of `shape` batched at 0 throughout."""
    if shape.is_tuple:
        return tuple(all_at_front(s) for s in shape.elements)
    return 0


def _join(a: BDim, b: BDim) -> BDim:
    """The bdim both `a` and `b` can be brought to: equal ones stay, others go to 0."""
    if isinstance(a, tuple):
        return tuple(_join(x, y) for x, y in zip(a, b))
    if a == b:
        return a
    return 0


def _front_if_batched(bdim: BDim) -> BDim:
    if isinstance(bdim, tuple):
        return tuple(_front_if_batched(d) for d in bdim)
    return None if bdim is None else 0


def overwrite_computation(b: Batcher, dtype: DType):
    """`(old, new) -> new`: the update computation of a scatter that overwrites."""
    builder = Builder("overwrite", b.names)
    shape = ArrayShape(dtype, ())
    builder.parameter(0, shape, "old")
    comp = builder.finish(builder.parameter(1, shape, "new"))
    b.extra.append(comp)
    return comp


def call_rule(b: Batcher, inst, operands, bdims):
    attr = "to_apply" if "to_apply" in inst.calls else "calls"
    callee, bdim = b.batch_callee(inst.calls[attr], bdims)
    calls = dict(inst.calls)
    calls[attr] = callee
    return b.op(inst.opcode, *operands, calls=calls, **inst.attrs), bdim


def custom_call_rule(b: Batcher, inst, operands, bdims):
    """stop_gradient keeps its operand's bdim. custom_vjp: every operand, result, residual
    and cotangent batched at 0, so the batched primal, fwd and bwd agree."""
    target = inst.attrs["custom_call_target"]
    if target == "stop_gradient":
        return b.op("custom-call", operands[0], **inst.attrs), bdims[0]
    if target != "flowjit.custom_vjp":
        raise BatchingError(f"custom-call target {target!r} has no batching rule")
    operands = [b.to_front(x, d) for x, d in zip(operands, bdims)]
    fronts = [0] * len(operands)
    primal, fwd, bwd = inst.calls["called_computations"]
    new_primal, out = b.batch_callee(primal, fronts, all_at_front(primal.root.shape))
    new_fwd, _ = b.batch_callee(fwd, fronts, all_at_front(fwd.root.shape))
    new_bwd, _ = b.batch_callee(bwd, [0] * len(bwd.parameters), all_at_front(bwd.root.shape))
    calls = {"called_computations": [new_primal, new_fwd, new_bwd]}
    return b.op("custom-call", *operands, calls=calls, **inst.attrs), out


def while_rule(b: Batcher, inst, operands, bdims):
    """The state's batched elements (found by iterating to a fixed point: an element the
    body makes batched is batched from the start) are carried at 0."""
    body, cond = inst.calls["body"], inst.calls["condition"]
    carry = _front_if_batched(bdims[0])
    while True:
        out = _front_if_batched(b.root_bdim(body, [carry]))
        grown = _union(carry, out)
        pred_batched = is_batched(b.root_bdim(cond, [grown]))
        if pred_batched:
            grown = all_at_front(inst.shape)
        if grown == carry:
            break
        carry = grown
    state = b.coerce(operands[0], bdims[0], carry)
    new_body, _ = b.batch_callee(body, [carry], carry)
    new_cond, _ = b.batch_callee(cond, [carry])
    if not pred_batched:
        loop = b.op("while", state, calls={"condition": new_cond, "body": new_body},
                    **inst.attrs)
        return loop, carry
    cond_all, body_masked = _run_until_all_done(b, new_cond, new_body, state.shape)
    attrs = {k: v for k, v in inst.attrs.items() if k != "known_trip_count"}
    return b.op("while", state, calls={"condition": cond_all, "body": body_masked},
                **attrs), carry


def _union(a: BDim, b: BDim) -> BDim:
    if isinstance(a, tuple):
        return tuple(_union(x, y) for x, y in zip(a, b))
    return 0 if (a is not None or b is not None) else None


def _run_until_all_done(b: Batcher, cond, body, state_shape):
    """The condition `any(cond(state))` and a body that steps only the examples whose own
    condition still holds (everything batched at 0)."""
    any_of = b.sub_batcher("while_cond_any")
    state = any_of.b.parameter(0, state_shape, "state")
    running = any_of.op("call", state, calls={"to_apply": cond})
    false = any_of.scalar(False, DType.PRED)
    found = any_of.op("reduce", running, false, dimensions=(0,),
                      calls={"to_apply": any_of.reducer("or", DType.PRED)})
    cond_all = any_of.finish(found)

    step = b.sub_batcher("while_body_masked")
    state = step.b.parameter(0, state_shape, "state")
    running = step.op("call", state, calls={"to_apply": cond})
    stepped = step.op("call", state, calls={"to_apply": body})
    kept = []
    for k, shape in enumerate(state_shape.elements):
        mask = step.op("broadcast", running, shape=ArrayShape(DType.PRED, shape.dims),
                       dimensions=(0,))
        kept.append(step.select(mask, step.gte(stepped, k), step.gte(state, k)))
    return cond_all, step.finish(step.op("tuple", *kept))


def conditional_rule(b: Batcher, inst, operands, bdims):
    """A shared selector: the branches batched (their results brought to one bdim). A
    per-example selector: every branch runs on every example and the results are selected."""
    selector, *args = operands
    selector_bdim, *arg_bdims = bdims
    indexed = "branch_computations" in inst.calls
    branches = inst.calls["branch_computations"] if indexed else [
        inst.calls["true_computation"], inst.calls["false_computation"]]
    if selector_bdim is None:
        outs = [b.root_bdim(br, [d]) for br, d in zip(branches, arg_bdims)]
        out = outs[0]
        for other in outs[1:]:
            out = _join(out, other)
        new = [b.batch_callee(br, [d], out)[0] for br, d in zip(branches, arg_bdims)]
        calls = ({"branch_computations": new} if indexed else
                 {"true_computation": new[0], "false_computation": new[1]})
        return b.op("conditional", selector, *args, calls=calls, **inst.attrs), out
    out = all_at_front(inst.shape)
    results = [b.op("call", arg, calls={"to_apply": b.batch_callee(br, [d], out)[0]})
               for br, arg, d in zip(branches, args, arg_bdims)]
    selector = b.to_front(selector, selector_bdim)
    if not indexed:    # pred form: true when the selector is true
        return _select_tree(b, selector, results[0], results[1], inst.shape), out
    # An index out of range runs the last branch (XLA's rule).
    chosen = results[-1]
    for k in range(len(results) - 2, -1, -1):
        is_k = b.compare(selector, b.filled(k, selector.shape), "EQ")
        chosen = _select_tree(b, is_k, results[k], chosen, inst.shape)
    return chosen, out


def _select_tree(b: Batcher, pred, on_true, on_false, shape: Shape):
    """Per example (pred is pred[B]), `on_true` where pred holds else `on_false`."""
    if shape.is_tuple:
        return b.op("tuple", *[
            _select_tree(b, pred, b.gte(on_true, k), b.gte(on_false, k), s)
            for k, s in enumerate(shape.elements)])
    full = batched_shape(shape, 0, b.size)
    mask = b.op("broadcast", pred, shape=ArrayShape(DType.PRED, full.dims), dimensions=(0,))
    return b.select(mask, on_true, on_false)

