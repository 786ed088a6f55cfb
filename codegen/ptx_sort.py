"""sort and topk on the GPU: for now one thread running the CPU kernel's code (the radix or
merge sort of codegen/sort_kernel.py, scratch from the device's malloc), as
select-and-scatter does. Correct for any comparator but serial; a bitonic sort with one
block per row is the planned parallel version."""
from __future__ import annotations

from flowjit.codegen.sort_kernel import emit_sort_kernel
from flowjit.ir.module import Instruction


def sort_steps(lowering, inst: Instruction) -> list:
    """One single-thread launch computing `inst` (a sort or topk)."""
    out_slots = lowering.slots_of(inst)
    in_slots = [s for o in inst.operands for s in lowering.slots_of(o)]
    fn, ctx, outputs, inputs = lowering.new_kernel(inst, out_slots, in_slots)
    emit_sort_kernel(ctx, lowering.constants, inst, outputs, inputs)
    return [lowering.finish(fn, ctx, inst, inst.opcode, (1, 1, 1), 1)]
