"""assign-buffers: show the liveness-based buffer plan in the HLO text.

Each entry instruction with bytes in the arena gets `buffer={offset=N,size=M}`; outputs get
`buffer=output`, so a dump says where every temporary lives and which ones share bytes.
"""
from flowjit.ir.attributes import BufferSlice
from flowjit.ir.buffers import flatten_slots, plan_buffers
from flowjit.ir.module import Module
from flowjit.ir.ops import spec


def run(module: Module) -> bool:
    """Annotate entry instructions with their arena offset and size (or `output`)."""
    plan, trees = plan_buffers(module, reuse=True)
    outputs = set(plan.outputs)
    changed = False
    for inst in module.entry.instructions:
        if not spec(inst.opcode).does_work:
            continue
        slices = []
        for s in flatten_slots(trees[id(inst)]):
            if s in outputs:
                slices.append(BufferSlice(output=True))
            elif s in plan.arena_offsets:
                slices.append(BufferSlice(plan.arena_offsets[s], plan.shapes[s].nbytes))
        if slices and inst.attrs.get("buffer") != tuple(slices):
            inst.attrs["buffer"] = tuple(slices)
            changed = True
    return changed
