"""fold-constants: instructions whose operands are all constants become constants."""
from __future__ import annotations

import numpy as np

from flowjit.ir.module import Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import FusionRole, spec
from flowjit.ir.reference import evaluate_instruction

MAX_FOLDED_ELEMENTS = 1024  # a fold never writes a literal bigger than this
# Ops that compute values from their operands alone; scatter, opaque to fusion, is one too.
_FOLDABLE_ROLES = (FusionRole.ELEMENTWISE, FusionRole.DATA_MOVEMENT, FusionRole.REDUCTION,
                   FusionRole.CONTRACTION)


def _foldable(inst: Instruction) -> bool:
    computes = spec(inst.opcode).role in _FOLDABLE_ROLES or inst.opcode is Opcode.SCATTER
    if not computes or inst.shape.is_tuple or not inst.operands:
        return False
    if inst.shape.size > MAX_FOLDED_ELEMENTS:
        return False
    if inst.opcode == "broadcast" and inst.shape.size > 1:
        return False  # a broadcast of a scalar is cheaper than its literal
    return all(o.opcode == "constant" for o in inst.operands)


def run(module: Module) -> bool:
    """Evaluate foldable instructions with the reference semantics of their op."""
    changed = False
    for comp in module.computations:
        for n, inst in enumerate(list(comp.instructions)):
            if not _foldable(inst):
                continue
            with np.errstate(all="ignore"):
                value = evaluate_instruction(inst, [o.literal for o in inst.operands])
            inst.opcode = "constant"
            inst.literal = np.array(value, dtype=inst.shape.dtype.to_numpy(), order="C")
            inst.operands = []
            inst.attrs = {}
            inst.calls = {}
            changed = True
        if changed:
            comp.remove_unreachable()
    return changed
