"""The host CPU target: LLVM optimization for this machine's real features, machine code."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import llvmlite.binding as llvm

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    # Kernels call libm (tanhf, erff, expm1, ...): make its symbols visible to the JIT.
    libm = ctypes.util.find_library("m")
    if libm:
        llvm.load_library_permanently(libm)


def host_target_machine() -> llvm.TargetMachine:
    """A new target machine for this CPU and its features (AVX-512 where present).

    A new one each time: an MCJIT engine takes ownership of the machine it is given."""
    _initialize()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


@functools.lru_cache(maxsize=1)
def host_triple() -> str:
    _initialize()
    return llvm.get_process_triple()


@functools.lru_cache(maxsize=1)
def host_data_layout() -> str:
    # Computed once: asking a target machine for its TargetData twice aborts in llvmlite.
    return str(host_target_machine().target_data)


@dataclass
class MachineCode:
    """A JIT-compiled LLVM module kept alive, with the address of its `entry`."""

    engine: object
    entry_address: int
    optimized_ir: str
    timings: dict = field(default_factory=dict)


def optimize(module_ref: llvm.ModuleRef, tm: llvm.TargetMachine, level: int = 3) -> None:
    """Run LLVM's O`level` pipeline (new pass manager) with loop and SLP vectorization."""
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    options.loop_vectorization = True
    options.slp_vectorization = True
    builder = llvm.create_pass_builder(tm, options)
    manager = builder.getModulePassManager()
    manager.run(module_ref, builder)


@functools.lru_cache(maxsize=1)
def host_target_description() -> str:
    """Everything about this machine that changes the machine code (a cache key part)."""
    _initialize()
    return " ".join([llvm.get_process_triple(), llvm.get_host_cpu_name(),
                     llvm.get_host_cpu_features().flatten(), str(llvm.llvm_version_info)])


def compile_llvm_ir(text: str, opt_level: int = 3, object_code: Optional[bytes] = None,
                    save_object: Optional[Callable[[bytes], None]] = None) -> MachineCode:
    """Parse, verify, optimize and JIT-compile LLVM IR text; returns the entry address.

    With `object_code` (from a cache) LLVM's optimization and code generation are skipped;
    `save_object` receives the object code that was generated otherwise."""
    _initialize()
    timings = {}
    with _lock:
        start = time.perf_counter()
        module_ref = llvm.parse_assembly(text)
        module_ref.verify()
        timings["llvm_parse"] = time.perf_counter() - start
        start = time.perf_counter()
        tm = host_target_machine()
        if opt_level and object_code is None:
            optimize(module_ref, tm, opt_level)
        timings["llvm_optimize"] = time.perf_counter() - start
        start = time.perf_counter()
        engine = llvm.create_mcjit_compiler(module_ref, tm)
        if object_code is not None or save_object is not None:
            def notify(_module, buffer: bytes) -> None:
                if save_object is not None and object_code is None:
                    save_object(bytes(buffer))
            engine.set_object_cache(notify, lambda _module: object_code)
        engine.finalize_object()
        address = engine.get_function_address("entry")
        timings["machine_code"] = time.perf_counter() - start
    return MachineCode(engine, address, str(module_ref), timings)
