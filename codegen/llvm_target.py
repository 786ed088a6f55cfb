"""LLVM for this machine, with nothing but llvmlite: the target machine, the optimization
pipeline and object code.

It imports no other flowjit module so that a compile worker process
(`flowjit.codegen.llvm_worker`) can load it in a fraction of the time the whole package takes.
"""
from __future__ import annotations

import functools
import time
from typing import Optional

import llvmlite.binding as llvm


@functools.lru_cache(maxsize=1)
def initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def host_target_machine() -> llvm.TargetMachine:
    """A new target machine for this CPU and its features (AVX-512 where present).

    A new one each time: an MCJIT engine takes ownership of the machine it is given."""
    initialize()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


def optimize(module_ref: llvm.ModuleRef, tm: llvm.TargetMachine, level: int = 3) -> None:
    """Run LLVM's O`level` pipeline (new pass manager) with loop and SLP vectorization."""
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    options.loop_vectorization = True
    options.slp_vectorization = True
    builder = llvm.create_pass_builder(tm, options)
    manager = builder.getModulePassManager()
    manager.run(module_ref, builder)


def object_code(text: str, opt_level: int, timings: Optional[dict] = None) -> bytes:
    """Parse, verify and optimize LLVM IR text; its object code for this machine."""
    start = time.perf_counter()
    # A context of its own: types and constants uniqued in LLVM's global context are never
    # freed, so every module parsed there would grow the process for good.
    module_ref = llvm.parse_assembly(text, context=llvm.create_context())
    module_ref.verify()
    parsed = time.perf_counter()
    tm = host_target_machine()
    if opt_level:
        optimize(module_ref, tm, opt_level)
    optimized = time.perf_counter()
    obj = tm.emit_object(module_ref)
    if timings is not None:
        timings["llvm_parse"] = parsed - start
        timings["llvm_optimize"] = optimized - parsed
        timings["machine_code"] = time.perf_counter() - optimized
    return obj
