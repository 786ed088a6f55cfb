"""Lowering of fused, scheduled modules to LLVM IR and machine code for the host CPU."""
from codegen.cpu import (MachineCode, compile_jobs, compile_llvm_ir, host_data_layout,
                         host_target_description, host_triple, start_compile_workers)
from codegen.kernels import NO_KERNEL, KernelInfo, ModuleLowering

__all__ = ["KernelInfo", "MachineCode", "ModuleLowering", "NO_KERNEL", "compile_jobs",
           "compile_llvm_ir", "host_data_layout", "host_target_description", "host_triple",
           "start_compile_workers"]
