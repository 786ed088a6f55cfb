"""Lowering of fused, buffer-planned modules to PTX for CUDA GPUs (LLVM's NVPTX target).

Every entry instruction that computes something becomes one kernel (a scatter: a device copy
and a kernel), chosen by what its fusion does: a shared-memory tiled dot with its epilogue, a
block-per-row reduction with warp shuffles (softmax, layer norm, reduce), or a grid-stride
loop over the output for the rest. All kernels use the CPU's elemental and scalar emitters;
transcendental math calls libdevice. The *program* (launches, device copies, and loops and
branches decided on the host from one value read back) is data that runtime/cuda.py
interprets; buffers follow the CPU's plan (ir.buffers.plan_buffers).
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Union

from llvmlite import ir as llvm_ir

from flowjit.codegen.ptx_sort import sort_steps
from flowjit.codegen.elemental import (ELEMENTAL_OPCODES, ConstantPool, ElementalEmitter,
                                       is_elemental)
from flowjit.codegen.window_kernels import emit_select_and_scatter
from flowjit.codegen.kernels import NO_KERNEL
from flowjit.codegen.ptx_dot import dot_grid, dot_tiling, emit_dot_kernel, fusion_dot
from flowjit.codegen.ptx_kernels import (LOOP_BLOCK, MAX_GRID, emit_loop_kernel, emit_row_kernel,
                                         emit_scatter_kernel, loop_grid, row_block_size,
                                         row_reductions, scatter_is_atomic)
from flowjit.codegen.ptx_kernels import no_parameters
from flowjit.codegen.ptx_target import (TRIPLE, compile_to_ptx, cuda_scalar_context, data_layout,
                                        target_machine)
from flowjit.codegen.llvm_types import I32, PTR
from flowjit.ir.buffers import BufferPlan, flatten_slots, plan_buffers
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.opcodes import Opcode
from flowjit.ir.shapes import leaves

DEFAULT_ARCH = "sm_80"


# --- the program the runtime runs ---------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    """Run `kernel` on the buffers in `slots` (outputs first, then inputs)."""

    kernel: str
    slots: tuple[int, ...]
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


@dataclass(frozen=True)
class CopySlots:
    """targets[k] = sources[k], device to device; safe when a source is an earlier target."""

    sources: tuple[int, ...]
    targets: tuple[int, ...]


@dataclass(frozen=True)
class Loop:
    """while (run condition; read predicate_slot): run body; copy results → state."""

    condition: tuple
    predicate_slot: int
    body: tuple
    results: tuple[int, ...]
    state: tuple[int, ...]


@dataclass(frozen=True)
class Branch:
    """Read selector_slot (pred: true → 0, false → 1; s32: out of range → last), run that
    branch, copy its results to outputs."""

    selector_slot: int
    selector_dtype: str
    branches: tuple
    results: tuple
    outputs: tuple[int, ...]


Step = Union[Launch, CopySlots, Loop, Branch]


@dataclass
class PtxKernel:
    """One kernel: its PTX name, kind, launch shape, and the instruction it computes."""

    name: str
    instruction: str
    kind: str                      # loop | row-reduction | dot | scatter
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    source_lines: list[str] = field(default_factory=list)


@dataclass
class PtxProgram:
    """A module compiled to PTX: the text, its kernels, the program and the buffer plan."""

    name: str
    arch: str
    ptx: str
    kernels: list[PtxKernel]
    steps: list[Step]
    plan: BufferPlan
    llvm_ir: str
    optimized_llvm_ir: str
    timings: dict = field(default_factory=dict)

    @property
    def kernel_names(self) -> list[str]:
        return [k.name for k in self.kernels]


# --- lowering -------------------------------------------------------------------------------

class PtxLowering:
    """Builds the NVPTX LLVM module and the program for one (fused, planned) ir.Module."""

    def __init__(self, module: Module, arch: str = DEFAULT_ARCH):
        target_machine(arch)  # rejects an unknown arch before any work
        self.module = module
        self.plan, self._trees = plan_buffers(module)
        self.llvm = llvm_ir.Module(name=module.name)
        self.llvm.triple = TRIPLE
        self.llvm.data_layout = data_layout(arch)
        self.constants = ConstantPool(self.llvm)
        self.kernels: list[PtxKernel] = []
        self._annotations = self.llvm.add_named_metadata("nvvm.annotations")

    def slots_of(self, inst: Instruction) -> list[int]:
        return flatten_slots(self._trees[id(inst)])

    def program(self, comp: Computation) -> list[Step]:
        """The steps that run `comp` (its kernels are added to the LLVM module)."""
        steps: list[Step] = []
        for inst in comp.instructions:
            rule = PTX_LOWERING[inst.opcode]
            if isinstance(rule, Unsupported):
                raise NotImplementedError(f"the CUDA backend cannot run '{inst.opcode}' "
                                          f"(%{inst.name}): {rule.reason}")
            steps += rule(self, inst)
        return steps

    def no_steps(self, inst: Instruction) -> list[Step]:
        """Parameters, literals and tuples only name buffers: nothing runs for them."""
        return []

    def call(self, inst: Instruction) -> list[Step]:
        return self.program(inst.calls["to_apply"])

    def loop(self, inst: Instruction) -> list[Step]:
        state = tuple(self.slots_of(inst))
        condition, body = inst.calls["condition"], inst.calls["body"]
        (predicate,) = self.slots_of(condition.root)
        return [CopySlots(tuple(self.slots_of(inst.operands[0])), state),
                Loop(tuple(self.program(condition)), predicate, tuple(self.program(body)),
                     tuple(self.slots_of(body.root)), state)]

    def branch(self, inst: Instruction) -> list[Step]:
        selector = inst.operands[0]
        branches = inst.calls.get("branch_computations") or [
            inst.calls["true_computation"], inst.calls["false_computation"]]
        (selector_slot,) = self.slots_of(selector)
        return [Branch(selector_slot, selector.shape.dtype.value,
                       tuple(tuple(self.program(c)) for c in branches),
                       tuple(tuple(self.slots_of(c.root)) for c in branches),
                       tuple(self.slots_of(inst)))]

    # --- kernels ------------------------------------------------------------------------
    def kernel_steps(self, inst: Instruction) -> list[Step]:
        """The launch (and copies) computing one entry-level instruction."""
        out_slots = self.slots_of(inst)
        in_slots = [s for o in inst.operands for s in self.slots_of(o)]
        if inst.opcode == "scatter":
            return self.scatter_steps(inst, out_slots, in_slots)
        if inst.opcode == "select-and-scatter":
            return self.select_and_scatter_steps(inst, out_slots, in_slots)
        if inst.opcode == "fusion":
            comp = inst.calls["calls"]
            root, dot = comp.root, fusion_dot(comp)
            fn, ctx, outputs, inputs = self.new_kernel(inst, out_slots, in_slots)
            buffers = {id(p): inputs[p.attrs["number"]] for p in comp.parameters}
        elif is_elemental(inst):
            root = inst
            dot = inst if inst.opcode == "dot" and dot_tiling(inst) is not None else None
            fn, ctx, outputs, inputs = self.new_kernel(inst, out_slots, in_slots)
            buffers = {id(o): p for o, p in zip(inst.operands, inputs)}
        else:
            raise NotImplementedError(f"the CUDA backend cannot run '{inst.opcode}' "
                                      f"(%{inst.name}) yet")
        if dot is not None:
            emit_dot_kernel(ctx, self.constants, root, dot, outputs, buffers)
            return [self.finish(fn, ctx, inst, "dot", dot_grid(dot), 256)]
        rank, reductions = row_reductions(root, buffers)
        if reductions:
            reduced = max(math.prod(r.operands[0].shape.dims[d] for d in r.attrs["dimensions"])
                          for r in reductions)
            rows = math.prod(leaves(root.shape)[0].dims[:rank])
            block = row_block_size(reduced, rows)
            emit_row_kernel(ctx, self.constants, root, rank, reductions, outputs, buffers,
                            block)
            grid = (max(1, min(rows, MAX_GRID)), 1, 1)
            return [self.finish(fn, ctx, inst, "row-reduction", grid, block)]
        size = emit_loop_kernel(ctx, self.constants, root, outputs, buffers)
        return [self.finish(fn, ctx, inst, "loop", loop_grid(size), LOOP_BLOCK)]

    def scatter_steps(self, inst: Instruction, out_slots, in_slots) -> list[Step]:
        steps: list[Step] = []
        if out_slots[0] != in_slots[0]:
            steps.append(CopySlots((in_slots[0],), (out_slots[0],)))
        fn, ctx, outputs, inputs = self.new_kernel(inst, out_slots, in_slots)
        count = emit_scatter_kernel(ctx, self.constants, inst, outputs[0], inputs[1],
                                    inputs[2])
        if scatter_is_atomic(inst):
            return steps + [self.finish(fn, ctx, inst, "scatter", loop_grid(count),
                                        LOOP_BLOCK)]
        return steps + [self.finish(fn, ctx, inst, "scatter", (1, 1, 1), 1)]

    def select_and_scatter_steps(self, inst: Instruction, out_slots, in_slots) -> list[Step]:
        """One thread, in XLA's order (the CPU kernel's code): correct for any select and
        scatter computation, but serial; a parallel version (atomic adds) is future work."""
        fn, ctx, outputs, inputs = self.new_kernel(inst, out_slots, in_slots)
        emitter = ElementalEmitter(ctx, no_parameters, self.constants,
                                   {id(inst.operands[2]): inputs[2]})
        emit_select_and_scatter(ctx, emitter, inst, outputs[0], inputs[0], inputs[1])
        return [self.finish(fn, ctx, inst, "select-and-scatter", (1, 1, 1), 1)]

    def new_kernel(self, inst: Instruction, out_slots: list[int], in_slots: list[int]):
        """A kernel function taking one pointer per buffer; (fn, ctx, outputs, inputs)."""
        name = f"kernel_{len(self.kernels)}_" + re.sub(r"[^A-Za-z0-9_]", "_", inst.name)
        fn_type = llvm_ir.FunctionType(llvm_ir.VoidType(),
                                       [PTR] * (len(out_slots) + len(in_slots)))
        fn = llvm_ir.Function(self.llvm, fn_type, name)
        fn.attributes.add("nounwind")
        if not set(out_slots) & set(in_slots):
            for arg in fn.args:
                arg.add_attribute("noalias")
        ctx = cuda_scalar_context(llvm_ir.IRBuilder(fn.append_basic_block("entry")),
                                  self.llvm)
        self.kernels.append(PtxKernel(name, inst.name, "", (0, 0, 0), (0, 0, 0),
                                      _source_lines(inst)))
        self._kernel_slots = (out_slots, in_slots)
        return fn, ctx, list(fn.args[:len(out_slots)]), list(fn.args[len(out_slots):])

    def finish(self, fn, ctx, inst: Instruction, kind: str, grid, block: int) -> Launch:
        """Close the kernel, mark it as one (with its block size) and describe its launch."""
        ctx.builder.ret_void()
        for key, value in (("kernel", 1), ("maxntidx", block)):
            self._annotations.add(self.llvm.add_metadata(
                [fn, llvm_ir.MetaDataString(self.llvm, key), llvm_ir.Constant(I32, value)]))
        kernel = self.kernels[-1]
        kernel.kind, kernel.grid, kernel.block = kind, tuple(grid), (block, 1, 1)
        out_slots, in_slots = self._kernel_slots
        return Launch(kernel.name, tuple(out_slots) + tuple(in_slots), tuple(grid),
                      (block, 1, 1))


# How each op runs on a GPU: `rule(lowering, inst)` gives the program steps for it. The
# kernels share the CPU's elemental and scalar rules; loops and branches run on the host.
PTX_LOWERING: dict = {
    **{op: PtxLowering.kernel_steps for op in ELEMENTAL_OPCODES},
    **{op: PtxLowering.no_steps for op in NO_KERNEL},
    Opcode.FUSION: PtxLowering.kernel_steps,
    Opcode.SCATTER: PtxLowering.kernel_steps,
    Opcode.SELECT_AND_SCATTER: PtxLowering.kernel_steps,
    Opcode.CALL: PtxLowering.call,
    Opcode.WHILE: PtxLowering.loop,
    Opcode.CONDITIONAL: PtxLowering.branch,
    Opcode.CUSTOM_CALL: Unsupported("custom calls are replaced by IR in the "
                                    "lower-custom-calls pass, before codegen; LAPACK calls "
                                    "run on the host"),
    Opcode.CHOLESKY: Unsupported("runs on the host (LAPACK)"),
    Opcode.TRIANGULAR_SOLVE: Unsupported("runs on the host (LAPACK)"),
    Opcode.CONVOLUTION: Unsupported("rewritten to pads, slices and a dot by the "
                                    "lower-convolution pass, before codegen"),
    Opcode.SORT: sort_steps,
    Opcode.TOPK: sort_steps,
}


def _source_lines(inst: Instruction) -> list[str]:
    insts = inst.calls["calls"].instructions if inst.opcode == "fusion" else [inst]
    lines: list[str] = []
    for i in insts:
        if i.source_line and i.source_line not in lines:
            lines.append(i.source_line)
    return lines


def compile_ptx(module: Module, arch: str = DEFAULT_ARCH) -> PtxProgram:
    """PTX for a fused, buffer-planned module: kernels, launch program and buffer plan."""
    timings = {}
    start = time.perf_counter()
    lowering = PtxLowering(module, arch)
    steps = lowering.program(module.entry)
    text = str(lowering.llvm)
    timings["llvm_ir"] = time.perf_counter() - start
    start = time.perf_counter()
    ptx, optimized = compile_to_ptx(text, arch, [k.name for k in lowering.kernels])
    timings["ptx"] = time.perf_counter() - start
    return PtxProgram(module.name, arch, ptx, lowering.kernels, steps, lowering.plan, text,
                      optimized, timings)


def ptx_for_module(module: Module, arch: str = DEFAULT_ARCH) -> str:
    """The PTX text of a module (what `flowjit dump --stage ptx` prints)."""
    return compile_ptx(module, arch).ptx
