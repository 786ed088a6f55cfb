"""Executables, buffers and the slot table that runs compiled modules on the host."""
from runtime.executable import BufferPlan, Executable, compile_module, plan_buffers

__all__ = ["BufferPlan", "Executable", "compile_module", "plan_buffers"]
