"""The CUDA target: the same fused modules lowered to PTX through LLVM's NVPTX backend.

Every kernel of the CPU path becomes a GPU kernel: a grid-stride loop over the output's
elements, each thread computing `value(root, index)` with the shared elemental and scalar
emitters. Math NVPTX cannot lower (exp, log, sin, ... of f64; erf, expm1, ...) calls
libdevice (`__nv_*`), linked from the CUDA toolkit. `sm_80` by default, `sm_90` selectable.
Not yet: row reductions with warp shuffles, tiled dot, scatter, while/conditional on device.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import llvmlite.binding as llvm
from llvmlite import ir as llvm_ir

from codegen.control import for_range
from codegen.elemental import ConstantPool, ElementalEmitter, delinearize, is_elemental
from codegen.kernels import NO_KERNEL, _no_parameters
from codegen.scalar_ops import ScalarContext, to_memory
from codegen.types import I32, I64, PTR, i64, memory_type
from ir.module import Instruction, Module
from ir.shapes import leaves

TRIPLE = "nvptx64-nvidia-cuda"
DATA_LAYOUT = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"
LIBDEVICE_PATHS = ["/usr/local/cuda/nvvm/libdevice/libdevice.10.bc"]


@dataclass
class PtxKernel:
    name: str
    instruction: Instruction
    elements: int


@dataclass
class PtxProgram:
    """PTX text and the kernels in launch order (one thread per output element)."""

    ptx: str
    arch: str
    kernels: list[PtxKernel] = field(default_factory=list)


def libdevice_path() -> str:
    candidates = [os.environ.get("FLOWJIT_LIBDEVICE", "")] + LIBDEVICE_PATHS
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home:
        candidates.append(os.path.join(cuda_home, "nvvm", "libdevice", "libdevice.10.bc"))
    for path in candidates:
        if path and os.path.exists(path):
            return path
    raise FileNotFoundError("libdevice.10.bc not found: set CUDA_HOME or FLOWJIT_LIBDEVICE")


@functools.lru_cache(maxsize=1)
def _initialize() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


def _special_register(builder: llvm_ir.IRBuilder, module: llvm_ir.Module, name: str):
    fn = module.globals.get(f"llvm.nvvm.read.ptx.sreg.{name}")
    if fn is None:
        fn = llvm_ir.Function(module, llvm_ir.FunctionType(I32, []),
                              f"llvm.nvvm.read.ptx.sreg.{name}")
    return builder.zext(builder.call(fn, []), I64)


def _emit_kernel(module: llvm_ir.Module, constants: ConstantPool, inst: Instruction,
                 name: str) -> llvm_ir.Function:
    outputs = leaves(inst.shape)
    operands = list(inst.operands)
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(
        llvm_ir.VoidType(), [PTR] * (len(outputs) + len(operands))), name)
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    ctx = ScalarContext(b, module, target="cuda")
    out_ptrs, in_ptrs = fn.args[:len(outputs)], fn.args[len(outputs):]
    if inst.opcode == "fusion":
        comp = inst.calls["calls"]
        root = comp.root
        buffers = {id(p): in_ptrs[p.attrs["number"]] for p in comp.parameters}
    elif is_elemental(inst):
        root = inst
        buffers = {id(o): p for o, p in zip(operands, in_ptrs)}
    else:
        raise NotImplementedError(f"the CUDA backend cannot run '{inst.opcode}' yet")
    dims = outputs[0].dims
    if len({o.dims for o in outputs}) > 1:
        raise NotImplementedError("multi-output kernels of different shapes on CUDA")
    total = max(1, outputs[0].size) if outputs[0].size else 0
    thread = b.add(b.mul(_special_register(b, module, "ctaid.x"),
                         _special_register(b, module, "ntid.x")),
                   _special_register(b, module, "tid.x"))
    stride = b.mul(_special_register(b, module, "nctaid.x"),
                   _special_register(b, module, "ntid.x"))
    # Grid-stride loop: iteration k handles element thread + k * stride.
    count = b.udiv(b.add(b.sub(i64(total), thread), b.sub(stride, i64(1))), stride)
    count = b.select(b.icmp_signed("<", thread, i64(total)), count, i64(0))
    with for_range(b, count, "grid") as k:
        linear = b.add(thread, b.mul(k, stride))
        index = delinearize(b, linear, dims)
        emitter = ElementalEmitter(ctx, _no_parameters, constants, buffers)
        value = emitter.value(root, index)
        values = value if isinstance(value, list) else [value]
        for out_ptr, shape, v in zip(out_ptrs, outputs, values):
            address = b.gep(out_ptr, [linear], inbounds=True,
                            source_etype=memory_type(shape.dtype))
            b.store(to_memory(ctx, v, shape.dtype), address)
    b.ret_void()
    module.add_named_metadata("nvvm.annotations", [fn, "kernel", llvm_ir.Constant(I32, 1)])
    return fn


def lower_to_nvvm(module: Module) -> tuple[llvm_ir.Module, list[PtxKernel]]:
    """LLVM IR (NVVM flavour) with one kernel per computing entry instruction."""
    llvm_module = llvm_ir.Module(name=module.name)
    llvm_module.triple = TRIPLE
    llvm_module.data_layout = DATA_LAYOUT
    constants = ConstantPool(llvm_module)
    kernels = []
    for inst in module.entry.instructions:
        if inst.opcode in NO_KERNEL:
            continue
        name = f"kernel_{len(kernels)}_{inst.name.replace('.', '_')}"
        _emit_kernel(llvm_module, constants, inst, name)
        kernels.append(PtxKernel(name, inst, leaves(inst.shape)[0].size))
    return llvm_module, kernels


def compile_ptx(module: Module, arch: str = "sm_80") -> PtxProgram:
    """PTX for a fused, scheduled module (libdevice linked, optimized for `arch`)."""
    _initialize()
    llvm_module, kernels = lower_to_nvvm(module)
    ref = llvm.parse_assembly(str(llvm_module))
    if any(f.name.startswith("__nv_") for f in ref.functions):
        with open(libdevice_path(), "rb") as f:
            libdevice = llvm.parse_bitcode(f.read())
        libdevice.triple = TRIPLE
        libdevice.data_layout = DATA_LAYOUT
        ref.link_in(libdevice)
        kernel_names = {k.name for k in kernels}
        for function in ref.functions:   # so the optimizer drops what no kernel calls
            if not function.is_declaration and function.name not in kernel_names:
                function.linkage = "internal"
    ref.verify()
    target = llvm.Target.from_triple(TRIPLE)
    tm = target.create_target_machine(cpu=arch, opt=3)
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    builder = llvm.create_pass_builder(tm, options)
    builder.getModulePassManager().run(ref, builder)
    return PtxProgram(tm.emit_assembly(ref), arch, kernels)


def ptx_for_module(module: Module, arch: str = "sm_80") -> str:
    """The PTX text of a module (what `flowjit dump --stage ptx` prints)."""
    return compile_ptx(module, arch).ptx
