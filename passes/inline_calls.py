"""inline-calls: replace each `call` by a copy of its callee's instructions."""
from __future__ import annotations

from flowjit.ir.builder import NameTable
from flowjit.ir.module import Computation, Instruction, Module


def inline_call(comp: Computation, call: Instruction, names: NameTable) -> None:
    callee = call.calls["to_apply"]
    mapping: dict[int, Instruction] = {}
    new: list[Instruction] = []
    for inst in callee.instructions:
        if inst.opcode == "parameter":
            mapping[id(inst)] = call.operands[inst.attrs["number"]]
            continue
        copy = inst.copy_with(names.fresh(inst.name), [mapping[id(o)] for o in inst.operands],
                              metadata=inst.metadata or call.metadata)
        mapping[id(inst)] = copy
        new.append(copy)
    position = comp.instructions.index(call)
    comp.instructions[position:position] = new
    comp.replace_all_uses(call, mapping[id(callee.root)])
    comp.instructions.remove(call)


def run(module: Module) -> bool:
    """Inline every call (innermost first), then drop callees nothing calls any more."""
    names = NameTable.for_module(module)
    changed = False
    for comp in module.reachable_computations():
        while True:
            calls = [i for i in comp.instructions if i.opcode == "call"]
            if not calls:
                break
            for call in calls:
                inline_call(comp, call, names)
            changed = True
    if changed:
        module.remove_dead_computations()
    return changed
