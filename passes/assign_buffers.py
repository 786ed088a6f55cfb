"""assign-buffers: show the liveness-based buffer plan in the HLO text.

Each entry instruction with bytes in the arena gets `buffer={offset=N,size=M}`; outputs get
`buffer=output`, so a dump says where every temporary lives and which ones share bytes.
"""
from flowjit.ir.attributes import BufferSlice
from flowjit.ir.buffers import flatten_slots, plan_buffers, updated_operand
from flowjit.ir.module import Module
from flowjit.ir.ops import spec


def sink_updates(module: Module) -> bool:
    """Schedule each update that may run in place (a dynamic-update-slice or scatter) just
    before its first user, so the instructions that still read its operand's old value run
    before it and the plan can give the update its operand's bytes (a loop body that slices
    a stacked array and then updates it would otherwise copy the whole stack each step)."""
    changed = False
    for comp in module.computations:
        # Latest first: an earlier update then sinks past later ones that read its operand.
        for inst in [i for i in reversed(comp.instructions) if updated_operand(i) is not None]:
            order = comp.instructions
            position = order.index(inst)
            first_user = next((k for k in range(position + 1, len(order))
                               if inst in order[k].operands), len(order))
            if inst is comp.root or first_user <= position + 1:
                continue
            order.pop(position)
            order.insert(first_user - 1, inst)
            changed = True
    return changed


def run(module: Module) -> bool:
    """Annotate entry instructions with their arena offset and size (or `output`); updates
    are first scheduled late so that they can run in place."""
    changed = sink_updates(module)
    plan, trees = plan_buffers(module, reuse=True)
    outputs = set(plan.outputs)
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
