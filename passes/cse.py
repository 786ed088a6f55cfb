"""cse: structurally equal instructions computed once."""
from __future__ import annotations

from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import spec


def _key(inst: Instruction, ids: dict) -> tuple:
    operands = [ids[id(o)] for o in inst.operands]
    if spec(inst.opcode).commutative:
        operands.sort()
    calls = tuple(sorted((k, tuple(id(c) for c in v) if isinstance(v, list) else id(v))
                         for k, v in inst.calls.items()))
    literal = None
    if inst.literal is not None:
        literal = (inst.literal.dtype.str, inst.literal.shape, inst.literal.tobytes())
    return (inst.opcode, str(inst.shape), tuple(operands), repr(sorted(inst.attrs.items())),
            calls, literal, tuple(sorted(inst.extra_attrs.items())))


def run_computation(comp: Computation) -> bool:
    ids: dict[int, int] = {}
    seen: dict[tuple, Instruction] = {}
    replace: dict[int, Instruction] = {}
    for n, inst in enumerate(comp.instructions):
        inst.operands = [replace.get(id(o), o) for o in inst.operands]
        if inst.opcode is Opcode.PARAMETER or spec(inst.opcode).side_effecting:
            ids[id(inst)] = n
            continue
        key = _key(inst, ids)
        if key in seen:
            replace[id(inst)] = seen[key]
            ids[id(inst)] = ids[id(seen[key])]
        else:
            seen[key] = inst
            ids[id(inst)] = n
    if not replace:
        return False
    if id(comp.root) in replace:
        comp.root = replace[id(comp.root)]
    comp.remove_unreachable()
    return True


def run(module: Module) -> bool:
    """Merge instructions with the same opcode, operands, attributes and literal."""
    changed = False
    for comp in module.computations:
        changed |= run_computation(comp)
    return changed
