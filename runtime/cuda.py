"""CUDA devices through pycuda: device list, transfers, PTX modules, and the executable that
runs a compiled program (codegen.ptx) on one GPU.

Importing this module never needs pycuda or a GPU; using a CUDA device without them raises
CudaUnavailableError, which says what is missing. Buffers follow the CPU's plan: constants
and an arena of temporaries live on the device for the executable's life, inputs are copied
there per call (or passed as DeviceArrays), outputs are fresh device arrays. The program
interpreter talks to a small Backend interface, so tests run it on an emulated device.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from typing import Optional, Protocol, Sequence, Union

import numpy as np

from flowjit.codegen.ptx import Branch, CopySlots, Launch, Loop, PtxProgram, compile_ptx
from flowjit.codegen.ptx_target import arch_for
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import FlowjitError
from flowjit.ir.module import Module


class CudaUnavailableError(FlowjitError, RuntimeError):
    """CUDA was asked for, but pycuda, the driver or a GPU is missing."""


@functools.lru_cache(maxsize=1)
def _driver():
    """pycuda.driver, initialized, once there is at least one device."""
    try:
        import pycuda.driver as driver
    except ImportError:
        raise CudaUnavailableError(
            "CUDA was requested but pycuda is not installed: pip install pycuda (it builds "
            "against the CUDA toolkit headers)") from None
    try:
        driver.init()
        count = driver.Device.count()
    except Exception as e:  # no libcuda, no kernel driver
        raise CudaUnavailableError(f"CUDA was requested but the CUDA driver failed to "
                                   f"initialize ({e}): is an NVIDIA driver installed?") from None
    if count == 0:
        raise CudaUnavailableError("CUDA was requested but no CUDA device is present "
                                   "(the driver reports 0 GPUs)")
    return driver


def cuda_device_count() -> int:
    """How many CUDA devices there are (0 without pycuda, a driver or a GPU)."""
    try:
        return _driver().Device.count()
    except CudaUnavailableError:
        return 0


def available_devices() -> list[str]:
    """["cpu:0"] plus "cuda:N" for every GPU pycuda can see."""
    return ["cpu:0"] + [f"cuda:{n}" for n in range(cuda_device_count())]


def _ordinal(device: Union[str, int]) -> int:
    if isinstance(device, int):
        return device
    kind, _, number = str(device).partition(":")
    if kind != "cuda":
        raise ValueError(f"not a CUDA device: {device!r} (expected 'cuda' or 'cuda:N')")
    return int(number or 0)


# --- the backend interface and pycuda's implementation ------------------------------------

class Backend(Protocol):
    """What the program interpreter needs from a device; pointers are ints."""

    def allocate(self, nbytes: int) -> object: ...
    def pointer(self, allocation: object) -> int: ...
    def to_device(self, pointer: int, array: np.ndarray) -> None: ...
    def to_host(self, array: np.ndarray, pointer: int) -> None: ...
    def copy(self, target: int, source: int, nbytes: int) -> None: ...
    def load(self, program: PtxProgram) -> None: ...
    def launch(self, kernel: str, grid, block, pointers: Sequence[int]) -> None: ...
    def synchronize(self) -> None: ...


class CudaDevice:
    """One GPU and its primary context, as a Backend."""

    def __init__(self, ordinal: int = 0):
        driver = _driver()
        if not 0 <= ordinal < driver.Device.count():
            raise CudaUnavailableError(f"no CUDA device cuda:{ordinal} (there are "
                                       f"{driver.Device.count()})")
        self.driver = driver
        self.ordinal = ordinal
        self.device = driver.Device(ordinal)
        self.context = self.device.retain_primary_context()
        self.functions: dict[str, object] = {}
        self._prepared: set[str] = set()
        self._modules: list[object] = []

    @property
    def arch(self) -> str:
        """The `sm_XY` to compile for (newer GPUs JIT-compile sm_90 PTX)."""
        return arch_for(*self.device.compute_capability())

    @contextlib.contextmanager
    def active(self):
        """Make this device's context current for the enclosed driver calls."""
        self.context.push()
        try:
            yield self
        finally:
            self.driver.Context.pop()

    def allocate(self, nbytes: int):
        return self.driver.mem_alloc(max(1, nbytes))

    def pointer(self, allocation) -> int:
        return int(allocation)

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        if array.nbytes:
            self.driver.memcpy_htod(pointer, np.ascontiguousarray(array))

    def to_host(self, array: np.ndarray, pointer: int) -> None:
        if array.nbytes:
            self.driver.memcpy_dtoh(array, pointer)

    def copy(self, target: int, source: int, nbytes: int) -> None:
        if nbytes:
            self.driver.memcpy_dtod(target, source, nbytes)

    def load(self, program: PtxProgram) -> None:
        module = self.driver.module_from_buffer(program.ptx.encode())
        self._modules.append(module)
        for name in program.kernel_names:
            self.functions[name] = module.get_function(name)

    def launch(self, kernel: str, grid, block, pointers: Sequence[int]) -> None:
        function = self.functions[kernel]
        if kernel not in self._prepared:
            function.prepare("P" * len(pointers))
            self._prepared.add(kernel)
        function.prepared_call(tuple(grid), tuple(block), *pointers)

    def synchronize(self) -> None:
        self.driver.Context.synchronize()


@functools.lru_cache(maxsize=None)
def get_device(device: Union[str, int] = "cuda:0") -> CudaDevice:
    """The CudaDevice for 'cuda:N' (one per GPU, shared)."""
    return CudaDevice(_ordinal(device))


def _activated(backend):
    return backend.active() if hasattr(backend, "active") else contextlib.nullcontext()


# --- arrays on a device ---------------------------------------------------------------------

class DeviceArray:
    """An array in device memory; `np.asarray(x)` (or `to_numpy`) copies it to the host."""

    def __init__(self, backend, allocation, dims: tuple, dtype):
        self.backend = backend
        self.allocation = allocation
        self.shape = tuple(dims)
        self.dtype = np.dtype(dtype)

    @property
    def pointer(self) -> int:
        return self.backend.pointer(self.allocation)

    def to_numpy(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        with _activated(self.backend):
            self.backend.to_host(out, self.pointer)
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self.to_numpy()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"DeviceArray({self.dtype}{list(self.shape)})"


def device_put(x, device: str = "cuda:0", backend=None):
    """`x` on `device`: a numpy array for 'cpu', a DeviceArray for 'cuda:N'."""
    if backend is None and str(device).startswith("cpu"):
        return np.asarray(x)
    backend = backend or get_device(device)
    array = np.ascontiguousarray(x)
    with _activated(backend):
        allocation = backend.allocate(array.nbytes)
        backend.to_device(backend.pointer(allocation), array)
    return DeviceArray(backend, allocation, array.shape, array.dtype)


# --- executables ----------------------------------------------------------------------------

class CudaExecutable:
    """A module (or PtxProgram) loaded on one device; called like the CPU Executable."""

    def __init__(self, module: Union[Module, PtxProgram], device: Union[str, int] = "cuda:0",
                 arch: Optional[str] = None, backend=None):
        start = time.perf_counter()
        backend = backend or get_device(device)
        if isinstance(module, PtxProgram):
            program = module
        else:
            program = compile_ptx(module, arch or getattr(backend, "arch", "sm_80"))
        self.program, self.backend = program, backend
        self.timings = dict(program.timings)
        plan = program.plan
        self._keep: list[object] = []
        self._table: dict[int, int] = {}
        with _activated(backend):
            backend.load(program)
            for slot, array in plan.constants.items():
                self._table[slot] = self._upload(np.ascontiguousarray(array))
            arena = backend.allocate(plan.arena_size)
            self._keep.append(arena)
            for slot, offset in plan.arena_offsets.items():
                self._table[slot] = backend.pointer(arena) + offset
        external = set(plan.inputs) | set(plan.constants)
        seen: set[int] = set()
        self._fresh = []   # per output leaf: computed straight into a fresh array?
        for slot in plan.outputs:
            self._fresh.append(slot not in external and slot not in seen)
            seen.add(slot)
        self._lock = threading.Lock()
        self.timings["load"] = time.perf_counter() - start - sum(program.timings.values())

    def _upload(self, array: np.ndarray) -> int:
        allocation = self.backend.allocate(array.nbytes)
        self._keep.append(allocation)
        pointer = self.backend.pointer(allocation)
        self.backend.to_device(pointer, array)
        return pointer

    def __call__(self, *args) -> list[np.ndarray]:
        """Run on host (or device) arrays; returns host arrays, one per output leaf."""
        return [out.to_numpy() for out in self.run(*args)]

    def run(self, *args) -> list[DeviceArray]:
        """Run, leaving the outputs on the device."""
        plan, backend = self.program.plan, self.backend
        if len(args) != len(plan.inputs):
            raise TypeError(f"{self.program.name} takes {len(plan.inputs)} arrays, "
                            f"got {len(args)}")
        with self._lock, _activated(backend):
            table = dict(self._table)
            keep: list[object] = []
            for k, (arg, slot) in enumerate(zip(args, plan.inputs)):
                table[slot] = self._input(k, arg, plan.shapes[slot], keep)
            outputs = []
            for slot, fresh in zip(plan.outputs, self._fresh):
                shape = plan.shapes[slot]
                out = DeviceArray(backend, backend.allocate(shape.nbytes), shape.dims,
                                  shape.dtype.to_numpy())
                outputs.append(out)
                if fresh:
                    table[slot] = out.pointer
            run_steps(self.program.steps, backend, table, plan.shapes, keep)
            for out, slot, fresh in zip(outputs, plan.outputs, self._fresh):
                if not fresh:  # a parameter, a constant or a repeat: a copy of its slot
                    backend.copy(out.pointer, table[slot], plan.shapes[slot].nbytes)
            backend.synchronize()
        return outputs

    def _input(self, k: int, arg, shape, keep: list) -> int:
        if isinstance(arg, DeviceArray):
            if arg.shape != shape.dims or arg.dtype != shape.dtype.to_numpy():
                raise ValueError(f"argument {k} is {arg}, expected {shape}")
            return arg.pointer
        array = np.asarray(arg, dtype=shape.dtype.to_numpy(), order="C")
        if array.shape != shape.dims:
            raise ValueError(f"argument {k} has shape {array.shape}, expected {shape.dims}")
        allocation = self.backend.allocate(array.nbytes)
        keep.append(allocation)
        pointer = self.backend.pointer(allocation)
        self.backend.to_device(pointer, array)
        return pointer


def run_steps(steps, backend, table: dict[int, int], shapes: dict, keep: list) -> None:
    """Interpret a program: launches, device copies, loops and branches (scratch memory
    goes to `keep`, released once the device is synchronized)."""
    for step in steps:
        if isinstance(step, Launch):
            backend.launch(step.kernel, step.grid, step.block, [table[s] for s in step.slots])
        elif isinstance(step, CopySlots):
            _copy_slots(backend, table, shapes, step.sources, step.targets, keep)
        elif isinstance(step, Loop):
            while True:
                run_steps(step.condition, backend, table, shapes, keep)
                if not _read_scalar(backend, table[step.predicate_slot], DType.PRED):
                    break
                run_steps(step.body, backend, table, shapes, keep)
                _copy_slots(backend, table, shapes, step.results, step.state, keep)
        elif isinstance(step, Branch):
            dtype = DType(step.selector_dtype)
            value = _read_scalar(backend, table[step.selector_slot], dtype)
            last = len(step.branches) - 1
            if dtype is DType.PRED:
                index = 0 if value else 1
            else:
                index = int(value) if 0 <= int(value) < last else last
            run_steps(step.branches[index], backend, table, shapes, keep)
            _copy_slots(backend, table, shapes, step.results[index], step.outputs, keep)
        else:
            raise TypeError(f"unknown program step {step!r}")


def _read_scalar(backend, pointer: int, dtype: DType):
    out = np.empty((), dtype.to_numpy())
    backend.to_host(out, pointer)
    return out[()]


def _copy_slots(backend, table, shapes, sources, targets, keep: list) -> None:
    """targets[k] = sources[k]; sources that are also targets are staged first (a swap)."""
    staged = {}
    target_set = set(targets)
    for k, (source, target) in enumerate(zip(sources, targets)):
        nbytes = shapes[source].nbytes
        if source != target and source in target_set and nbytes:
            scratch = backend.allocate(nbytes)
            keep.append(scratch)
            staged[k] = backend.pointer(scratch)
            backend.copy(staged[k], table[source], nbytes)
    for k, (source, target) in enumerate(zip(sources, targets)):
        nbytes = shapes[source].nbytes
        if source != target and nbytes:
            backend.copy(table[target], staged.get(k, table[source]), nbytes)

