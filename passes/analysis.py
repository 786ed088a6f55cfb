"""What a compiled module costs: memory (JAX's names) and flops/bytes (XLA's keys)."""
from __future__ import annotations

from dataclasses import dataclass

from flowjit.ir.buffers import plan_buffers
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.ops import CostClass, spec
from flowjit.ir.shapes import leaves



@dataclass(frozen=True)
class MemoryAnalysis:
    """Bytes of arguments, outputs and temporaries (attribute names as in JAX)."""

    argument_size_in_bytes: int
    output_size_in_bytes: int
    temp_size_in_bytes: int
    alias_size_in_bytes: int = 0
    generated_code_size_in_bytes: int = 0

    @property
    def peak_memory_in_bytes(self) -> int:
        """Arguments + outputs + the arena of temporaries, all live at once at worst."""
        return self.argument_size_in_bytes + self.output_size_in_bytes + self.temp_size_in_bytes


def memory_analysis(module: Module) -> MemoryAnalysis:
    """Memory of the module under the liveness-based buffer plan the runtime uses."""
    plan, _ = plan_buffers(module)
    arguments = sum(p.shape.nbytes for p in module.entry.parameters)
    outputs = sum(plan.shapes[s].nbytes for s in dict.fromkeys(plan.outputs))
    return MemoryAnalysis(arguments, outputs, plan.arena_size)


def _flops(inst: Instruction) -> tuple[float, float]:
    """(flops, transcendentals) of one instruction, not counting what it calls."""
    op = inst.opcode
    if not spec(op).does_work or inst.shape.is_tuple and op not in ("reduce",):
        return 0.0, 0.0
    if op == "dot":
        lhs = inst.operands[0]
        contracted = 1
        for d in inst.attrs.get("lhs_contracting_dims", ()):
            contracted *= lhs.shape.dims[d]
        return 2.0 * inst.shape.size * contracted, 0.0
    if op == "reduce":
        return float(sum(o.shape.size for o in inst.operands[:len(inst.operands) // 2])), 0.0
    if spec(op).elementwise:
        size = float(inst.shape.size)
        return size, size if spec(op).cost is CostClass.TRANSCENDENTAL else 0.0
    return 0.0, 0.0


def _computation_flops(comp: Computation) -> tuple[float, float]:
    flops = transcendentals = 0.0
    for inst in comp.instructions:
        f, t = _flops(inst)
        flops, transcendentals = flops + f, transcendentals + t
        if inst.opcode == "fusion":
            f, t = _computation_flops(inst.calls["calls"])
            flops, transcendentals = flops + f, transcendentals + t
    return flops, transcendentals


def cost_analysis(module: Module) -> dict:
    """XLA's keys (`flops`, `transcendentals`, `bytes accessed`) in total, and per kernel
    under `kernels` (each fusion or unfused instruction of the entry computation)."""
    kernels = []
    for inst in module.entry.instructions:
        if not spec(inst.opcode).does_work:
            continue
        if inst.opcode == "fusion":
            flops, transcendentals = _computation_flops(inst.calls["calls"])
        else:
            flops, transcendentals = _flops(inst)
        moved = sum(leaf.nbytes for o in inst.operands for leaf in leaves(o.shape))
        moved += sum(leaf.nbytes for leaf in leaves(inst.shape))
        kernels.append({"name": inst.name, "opcode": inst.opcode,
                        "kind": inst.attrs.get("kind", ""), "flops": flops,
                        "transcendentals": transcendentals, "bytes accessed": float(moved)})
    return {"flops": sum(k["flops"] for k in kernels),
            "transcendentals": sum(k["transcendentals"] for k in kernels),
            "bytes accessed": sum(k["bytes accessed"] for k in kernels),
            "kernels": kernels}
