"""assign-buffers: show the liveness-based buffer plan in the HLO text.

Each entry instruction with bytes in the arena gets `buffer={offset=N,size=M}`; outputs get
`buffer=output`, so a dump says where every temporary lives and which ones share bytes.
"""
from flowjit.ir.buffers import flatten_slots, plan_buffers
from flowjit.ir.module import Module


def run(module: Module) -> bool:
    """Annotate entry instructions with their arena offset and size (or `output`)."""
    plan, trees = plan_buffers(module, reuse=True)
    outputs = set(plan.outputs)
    changed = False
    for inst in module.entry.instructions:
        if inst.opcode in ("parameter", "constant", "tuple", "get-tuple-element"):
            continue
        slots = flatten_slots(trees[id(inst)])
        parts = []
        for s in slots:
            if s in outputs:
                parts.append("output")
            elif s in plan.arena_offsets:
                parts.append(f"{{offset={plan.arena_offsets[s]},size={plan.shapes[s].nbytes}}}")
        text = parts[0] if len(parts) == 1 else "{" + ",".join(parts) + "}"
        if parts and inst.extra_attrs.get("buffer") != text:
            inst.extra_attrs["buffer"] = text
            changed = True
    return changed
