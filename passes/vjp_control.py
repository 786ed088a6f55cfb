"""VJP rules for ops that call computations: call, conditional, while (known trip count).

Each differentiates the called computation with `passes.vjp` (through `Emitter.derivative`)
and emits the same kind of op on the derivative, so gradients of loops stay loops.
"""
from __future__ import annotations

from flowjit.ir.dtypes import DType
from flowjit.ir.graph import post_order
from flowjit.ir.module import Instruction
from flowjit.ir.ops import spec
from flowjit.ir.shapes import ArrayShape, TupleShape
from flowjit.passes.vjp import (Cotangent, Emitter, has_float, known_trip_count, no_rule_error,
                                output_leaves)


def call_rule(e: Emitter, inst: Instruction, g: Cotangent) -> list[Cotangent]:
    """call f(args): call f's VJP on (args, cotangents); CSE shares the recomputed forward."""
    callee = inst.calls["to_apply"]
    wrt = [k for k, p in enumerate(callee.parameters) if has_float(p.shape)]
    backward = e.derivative(callee, wrt)
    n_out = len(output_leaves(callee))
    cts = e.output_cotangents(callee, g, inst.shape)
    result = e.op("call", *inst.operands, *cts, calls={"to_apply": backward})
    out: list[Cotangent] = [None] * len(inst.operands)
    for i, k in enumerate(wrt):
        out[k] = e.gte(result, n_out + i)
    return out


def conditional_rule(e: Emitter, inst: Instruction, g: Cotangent) -> list[Cotangent]:
    """A conditional of the branches' VJPs: branch b returns its operand's cotangent in slot
    b and zeros in the others, so every backward branch has the same result shape."""
    selector, *operands = inst.operands
    if "branch_computations" in inst.calls:
        branches, kind = list(inst.calls["branch_computations"]), "list"
    else:
        branches = [inst.calls["true_computation"], inst.calls["false_computation"]]
        kind = "pred"
    g_all = e.materialize(g, inst.shape)
    result_shape = TupleShape(tuple(o.shape for o in operands))
    backward = []
    for b, branch in enumerate(branches):
        derivative = e.derivative(branch, [0])
        inner = e.sub_builder(f"{branch.name}_bwd")
        param = inner.b.parameter(0, TupleShape((operands[b].shape, inst.shape)), "state")
        x, gb = inner.gte(param, 0), inner.gte(param, 1)
        cts = inner.output_cotangents(branch, gb, inst.shape)
        res = inner.op("call", x, *cts, calls={"to_apply": derivative})
        n_out = len(output_leaves(branch))
        slots = [inner.gte(res, n_out) if k == b else inner.filled(0, s)
                 for k, s in enumerate(result_shape.elements)]
        backward.append(inner.finish(inner.op("tuple", *slots)))
    packed = [e.op("tuple", o, g_all) for o in operands]
    calls = ({"branch_computations": backward} if kind == "list" else
             {"true_computation": backward[0], "false_computation": backward[1]})
    result = e.op("conditional", selector, *packed, calls=calls)
    return [None] + [e.gte(result, b) for b in range(len(operands))]


def _passthrough(body, k: int) -> bool:
    """Whether state element k leaves the body unchanged (a captured outer value)."""
    root = body.root
    if root.opcode != "tuple":
        return False
    out = root.operands[k]
    return (out.opcode == "get-tuple-element" and out.attrs["index"] == k
            and out.operands[0] is body.parameters[0])


def _read_by_gradient(derivative, outputs: int, m: int, residuals: set) -> set[int]:
    """The state elements whose input values the body's VJP reads to compute cotangents
    (not to recompute the body's own outputs, which the backward loop drops, nor through a
    stashed residual)."""
    state = derivative.parameters[0]
    roots = derivative.root.operands[outputs:]
    if any(r is state for r in roots):
        return set(range(m))            # the whole state is read: keep every element
    needed = set()
    for inst in post_order(roots, stop=lambda v: v is state or id(v) in residuals):
        if inst.opcode == "get-tuple-element" and inst.operands[0] is state:
            needed.add(inst.attrs["index"])
        elif any(o is state for o in inst.operands):
            return set(range(m))
    return needed


def _residuals(derivative, outputs: int) -> list[Instruction]:
    """The costly values (products, transcendentals, divisions) of the step's forward part
    that its VJP part needs, directly or through cheap forward ops (recomputed from them):
    the forward loop stacks them, so the backward loop reads them instead of computing the
    step again (as JAX's scan keeps its residuals)."""
    state = derivative.parameters[0]
    tangent = {id(p) for p in derivative.parameters[1:]}
    for inst in derivative.instructions:
        if any(id(o) in tangent for o in inst.operands):
            tangent.add(id(inst))
    found: dict[int, Instruction] = {}
    seen: set[int] = set()
    frontier = []
    for inst in derivative.instructions:
        if id(inst) in tangent:
            operands = inst.operands[outputs:] if inst is derivative.root else inst.operands
            frontier.extend(o for o in operands if id(o) not in tangent)
    while frontier:
        value = frontier.pop()
        if id(value) in seen or value is state:
            continue
        seen.add(id(value))
        if (spec(value.opcode).costly and not value.shape.is_tuple
                and value.shape.size > 0):
            found.setdefault(id(value), value)
        else:
            frontier.extend(value.operands)
    return list(found.values())


def while_rule(e: Emitter, inst: Instruction, g: Cotangent) -> list[Cotangent]:
    """A while of known trip count n: the forward loop also stacks, each step, what the
    body's VJP reads — its costly intermediate values (residuals) and the input state
    elements it still needs — then a second loop runs the body's VJP over the stacks from
    step n-1 down to 0. The stacking loop replaces the forward loop. A value the VJP never
    reads (e.g. a scan's output buffer, only written to) is not stacked: stacking it cost n
    copies of the whole buffer."""
    n = known_trip_count(inst)
    if n is None:
        raise no_rule_error(inst)
    (init,) = inst.operands
    if n == 0:
        return [g]
    body = inst.calls["body"]
    state = list(inst.shape.elements)
    m = len(state)
    n_out = len(output_leaves(body))
    derivative = e.derivative(body, [0])
    residuals = _residuals(derivative, n_out)
    needed = _read_by_gradient(derivative, n_out, m, {id(r) for r in residuals})
    stashed = [k for k in range(m) if not _passthrough(body, k) and k in needed]
    s32 = ArrayShape(DType.S32, ())
    stacks = [ArrayShape(state[k].dtype, (n,) + state[k].dims) for k in stashed]
    stacks += [ArrayShape(r.shape.dtype, (n,) + r.shape.dims) for r in residuals]

    # Forward: (state..., counter, stacks...) -> the body's step, and what the VJP reads
    # pushed (CSE merges the residuals' computation with the step's own).
    fwd = e.sub_builder(f"{body.name}_stacking")
    p = fwd.b.parameter(0, TupleShape(tuple(state) + (s32,) + tuple(stacks)), "state")
    xs = [fwd.gte(p, k) for k in range(m)]
    i = fwd.gte(p, m)
    stepped = fwd.inline(body, [fwd.op("tuple", *xs)])
    computed = fwd.inline_values(derivative, [fwd.op("tuple", *xs)], residuals)
    pushed_values = [xs[k] for k in stashed] + computed

    def push(stack_index, value):
        return fwd.op("dynamic-update-slice", fwd.gte(p, m + 1 + stack_index),
                      fwd.reshape(value, (1,) + value.shape.dims), i,
                      *[fwd.scalar(0, s32.dtype)] * value.shape.rank)
    pushed = [push(j, v) for j, v in enumerate(pushed_values)]
    fwd_body = fwd.finish(fwd.op("tuple", *[fwd.gte(stepped, k) for k in range(m)],
                                 fwd.add(i, fwd.scalar(1, s32.dtype)), *pushed))
    fwd_cond = _counter_below(e, p.shape, m, n)
    start = e.op("tuple", *[e.gte(init, k) for k in range(m)], e.scalar(0, s32.dtype),
                 *[e.filled(0, s) for s in stacks])
    stacking = e.op("while", start, calls={"body": fwd_body, "condition": fwd_cond},
                    known_trip_count=n)
    e.replacements.append((inst, e.op("tuple", *[e.gte(stacking, k) for k in range(m)])))

    # Backward: (counter, cotangents..., stacks..., passthrough values...).
    passed = [k for k in range(m) if _passthrough(body, k) and k in needed]
    bwd = e.sub_builder(f"{body.name}_reverse")
    shape = TupleShape((s32,) + tuple(state) + tuple(stacks)
                       + tuple(state[k] for k in passed))
    q = bwd.b.parameter(0, shape, "state")
    i = bwd.gte(q, 0)
    cts = [bwd.gte(q, 1 + k) for k in range(m)]
    at = bwd.sub(bwd.scalar(n - 1, s32.dtype), i)

    def read(stack_index, dims):
        window = bwd.op("dynamic-slice", bwd.gte(q, 1 + m + stack_index), at,
                        *[bwd.scalar(0, s32.dtype)] * len(dims),
                        dynamic_slice_sizes=(1,) + tuple(dims))
        return bwd.reshape(window, dims)
    xs = [None] * m
    for j, k in enumerate(stashed):
        xs[k] = read(j, state[k].dims)
    for j, k in enumerate(passed):
        xs[k] = bwd.gte(q, 1 + m + len(stacks) + j)
    for k in range(m):
        if xs[k] is None:      # not read by the VJP: any value of its shape will do
            xs[k] = bwd.filled(0, state[k])
    known = {id(r): read(len(stashed) + j, r.shape.dims) for j, r in enumerate(residuals)}
    out_cts = cts if body.root.opcode == "tuple" else [bwd.op("tuple", *cts)]
    res = bwd.inline(derivative, [bwd.op("tuple", *xs)] + out_cts, known)
    new_cts = bwd.gte(res, n_out)
    bwd_body = bwd.finish(bwd.op("tuple", bwd.add(i, bwd.scalar(1, s32.dtype)),
                                 *[bwd.gte(new_cts, k) for k in range(m)],
                                 *[bwd.gte(q, k) for k in range(1 + m, len(shape.elements))]))
    bwd_cond = _counter_below(e, shape, 0, n)
    g_all = e.materialize(g, inst.shape)
    start = e.op("tuple", e.scalar(0, s32.dtype), *[e.gte(g_all, k) for k in range(m)],
                 *[e.gte(stacking, m + 1 + j) for j in range(len(stacks))],
                 *[e.gte(init, k) for k in passed])
    reverse = e.op("while", start, calls={"body": bwd_body, "condition": bwd_cond},
                   known_trip_count=n)
    return [[e.gte(reverse, 1 + k) if has_float(state[k]) else None for k in range(m)]]


def _counter_below(e: Emitter, shape: TupleShape, index: int, n: int):
    """A loop condition: state element `index` (an s32 counter) < n."""
    cond = e.sub_builder("counter_below")
    p = cond.b.parameter(0, shape, "state")
    return cond.finish(cond.compare(cond.gte(p, index), cond.scalar(n, DType.S32), "LT"))

