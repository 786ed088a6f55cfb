"""Executables, buffers and the slot table that runs compiled modules on the host."""
from ir.buffers import BufferPlan, plan_buffers
from runtime.executable import Executable, compile_module

__all__ = ["BufferPlan", "Executable", "compile_module", "plan_buffers"]
