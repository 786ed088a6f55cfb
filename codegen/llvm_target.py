"""LLVM for this machine, with nothing but llvmlite: the target machine, the optimization
pipeline and object code.

It imports no other flowjit module so that a compile worker process
(`flowjit.codegen.llvm_worker`) can load it in a fraction of the time the whole package takes.
"""
from __future__ import annotations

import functools
import os
import time
from typing import Optional

import llvmlite.binding as llvm


@functools.lru_cache(maxsize=1)
def initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


# Feature sets code can be built for, besides "host" (all this CPU has). Each only takes
# features away, so its code runs on this machine: "avx2" is what an AVX2-only CPU (most
# AMD EPYCs before Zen 4, Intel client chips) runs, with 256-bit vectors at most.
_WITHOUT = {"avx2": ("avx512", "avx10", "evex512", "amx")}
CPU_FEATURE_SETS = ("host",) + tuple(_WITHOUT)


def _checked(name: str, source: str = "CPU feature set ") -> str:
    if name not in CPU_FEATURE_SETS:
        raise ValueError(f"{source}{name!r} is not one flowjit knows (known: "
                         f"{', '.join(CPU_FEATURE_SETS)})")
    return name


_selected = _checked(os.environ.get("FLOWJIT_CPU_FEATURES", "").strip().lower() or "host",
                     "FLOWJIT_CPU_FEATURES=")


def select_cpu_features(name: str) -> None:
    """Build code from now on for feature set `name` ("host" or "avx2"), process-wide."""
    global _selected
    _selected = _checked(name.strip().lower() or "host")


def selected_cpu_features() -> str:
    """The feature set code is built for now (FLOWJIT_CPU_FEATURES sets it at start)."""
    return _selected


@functools.lru_cache(maxsize=None)
def target_features(name: str) -> str:
    """The LLVM feature string of feature set `name` on this machine: the host's features
    with those the set leaves out turned off ("-avx512f,...")."""
    initialize()
    features = llvm.get_host_cpu_features()
    for feature in list(features):
        if feature.startswith(_WITHOUT.get(_checked(name), ())):
            features[feature] = False
    return features.flatten()


def host_target_machine(features: Optional[str] = None) -> llvm.TargetMachine:
    """A new target machine for this CPU with `features` (an LLVM feature string; default:
    those of the selected feature set).

    A new one each time: an MCJIT engine takes ownership of the machine it is given."""
    initialize()
    if features is None:
        features = target_features(selected_cpu_features())
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=features,
                                        opt=3, codemodel="jitdefault")


def optimize(module_ref: llvm.ModuleRef, tm: llvm.TargetMachine, level: int = 3) -> None:
    """Run LLVM's O`level` pipeline (new pass manager) with loop and SLP vectorization."""
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    options.loop_vectorization = True
    options.slp_vectorization = True
    builder = llvm.create_pass_builder(tm, options)
    manager = builder.getModulePassManager()
    manager.run(module_ref, builder)


def object_code(text: str, opt_level: int, timings: Optional[dict] = None,
                features: Optional[str] = None) -> bytes:
    """Parse, verify and optimize LLVM IR text; its object code for this machine with
    `features` (see `host_target_machine`)."""
    start = time.perf_counter()
    # A context of its own: types and constants uniqued in LLVM's global context are never
    # freed, so every module parsed there would grow the process for good.
    module_ref = llvm.parse_assembly(text, context=llvm.create_context())
    module_ref.verify()
    parsed = time.perf_counter()
    tm = host_target_machine(features)
    if opt_level:
        optimize(module_ref, tm, opt_level)
    optimized = time.perf_counter()
    obj = tm.emit_object(module_ref)
    if timings is not None:
        timings["llvm_parse"] = parsed - start
        timings["llvm_optimize"] = optimized - parsed
        timings["machine_code"] = time.perf_counter() - optimized
    return obj
