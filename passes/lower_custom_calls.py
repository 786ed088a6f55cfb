"""lower-custom-calls: the autodiff markers become plain code before codegen.

`custom-call` "stop_gradient" is the identity once gradients are taken; a
"flowjit.custom_vjp", "flowjit.custom_jvp" or "flowjit.checkpoint.*" call is its primal
computation (the custom rule or policy only matters to the autodiff transformations, which
ran at trace time).
"""
from __future__ import annotations

from typing import Optional

from flowjit.ir.builder import NameTable
from flowjit.ir.module import Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.rewrite import rewrite_computation
from flowjit.passes.remat import is_checkpoint


def _lower(inst: Instruction, names: NameTable, uses) -> Optional[Instruction]:
    target = inst.attrs.get("custom_call_target")
    if target == "stop_gradient":
        return inst.operands[0]
    if target in ("flowjit.custom_vjp", "flowjit.custom_jvp") or is_checkpoint(target):
        primal = inst.calls["called_computations"][0]
        # The same name: the custom call it stands for goes (nothing uses it any more).
        return Instruction(inst.name, Opcode.CALL, inst.shape, inst.operands,
                           calls={"to_apply": primal}, metadata=inst.metadata)
    return None


def run(module: Module) -> bool:
    """Replace stop_gradient markers by their operand and custom_vjp calls by `call`."""
    names = NameTable.for_module(module)
    changed = False
    for comp in module.computations:
        changed |= rewrite_computation(comp, {Opcode.CUSTOM_CALL: _lower}, names)
    if changed:
        module.remove_dead_computations()
    return changed
