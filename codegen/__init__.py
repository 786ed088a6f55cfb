"""Lowering of fused, scheduled modules to LLVM IR and machine code for the host CPU.

The names below load on first use (PEP 562): a compile worker imports only
`flowjit.codegen.llvm_target` and llvmlite.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "MachineCode": "flowjit.codegen.cpu",
    "compile_jobs": "flowjit.codegen.cpu",
    "compile_llvm_ir": "flowjit.codegen.cpu",
    "host_data_layout": "flowjit.codegen.cpu",
    "host_target_description": "flowjit.codegen.cpu",
    "host_triple": "flowjit.codegen.cpu",
    "start_compile_workers": "flowjit.codegen.cpu",
    "NO_KERNEL": "flowjit.codegen.kernels",
    "KernelInfo": "flowjit.codegen.kernels",
    "ModuleLowering": "flowjit.codegen.kernels",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'flowjit.codegen' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
