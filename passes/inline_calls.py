"""inline-calls: replace each `call` by a copy of its callee's instructions."""
from __future__ import annotations

from flowjit.ir.builder import NameTable
from flowjit.ir.graph import clone_instructions
from flowjit.ir.module import Computation, Instruction, Module


def inline_calls(comp: Computation, names: NameTable) -> bool:
    """Replace each `call` in `comp` by a copy of its callee (one level), in one sweep."""
    replaced: dict[int, Instruction] = {}
    inlined: list[Instruction] = []
    for inst in comp.instructions:
        if replaced:
            inst.operands = [replaced.get(id(o), o) for o in inst.operands]
        if inst.opcode != "call":
            inlined.append(inst)
            continue
        callee = inst.calls["to_apply"]
        arguments = {id(p): inst.operands[p.attrs["number"]] for p in callee.parameters}
        new, mapping = clone_instructions(callee.instructions, names, arguments, inst.metadata)
        inlined.extend(new)
        replaced[id(inst)] = mapping[id(callee.root)]
    if not replaced:
        return False
    comp.instructions = inlined
    comp.root = replaced.get(id(comp.root), comp.root)
    return True


def run(module: Module) -> bool:
    """Inline every call (innermost first), then drop callees nothing calls any more."""
    names = NameTable.for_module(module)
    changed = False
    for comp in module.reachable_computations():
        while inline_calls(comp, names):   # again for calls the callees made
            changed = True
    if changed:
        module.remove_dead_computations()
    return changed
