"""Lowering of fused, scheduled modules to LLVM IR and machine code for the host CPU."""
from codegen.cpu import (MachineCode, compile_llvm_ir, host_data_layout,
                         host_target_description, host_triple)
from codegen.kernels import NO_KERNEL, KernelInfo, ModuleLowering

__all__ = ["MachineCode", "compile_llvm_ir", "host_target_description", "host_data_layout", "host_triple", "NO_KERNEL",
           "KernelInfo", "ModuleLowering"]
