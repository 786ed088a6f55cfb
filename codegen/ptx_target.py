"""The NVPTX target: thread-index intrinsics, warp shuffles, barriers, shared memory, libdevice
math, and LLVM IR → optimized PTX text (LLVM's NVPTX backend, through llvmlite)."""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Iterator

import llvmlite.binding as llvm
from llvmlite import ir as llvm_ir

from flowjit.codegen.scalar_ops import ScalarContext
from flowjit.codegen.llvm_types import I32, I64

TRIPLE = "nvptx64-nvidia-cuda"
ARCHES = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90")
WARP = 32
_FULL_MASK = llvm_ir.Constant(I32, -1)
_lock = threading.Lock()


def cuda_scalar_context(builder: llvm_ir.IRBuilder, module: llvm_ir.Module) -> ScalarContext:
    """The shared scalar rules for CUDA: transcendental math calls libdevice (`__nv_*`)."""
    return ScalarContext(builder, module, inline_math=False, target="cuda")


# --- thread geometry, barriers and shuffles ----------------------------------------------

def special_register(ctx: ScalarContext, name: str) -> llvm_ir.Value:
    """`%tid.x`, `%ctaid.x`, `%ntid.x`, `%nctaid.x`, ... as i32."""
    fn = ctx.declare(f"llvm.nvvm.read.ptx.sreg.{name}", I32, [])
    return ctx.builder.call(fn, [], name=name.replace(".", "_"))


def barrier(ctx: ScalarContext) -> None:
    """`bar.sync 0`: every thread of the block waits here."""
    ctx.builder.call(ctx.declare("llvm.nvvm.barrier0", llvm_ir.VoidType(), []), [])


def _to_words(b: llvm_ir.IRBuilder, value) -> tuple[list, object]:
    """`value` as a list of i32 words, and how to rebuild it."""
    t = value.type
    if isinstance(t, llvm_ir.IntType) and t.width <= 32:
        widened = b.zext(value, I32) if t.width < 32 else value
        return [widened], (lambda w: b.trunc(w[0], t) if t.width < 32 else w[0])
    if str(t) == "float":
        return [b.bitcast(value, I32)], (lambda w: b.bitcast(w[0], t))
    if str(t) == "half":
        bits = b.zext(b.bitcast(value, llvm_ir.IntType(16)), I32)
        return [bits], (lambda w: b.bitcast(b.trunc(w[0], llvm_ir.IntType(16)), t))
    bits = b.bitcast(value, I64) if str(t) == "double" else value
    low = b.trunc(bits, I32)
    high = b.trunc(b.lshr(bits, llvm_ir.Constant(I64, 32)), I32)

    def rebuild(w):
        joined = b.or_(b.zext(w[0], I64), b.shl(b.zext(w[1], I64), llvm_ir.Constant(I64, 32)))
        return b.bitcast(joined, t) if str(t) == "double" else joined
    return [low, high], rebuild


def shuffle(ctx: ScalarContext, mode: str, value, offset: int):
    """`shfl.sync.<mode>` (mode `down` or `bfly`) of a value of any register type."""
    b = ctx.builder
    fn = ctx.declare(f"llvm.nvvm.shfl.sync.{mode}.i32", I32, [I32, I32, I32, I32])
    words, rebuild = _to_words(b, value)
    clamp = llvm_ir.Constant(I32, WARP - 1)
    moved = [b.call(fn, [_FULL_MASK, w, llvm_ir.Constant(I32, offset), clamp]) for w in words]
    return rebuild(moved)


def shared_array(module: llvm_ir.Module, element: llvm_ir.Type, count: int,
                 name: str) -> llvm_ir.GlobalVariable:
    """A block-shared array (`.shared`, address space 3) of `count` elements."""
    array = llvm_ir.ArrayType(element, count)
    g = llvm_ir.GlobalVariable(module, array, module.get_unique_name(name), addrspace=3)
    g.initializer = llvm_ir.Constant(array, llvm_ir.Undefined)
    g.linkage = "internal"
    g.align = 16
    g.type = llvm_ir.PointerType(addrspace=3)  # opaque: llvmlite checks stores otherwise
    return g


def shared_element(b: llvm_ir.IRBuilder, array: llvm_ir.GlobalVariable, index):
    """Address of `array[index]` in shared memory."""
    return b.gep(array, [index], inbounds=True, source_etype=array.value_type.element)


def load_shared(b: llvm_ir.IRBuilder, array: llvm_ir.GlobalVariable, index):
    """`array[index]` from shared memory."""
    return b.load(shared_element(b, array, index), typ=array.value_type.element)


@contextlib.contextmanager
def strided_loop(b: llvm_ir.IRBuilder, start, count, step,
                 name: str = "i") -> Iterator[llvm_ir.Value]:
    """`for (i = start; i < count; i += step)` over i64 (unsigned compare)."""
    preheader = b.block
    header = b.append_basic_block(f"{name}.header")
    body = b.append_basic_block(f"{name}.body")
    exit_block = b.append_basic_block(f"{name}.exit")
    b.branch(header)
    b.position_at_end(header)
    index = b.phi(I64, name=name)
    index.add_incoming(start, preheader)
    b.cbranch(b.icmp_unsigned("<", index, count), body, exit_block)
    b.position_at_end(body)
    yield index
    index.add_incoming(b.add(index, step, flags=["nuw"]), b.block)
    b.branch(header)
    b.position_at_end(exit_block)


def delinearize_narrow(b: llvm_ir.IRBuilder, offset, dims: tuple, total: int) -> list:
    """Row-major multi-index (i64 values) of i64 `offset`; the divisions run in i32 when the
    array is small enough (64-bit division is many instructions on a GPU)."""
    narrow = total < 2 ** 31
    t = I32 if narrow else I64
    value = b.trunc(offset, I32) if narrow else offset
    significant = [d for d, size in enumerate(dims) if size != 1]
    index = []
    for d in reversed(range(len(dims))):
        size = dims[d]
        if size == 1:
            index.append(llvm_ir.Constant(I64, 0))
            continue
        if d == significant[0]:  # offset < total: the outermost index needs no remainder
            part = value
        else:
            part = b.urem(value, llvm_ir.Constant(t, size))
            value = b.udiv(value, llvm_ir.Constant(t, size))
        index.append(b.zext(part, I64) if narrow else part)
    return list(reversed(index))


# --- LLVM IR → PTX -----------------------------------------------------------------------

def arch_for(major: int, minor: int) -> str:
    """The newest arch in ARCHES a GPU of compute capability major.minor runs (the driver
    JIT-compiles PTX for newer GPUs)."""
    capability = 10 * major + minor
    fitting = [a for a in ARCHES if int(a[3:]) <= capability]
    if not fitting:
        raise ValueError(f"compute capability {major}.{minor} is older than {ARCHES[0]}")
    return fitting[-1]


@functools.lru_cache(maxsize=1)
def _initialize() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@functools.lru_cache(maxsize=None)
def target_machine(arch: str) -> llvm.TargetMachine:
    """The NVPTX target machine for `arch` (one per arch, reused)."""
    if arch not in ARCHES:
        raise ValueError(f"unsupported CUDA architecture {arch!r} (known: {', '.join(ARCHES)})")
    _initialize()
    target = llvm.Target.from_triple(TRIPLE)
    return target.create_target_machine(cpu=arch, opt=3)


@functools.lru_cache(maxsize=None)
def data_layout(arch: str) -> str:
    # Asked once per machine: asking a target machine for its TargetData twice aborts.
    return str(target_machine(arch).target_data)


def libdevice_path() -> str:
    """libdevice.10.bc: $FLOWJIT_LIBDEVICE, else under $CUDA_HOME, else /usr/local/cuda."""
    candidates = [os.environ.get("FLOWJIT_LIBDEVICE", "")]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "nvvm", "libdevice", "libdevice.10.bc"))
    for path in candidates:
        if path and os.path.exists(path):
            return path
    raise FileNotFoundError("libdevice.10.bc not found (it comes with the CUDA toolkit): set "
                            "CUDA_HOME or FLOWJIT_LIBDEVICE")


@functools.lru_cache(maxsize=1)
def _libdevice_bytes() -> bytes:
    with open(libdevice_path(), "rb") as f:
        return f.read()


def compile_to_ptx(text: str, arch: str, kernels: list[str]) -> tuple[str, str]:
    """(PTX, optimized LLVM IR) of a module: libdevice linked where `__nv_*` is called,
    everything but the kernels internalized, LLVM O3, NVPTX code generation."""
    _initialize()
    with _lock:
        module = llvm.parse_assembly(text)
        module.verify()
        if any(f.name.startswith("__nv_") for f in module.functions if f.is_declaration):
            library = llvm.parse_bitcode(_libdevice_bytes())
            library.triple = TRIPLE
            library.data_layout = data_layout(arch)
            module.link_in(library)
        keep = set(kernels)
        for fn in module.functions:
            if not fn.is_declaration and fn.name not in keep:
                fn.linkage = "internal"
        tm = target_machine(arch)
        options = llvm.create_pipeline_tuning_options(speed_level=3)
        builder = llvm.create_pass_builder(tm, options)
        builder.getModulePassManager().run(module, builder)
        return tm.emit_assembly(module), str(module)
