"""inline-calls: replace each `call` by a copy of its callee's instructions."""
from __future__ import annotations

from flowjit.ir.builder import NameTable
from flowjit.ir.graph import clone_instructions
from flowjit.ir.module import Computation, Instruction, Module


def inline_call(comp: Computation, call: Instruction, names: NameTable) -> None:
    callee = call.calls["to_apply"]
    arguments = {id(p): call.operands[p.attrs["number"]] for p in callee.parameters}
    new, mapping = clone_instructions(callee.instructions, names, arguments, call.metadata)
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
