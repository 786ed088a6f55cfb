"""Executables, buffers and the slot table that runs compiled modules on the host."""
from flowjit.ir.buffers import BufferPlan, plan_buffers
from flowjit.runtime.executable import Executable, compile_module

__all__ = ["BufferPlan", "Executable", "compile_module", "plan_buffers"]
