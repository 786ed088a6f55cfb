"""reduce-window as an elemental generator: the value at one output index folds the operand
elements under that index's window, so a pooling fuses with its elementwise producer and
consumer like any reduction (codegen/elemental.py holds the table row).

Per window dimension the tap lands at `out * stride + k * window_dilation - padding_low` in
the dilated, padded operand; a tap in padding or in a dilation hole is skipped. The bounds
checks are emitted only where a window can reach past the operand, and dimensions whose
window passes the index through (size 1, stride 1) get neither a loop nor a check.
"""
from __future__ import annotations

from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, for_range
from flowjit.codegen.llvm_types import i64
from flowjit.codegen.scalar_ops import wide_accumulator
from flowjit.ir.attributes import WindowDim
from flowjit.ir.windows import is_trivial


def tap_position(b: llvm_ir.IRBuilder, out, k, w: WindowDim, size: int, out_size: int):
    """(operand index, in-range condition or None) of tap `k` of output position `out`
    along one dimension of `size` operand elements."""
    position = b.add(b.mul(out, i64(w.stride)) if w.stride != 1 else out,
                     b.mul(k, i64(w.window_dilation)) if w.window_dilation != 1 else k)
    if w.padding_low:
        position = b.sub(position, i64(w.padding_low))
    checks = []
    if w.padding_low > 0:
        checks.append(b.icmp_signed(">=", position, i64(0)))
    if w.base_dilation != 1:
        checks.append(b.icmp_signed("==", b.srem(position, i64(w.base_dilation)), i64(0)))
        position = b.sdiv(position, i64(w.base_dilation))
    furthest = (out_size - 1) * w.stride + (w.size - 1) * w.window_dilation - w.padding_low
    if furthest > (size - 1) * w.base_dilation:
        checks.append(b.icmp_signed("<", position, i64(size)))
    condition = None
    for check in checks:
        condition = check if condition is None else b.and_(condition, check)
    return position, condition


def reduce_window_value(em, inst, index):
    """Rule work (see codegen/elemental.py) for reduce-window at output `index`."""
    from flowjit.codegen.elemental import emit_scalar_computation
    n = len(inst.operands) // 2
    inputs, inits = inst.operands[:n], inst.operands[n:]
    window = inst.attrs["window"]
    comp = inst.calls["to_apply"]
    b = em.b
    # f16/bf16 sums and products accumulate in f32 and round once, as XLA's do.
    wide = wide_accumulator(comp, inst.shape.dtype) if n == 1 else None
    slots = []
    for init in inits:
        value = yield init, []
        if wide is not None:
            value = wide.widen(em.ctx, value)
        slots.append(alloca_at_entry(b, value.type, "window.acc"))
        b.store(value, slots[-1])
    dims = inputs[0].shape.dims

    def result():
        out = [b.load(s) for s in slots]
        if wide is not None:
            return wide.narrow(em.ctx, out[0])
        return out[0] if n == 1 else out
    if inputs[0].shape.size == 0:
        return result()
    operand_index = [None] * len(dims)
    conditions = []

    def fold():
        em.push_scope()
        elements = []
        for x in inputs:
            elements.append((yield x, list(operand_index)))
        em.pop_scope()
        accumulators = [b.load(s) for s in slots]
        if wide is not None:
            b.store(wide.combine(em.ctx, accumulators[0], wide.widen(em.ctx, elements[0])),
                    slots[0])
            return
        em.ctx.reassociate = True   # as for reduce: lets LLVM reorder a sum
        try:
            result = emit_scalar_computation(em, comp, accumulators + elements)
        finally:
            em.ctx.reassociate = False
        for slot, r in zip(slots, result if isinstance(result, list) else [result]):
            b.store(r, slot)

    def nest(d: int):
        if d == len(dims):
            live = [c for c in conditions if c is not None]
            if not live:
                yield from fold()
                return
            condition = live[0]
            for c in live[1:]:
                condition = b.and_(condition, c)
            with b.if_then(condition):
                yield from fold()
            return
        w = window[d]
        if is_trivial(w):
            operand_index[d] = index[d]
            yield from nest(d + 1)
            return
        with for_range(b, w.size, f"w{d}") as k:
            position, condition = tap_position(b, index[d], k, w, dims[d],
                                               _out_dims(inst)[d])
            operand_index[d] = position
            conditions.append(condition)
            yield from nest(d + 1)
            conditions.pop()
    yield from nest(0)
    return result()


def _out_dims(inst) -> tuple:
    shape = inst.shape.elements[0] if inst.shape.is_tuple else inst.shape
    return shape.dims
