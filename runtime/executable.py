"""Executables: a compiled module, its buffer plan, and a call that runs it on numpy arrays.

The plan gives every array value of the entry computation a *slot*: the caller's arrays for
parameters, literals for constants, fresh arrays for outputs, and offsets in one arena for
temporaries (values whose lifetimes don't overlap share arena bytes). One ctypes call runs
the whole module: the LLVM `entry` function reads the slot table and calls every kernel.
"""
from __future__ import annotations

import ctypes
import platform
import sys
import threading
import time
from typing import Optional

import numpy as np

from flowjit.codegen import (ModuleLowering, compile_jobs, compile_llvm_ir, host_data_layout,
                             host_target_description, host_triple, start_compile_workers)
from flowjit.codegen.cpu import unpack_objects
from flowjit.runtime import disk_cache
from flowjit.ir.buffers import ALIGN, flatten_slots, plan_buffers
from flowjit.ir.module import Instruction, Module


# Outputs this large are kept after a call and written again by the next call once the
# caller has dropped them (as JAX's and PyTorch's allocators keep freed buffers).
REUSE_OUTPUTS_FROM = 1 << 18

# LLVM instructions (before optimization) above which compiling in parallel pays for the
# fork of a compiler process (a few milliseconds).
PARALLEL_COMPILE_SIZE = 200


class Executable:
    """A module compiled for the host CPU. Call it with numpy arrays, one per parameter."""

    def __init__(self, module: Module, llvm_opt_level: int = 3, profile: bool = False):
        timings = {}
        start = time.perf_counter()
        start_compile_workers()   # they start up while we lower the module
        self.module = module
        self.plan, self._trees = plan_buffers(module)
        external = set(self.plan.inputs) | set(self.plan.constants)
        seen: set[int] = set()
        self._fresh_outputs = []   # per output leaf: computed straight into a fresh array?
        for slot in self.plan.outputs:
            self._fresh_outputs.append(slot not in external and slot not in seen)
            seen.add(slot)
        self._all_fresh = all(self._fresh_outputs)
        # The caller's arrays and fresh outputs go into the table as objects (their id);
        # `entry` reads each one's data pointer itself.
        self._boxed = DATA_OFFSET is not None
        boxed = (set(self.plan.inputs) | {s for s, fresh in zip(self.plan.outputs,
                                                                 self._fresh_outputs) if fresh}
                 if self._boxed else set())
        lowering = ModuleLowering(module, self._slots_of, self.plan.num_slots, host_triple(),
                                  host_data_layout(), frozenset(boxed), DATA_OFFSET or 0,
                                  profile=profile)
        self.llvm_ir = str(lowering.lower())
        self.kernels = lowering.kernels
        # Profile mode: the program adds ns and calls per step into this (one more slot).
        self.profile_sites = lowering.timer.sites if profile else None
        self.profile_counters = (np.zeros(2 * len(self.profile_sites), np.int64)
                                 if profile else None)
        # A large module is compiled as several LLVM modules at once, one per core.
        parts = lowering.split(compile_jobs() if lowering.size() >= PARALLEL_COMPILE_SIZE
                               else 1)
        timings["llvm_ir"] = time.perf_counter() - start
        key = disk_cache.cache_key(
            self.llvm_ir, f"{host_target_description()} O{llvm_opt_level} parts={len(parts)}")
        cached = disk_cache.load(key)
        if cached is not None and unpack_objects(cached, len(parts)) is None:
            cached = None   # the right key but not the parts this module has: rebuild
        code = compile_llvm_ir(parts, llvm_opt_level, object_code=cached,
                               save_object=lambda obj: disk_cache.store(key, obj))
        self.from_disk_cache = cached is not None
        timings.update(code.timings)
        self.timings = timings
        self._code = code  # keeps the JIT engine (and the machine code) alive
        self._entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(code.entry_address)
        self._lock = threading.Lock()
        self._arena = np.empty(self.plan.arena_size + ALIGN, dtype=np.uint8)
        arena_base = self._arena.ctypes.data
        arena_base += (-arena_base) % ALIGN
        self._table = (ctypes.c_void_p * max(self.plan.num_slots + bool(profile), 1))()
        if profile:
            self._table[self.plan.num_slots] = self.profile_counters.ctypes.data
        for slot, array in self.plan.constants.items():
            self._table[slot] = array.ctypes.data
        for slot, offset in self.plan.arena_offsets.items():
            self._table[slot] = arena_base + offset
        self._param_shapes = [p.shape for p in module.entry.parameters]
        self._param_types = [(s.dims, s.dtype.to_numpy()) for s in self._param_shapes]
        self._output_types = [(self.plan.shapes[s].dims, self.plan.shapes[s].dtype.to_numpy())
                              for s in self.plan.outputs]
        self._table_address = ctypes.addressof(self._table)
        self.array_type = np.ndarray   # what fresh outputs are made as (the front end's Array)
        self._spares: list[list[np.ndarray]] = [[] for _ in self.plan.outputs]

    @property
    def optimized_llvm_ir(self) -> str:
        return self._code.optimized_ir

    @property
    def assembly(self) -> str:
        """The kernels' machine code as assembly text."""
        return self._code.assembly

    def _slots_of(self, inst: Instruction) -> list[int]:
        return flatten_slots(self._trees[id(inst)])

    def __call__(self, *args: np.ndarray) -> list[np.ndarray]:
        if len(args) != len(self._param_shapes):
            raise TypeError(f"{self.module.name} takes {len(self._param_shapes)} arrays, "
                            f"got {len(args)}")
        arrays = []
        for k, (arg, (dims, dtype)) in enumerate(zip(args, self._param_types)):
            if not (isinstance(arg, np.ndarray) and arg.dtype == dtype
                    and arg.flags.c_contiguous):
                arg = np.asarray(arg, dtype=dtype, order="C")
            if arg.shape != dims:
                raise ValueError(f"argument {k} has shape {arg.shape}, expected {dims}")
            arrays.append(arg)
        plan = self.plan
        address = id if self._boxed else _address   # `arrays` keeps every object alive
        make = self.array_type
        outputs: list[Optional[np.ndarray]] = []
        with self._lock:
            table = self._table
            for slot, array in zip(plan.inputs, arrays):
                table[slot] = address(array)
            spares = self._spares
            for k, (slot, fresh, (dims, dtype)) in enumerate(zip(
                    plan.outputs, self._fresh_outputs, self._output_types)):
                if fresh:
                    out = _released(spares[k], make)
                    if out is None:
                        out = make(dims, dtype)
                        if out.nbytes >= REUSE_OUTPUTS_FROM:
                            spares[k] = (spares[k] + [out])[-2:]
                    table[slot] = address(out)
                    outputs.append(out)
                else:
                    outputs.append(None)
            self._entry(self._table_address)
            # Outputs that are parameters, constants or repeats are copies of their slot.
            if not self._all_fresh:
                made = {slot: out for slot, out in zip(plan.outputs, outputs)
                        if out is not None}
                for k, (slot, fresh) in enumerate(zip(plan.outputs, self._fresh_outputs)):
                    if not fresh:
                        value = made[slot] if slot in made else self._read_slot(slot, arrays)
                        outputs[k] = value.copy().view(make)
        return outputs

    def _read_slot(self, slot: int, arrays: list[np.ndarray]) -> np.ndarray:
        if slot in self.plan.inputs:
            return arrays[self.plan.inputs.index(slot)]
        if slot in self.plan.constants:
            return self.plan.constants[slot]
        shape = self.plan.shapes[slot]
        address = self._table[slot]
        buffer = (ctypes.c_uint8 * max(shape.nbytes, 1)).from_address(address)
        return np.frombuffer(buffer, dtype=shape.dtype.to_numpy(),
                             count=shape.size).reshape(shape.dims)


def compile_module(module: Module, llvm_opt_level: int = 3,
                   profile: bool = False) -> Executable:
    """Compile a (fused, scheduled) module for the host CPU (with `profile`, a program that
    times each of its steps: see `profile_run`)."""
    return Executable(module, llvm_opt_level, profile)


def profile_run(executable: Executable, args: list, runs: int = 10):
    """Run a profiling executable `runs` times after one warm-up run; the time per step."""
    from flowjit.codegen.profile import report
    if executable.profile_counters is None:
        raise ValueError("this executable was not compiled with profile=True")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a whole number of at least 1, got {runs!r}")
    executable(*args)
    executable.profile_counters[:] = 0
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        executable(*args)
        times.append(time.perf_counter() - start)
    return report(executable.profile_sites, executable.profile_counters.copy(), runs,
                  sum(times) / runs)


def _released(spares: list[np.ndarray], array_type: type) -> Optional[np.ndarray]:
    """A kept output the caller has let go of (only `spares` refers to it), or None.

    Two are kept per output, so `y = f(x)` in a loop, which holds the last result while the
    next is computed, alternates between them. A fresh large array costs a page fault per
    4 KiB on its first write: ~1.5 ms per 16 MiB on the machine where this was measured."""
    for out in spares:
        # The references: `spares`, `out`, and getrefcount's own argument.
        if sys.getrefcount(out) == 3 and type(out) is array_type:
            return out
    return None


def _data_offset() -> Optional[int]:
    """Where a numpy array object keeps its data pointer (`PyArrayObject.data`, right after
    the object header), checked on real arrays; None where that does not hold (another
    Python implementation), and the runtime passes addresses instead."""
    if platform.python_implementation() != "CPython":
        return None
    probes = [np.empty(n, dtype) for n, dtype in ((3, np.float32), (1, np.int8), (0, np.float64))]
    probes.append(np.arange(10.0)[2:])   # a view: data is not the allocation's start
    for offset in (2 * ctypes.sizeof(ctypes.c_void_p), 4 * ctypes.sizeof(ctypes.c_void_p)):
        if all(ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data
               for a in probes if a.size):
            return offset
    return None


DATA_OFFSET = _data_offset()


def _address(array: np.ndarray) -> int:
    """The data pointer of an array (cheaper than array.ctypes.data)."""
    return array.__array_interface__["data"][0]
