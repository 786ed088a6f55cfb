"""JVP rules for ops that call computations: call, while, conditional, custom-call.

A call is inlined with tangents. A while loop carries the tangents of its state in the
state itself (JAX's `_while_loop_jvp`): which elements carry one is the fixed point of the
body's dependence analysis, so a counter or an element never touched by a nonzero tangent
costs nothing. A conditional's branches each return (value, tangent). A custom_jvp call
runs its rule; a custom_vjp call refuses, as in JAX.
"""
from __future__ import annotations

from flowjit.ir.module import Computation, Instruction
from flowjit.ir.shapes import TupleShape
from flowjit.passes.jvp import (Tangent, WithPrimal, _branches, elements, has_float,
                                is_nonzero, jvp_inline, loop_mask, mask_any)
from flowjit.passes.remat import is_checkpoint
from flowjit.passes.vjp import Emitter, NonDifferentiableError, output_leaves

CUSTOM_JVP_TARGET = "flowjit.custom_jvp"


def _finish(inner: Emitter, root: Instruction) -> Computation:
    comp = inner.finish(root)
    comp.remove_unreachable()   # primal copies a rule replaced (WithPrimal)
    return comp


def call_rule(e: Emitter, inst: Instruction, tangents: list[Tangent]) -> WithPrimal:
    """call f(args): f inlined here with the arguments' tangents."""
    value, tangent = jvp_inline(e, inst.calls["to_apply"], inst.operands, tangents)
    return WithPrimal(value, tangent)


def while_rule(e: Emitter, inst: Instruction, tangents: list[Tangent]) -> Tangent:
    """A while over (state..., tangents of the elements that ever get one...)."""
    (init,) = inst.operands
    shape = inst.shape
    m = len(shape.elements)
    body, cond = inst.calls["body"], inst.calls["condition"]
    init_tangents = elements(tangents[0], e, m)
    start = [is_nonzero(t) and has_float(s) for t, s in zip(init_tangents, shape.elements)]
    mask = loop_mask(body, start, shape)
    carried = [k for k in range(m) if mask_any(mask[k])]
    if not carried:
        return None
    state = TupleShape(tuple(shape.elements) + tuple(shape.elements[k] for k in carried))

    step = e.sub_builder(f"{body.name}_jvp")
    p = step.b.parameter(0, state, "state")
    xs = [step.gte(p, k) for k in range(m)]
    ts: list[Tangent] = [None] * m
    for j, k in enumerate(carried):
        ts[k] = step.gte(p, m + j)
    out, out_tangent = jvp_inline(step, body, [step.op("tuple", *xs)], [ts])
    out_tangents = elements(out_tangent, step, m)
    new_body = _finish(step, step.op(
        "tuple", *[step.gte(out, k) for k in range(m)],
        *[step.materialize(out_tangents[k], shape.elements[k]) for k in carried]))

    test = e.sub_builder(f"{cond.name}_jvp")
    q = test.b.parameter(0, state, "state")
    new_cond = _finish(test, test.inline(cond, [test.op("tuple", *[test.gte(q, k)
                                                                   for k in range(m)])]))
    begin = e.op("tuple", *[e.gte(init, k) for k in range(m)],
                 *[e.materialize(init_tangents[k], shape.elements[k]) for k in carried])
    loop = e.op("while", begin, calls={"body": new_body, "condition": new_cond},
                extra_attrs=dict(inst.extra_attrs), **dict(inst.attrs))
    result: list[Tangent] = [None] * m
    for j, k in enumerate(carried):
        result[k] = e.gte(loop, m + j)
    return WithPrimal(e.op("tuple", *[e.gte(loop, k) for k in range(m)]), result)


def conditional_rule(e: Emitter, inst: Instruction, tangents: list[Tangent]) -> WithPrimal:
    """A conditional whose branch b takes (operand, tangent) — or the operand alone when
    its tangent is zero — and returns (value, tangent)."""
    selector, *operands = inst.operands
    branches = []
    packed = []
    for branch, x, t in zip(_branches(inst), operands, tangents[1:]):
        inner = e.sub_builder(f"{branch.name}_jvp")
        if is_nonzero(t):
            p = inner.b.parameter(0, TupleShape((x.shape, x.shape)), "operand")
            arg, arg_tangent = inner.gte(p, 0), inner.gte(p, 1)
            packed.append(e.op("tuple", x, e.materialize(t, x.shape)))
        else:
            arg, arg_tangent = inner.b.parameter(0, x.shape, "operand"), None
            packed.append(x)
        out, out_tangent = jvp_inline(inner, branch, [arg], [arg_tangent])
        branches.append(_finish(inner, inner.op("tuple", out,
                                                inner.materialize(out_tangent, inst.shape))))
    if "branch_computations" in inst.calls:
        calls = {"branch_computations": branches}
    else:
        calls = {"true_computation": branches[0], "false_computation": branches[1]}
    chosen = e.op("conditional", selector, *packed, calls=calls)
    return WithPrimal(e.gte(chosen, 0), e.gte(chosen, 1))


def custom_call_rule(e: Emitter, inst: Instruction, tangents: list[Tangent]) -> Tangent:
    """stop_gradient: zero. custom_jvp: its rule's (outputs, tangents). custom_vjp: refused,
    as JAX refuses it (its rule only defines the reverse mode)."""
    target = inst.attrs["custom_call_target"]
    if target == "stop_gradient":
        return None
    if target == "flowjit.custom_vjp":
        raise NonDifferentiableError("can't apply forward-mode autodiff (jvp) to a "
                                     "custom_vjp function.")
    if is_checkpoint(target):   # forward mode saves nothing: the body, inlined
        (body,) = inst.calls["called_computations"]
        return WithPrimal(*jvp_inline(e, body, inst.operands, tangents))
    if target != CUSTOM_JVP_TARGET:
        raise NotImplementedError(f"forward-mode derivative of custom-call {target!r}")
    primal, rule = inst.calls["called_computations"][:2]
    given = [e.materialize(t, x.shape) for t, x in zip(tangents, inst.operands)]
    both = e.op("call", *inst.operands, *given, calls={"to_apply": rule})
    n = len(output_leaves(primal))
    values = [e.gte(both, k) for k in range(n)]
    out_tangents = [e.gte(both, n + k) for k in range(n)]
    if primal.root.opcode == "tuple":
        return WithPrimal(e.op("tuple", *values), out_tangents)
    return WithPrimal(values[0], out_tangents[0])
