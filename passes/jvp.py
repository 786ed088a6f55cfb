"""Forward-mode autodiff as an IR transformation.

`jvp(comp, wrt, names)` builds a new computation
    f_jvp(params..., tangent of each wrt param...) -> (outputs..., tangent per output leaf)
by copying the instructions in order and asking each op's rule in
`passes.jvp_rules.JVP_RULES` for the tangent of its result from its operands' tangents.

Tangents are symbolic where they are zero: None stands for a zero tangent and costs nothing
(an op whose operands all have zero tangents gets a zero tangent without asking its rule),
a tuple-shaped value's tangent may be a Python list with one entry per element, and a value
with no float element (a counter, a mask) always has a zero tangent (JAX's float0). Zeros
are only materialised where an instruction needs an operand (`Emitter.materialize`), and
for the outputs. Rules emit IR through the VJP's `Emitter`, so a JVP is optimized, fused
and differentiable like any other code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

from flowjit.ir.builder import Builder, NameTable
from flowjit.ir.module import Computation, Instruction
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.ops import OPS
from flowjit.ir.shapes import Shape
from flowjit.passes.vjp import Emitter, NonDifferentiableError, has_float, output_leaves

# An array tangent, None (zero) or, for a tuple-shaped value, a list of tangents.
Tangent = Union[Instruction, None, list]
# Which parts of a value have a nonzero tangent: a bool, or a list for a tuple shape.
Mask = Union[bool, list]


@dataclass
class WithPrimal:
    """What a rule returns when it also computes the primal value anew (a call inlined, a
    loop that now carries tangents): later instructions read `primal` instead."""

    primal: Instruction
    tangent: Tangent


def is_nonzero(t: Tangent) -> bool:
    """Whether `t` may be nonzero (an instruction, or a list holding one)."""
    if isinstance(t, list):
        return any(is_nonzero(x) for x in t)
    return t is not None


def elements(t: Tangent, e: Emitter, count: int) -> list[Tangent]:
    """The tangent of each element of a tuple-shaped value."""
    if isinstance(t, list):
        return list(t)
    if t is None:
        return [None] * count
    return [e.gte(t, k) for k in range(count)]


def clean(t: Tangent, shape: Shape) -> Tangent:
    """`t` with the tangents of elements that hold no float dropped to None (float0)."""
    if t is None or not has_float(shape):
        return None
    if shape.is_tuple and isinstance(t, list):
        parts = [clean(x, s) for x, s in zip(t, shape.elements)]
        return parts if any(is_nonzero(x) for x in parts) else None
    return t


def restate(e: Emitter, inst: Instruction, operands: Sequence[Instruction]) -> Instruction:
    """`inst`'s op (attributes, callees, result shape) on other operands, appended here."""
    copy = inst.copy_with(e.names.fresh(inst.name), list(operands), metadata={})
    e.b.computation.instructions.append(copy)
    return copy


def no_rule_error(inst: Instruction, why: str = "") -> NonDifferentiableError:
    where = f", from {inst.source_line}" if inst.source_line else ""
    return NonDifferentiableError(f"cannot differentiate '{inst.opcode}' in forward mode "
                                  f"(%{inst.name}{where}){': ' + why if why else ''}")


def jvp_inline(e: Emitter, comp: Computation, args: Sequence[Instruction],
               tangents: Sequence[Tangent]) -> tuple[Instruction, Tangent]:
    """Copy `comp` here on `args` (with these tangents): its root's value and tangent."""
    from flowjit.passes.jvp_rules import JVP_RULES
    values: dict[int, Instruction] = {}
    tans: dict[int, Tangent] = {}
    for inst in comp.post_order():
        if inst.opcode == "parameter":
            number = inst.attrs["number"]
            values[id(inst)], tans[id(inst)] = args[number], clean(tangents[number],
                                                                      inst.shape)
            continue
        operands = [values[id(o)] for o in inst.operands]
        in_tangents = [tans[id(o)] for o in inst.operands]
        if inst.opcode == "get-tuple-element":
            # Read through a tuple built here (its rule needs the gte itself: do it here).
            index = inst.attrs["index"]
            value = e.gte(operands[0], index)
            t = in_tangents[0]
            values[id(inst)] = value
            tans[id(inst)] = clean(t[index] if isinstance(t, list) else
                                   None if t is None else e.gte(t, index), inst.shape)
            continue
        value = restate(e, inst, operands)
        value.metadata = dict(inst.metadata)
        tangent = None
        if has_float(inst.shape) and any(is_nonzero(t) for t in in_tangents):
            rule = JVP_RULES[inst.opcode]
            if isinstance(rule, Unsupported):
                raise no_rule_error(inst, rule.reason)
            tangent = rule(e, value, in_tangents)
            if isinstance(tangent, WithPrimal):
                value, tangent = tangent.primal, tangent.tangent
            tangent = clean(tangent, inst.shape)
        values[id(inst)], tans[id(inst)] = value, tangent
    return values[id(comp.root)], tans[id(comp.root)]


def jvp(comp: Computation, wrt: Sequence[int], names: Optional[NameTable] = None
        ) -> tuple[Computation, list[Computation]]:
    """The JVP computation of `comp` w.r.t. its parameters `wrt`, and new callees it uses.

    Its parameters are `comp`'s, then one tangent per `wrt` parameter (same shape); it
    returns a tuple of `comp`'s output leaves, then the tangent of each (zeros where none)."""
    extra: list[Computation] = []
    e = Emitter(Builder(f"{comp.name}_jvp", names or NameTable()), extra)
    params = [e.b.parameter(p.attrs["number"], p.shape, "primal") for p in comp.parameters]
    tangents: list[Tangent] = [None] * len(params)
    for k, number in enumerate(wrt):
        tangents[number] = e.b.parameter(len(params) + k, params[number].shape, "tangent")
    root, tangent = jvp_inline(e, comp, params, tangents)
    leaves = output_leaves(comp)
    if comp.root.opcode == "tuple":
        outputs = [e.gte(root, k) for k in range(len(leaves))]
        out_tangents = elements(tangent, e, len(leaves))
    else:
        outputs, out_tangents = [root], [tangent]
    results = outputs + [e.materialize(t, o.shape) for t, o in zip(out_tangents, outputs)]
    result = e.b.finish(e.b.add("tuple", results, metadata={}))
    result.remove_unreachable()
    return result, extra


# --- which values get a nonzero tangent (for loops, whose carried state must be fixed) ----

def mask_of(shape: Shape, flag: bool) -> Mask:
    """A mask of `shape` with every float part set to `flag`."""
    if shape.is_tuple:
        return [mask_of(s, flag) for s in shape.elements]
    return flag and shape.dtype.is_float


def mask_any(mask: Mask) -> bool:
    return any(mask_any(m) for m in mask) if isinstance(mask, list) else bool(mask)


def mask_union(a: Mask, b: Mask, shape: Shape) -> Mask:
    if shape.is_tuple:
        a = a if isinstance(a, list) else mask_of(shape, a)
        b = b if isinstance(b, list) else mask_of(shape, b)
        return [mask_union(x, y, s) for x, y, s in zip(a, b, shape.elements)]
    return bool(a or b) and shape.dtype.is_float


def mask_element(mask: Mask, shape: Shape, index: int) -> Mask:
    return mask[index] if isinstance(mask, list) else mask_of(shape.elements[index], mask)


def tangent_mask(comp: Computation, params: Sequence[Mask]) -> Mask:
    """Which parts of `comp`'s root get a nonzero tangent when its parameters' parts marked
    in `params` have one (a conservative dependence analysis, as the rules would find)."""
    masks: dict[int, Mask] = {}
    for inst in comp.post_order():
        op = inst.opcode
        operands = [masks[id(o)] for o in inst.operands]
        if op == "parameter":
            mask = params[inst.attrs["number"]]
        elif op == "get-tuple-element":
            mask = mask_element(operands[0], inst.operands[0].shape, inst.attrs["index"])
        elif op == "tuple":
            mask = operands
        elif op == "call":
            mask = tangent_mask(inst.calls["to_apply"], operands)
        elif op == "while":
            mask = loop_mask(inst.calls["body"], operands[0], inst.shape)
        elif op == "conditional":
            mask = mask_of(inst.shape, False)
            for branch, operand in zip(_branches(inst), operands[1:]):
                mask = mask_union(mask, tangent_mask(branch, [operand]), inst.shape)
        elif op == "custom-call" and inst.attrs.get("custom_call_target") == "stop_gradient":
            mask = mask_of(inst.shape, False)
        else:
            flowing = OPS[op].differentiable and any(mask_any(m) for m in operands)
            mask = mask_of(inst.shape, flowing)
        masks[id(inst)] = mask
    return masks[id(comp.root)]


def loop_mask(body: Computation, init: Mask, shape: Shape) -> Mask:
    """The state elements with a nonzero tangent in some step: a fixed point from `init`."""
    mask = mask_union(init, False, shape)
    while True:
        grown = mask_union(mask, tangent_mask(body, [mask]), shape)
        if grown == mask:
            return mask
        mask = grown


def _branches(inst: Instruction) -> list[Computation]:
    if "branch_computations" in inst.calls:
        return list(inst.calls["branch_computations"])
    return [inst.calls["true_computation"], inst.calls["false_computation"]]
