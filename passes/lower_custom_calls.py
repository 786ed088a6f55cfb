"""lower-custom-calls: the autodiff markers become plain code before codegen.

`custom-call` "stop_gradient" is the identity once gradients are taken; a
"flowjit.custom_vjp" call is its primal computation (the custom rule only matters to the
VJP transformation, which ran at trace time).
"""
from flowjit.ir.module import Module


def run(module: Module) -> bool:
    """Replace stop_gradient markers by their operand and custom_vjp calls by `call`."""
    changed = False
    for comp in module.computations:
        for inst in list(comp.instructions):
            if inst.opcode != "custom-call":
                continue
            target = inst.attrs.get("custom_call_target")
            if target == "stop_gradient":
                comp.replace_all_uses(inst, inst.operands[0])
                comp.instructions.remove(inst)
                changed = True
            elif target == "flowjit.custom_vjp":
                primal = inst.calls["called_computations"][0]
                inst.opcode = "call"
                inst.attrs = {}
                inst.calls = {"to_apply": primal}
                changed = True
    if changed:
        module.remove_dead_computations()
    return changed
