"""A thin pycuda adapter: devices, transfers, and running a compiled PTX program.

Importing this module never fails; using CUDA without pycuda or without a GPU raises
CudaUnavailableError saying which is missing. Buffers follow the CPU buffer plan: inputs are
copied to the device, temporaries live in one device arena, outputs come back on request.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ir.buffers import flatten_slots, plan_buffers
from ir.errors import FlowjitError
from ir.module import Module


class CudaUnavailableError(FlowjitError, RuntimeError):
    """CUDA was asked for, but pycuda or a CUDA device is missing."""


_driver = None


def _cuda():
    """pycuda.driver, initialized, with a context on device 0."""
    global _driver
    if _driver is not None:
        return _driver
    try:
        import pycuda.driver as driver
    except ImportError:
        raise CudaUnavailableError(
            "CUDA was requested but pycuda is not installed: pip install 'flowjit[cuda]' "
            "(it builds against the CUDA toolkit headers)") from None
    try:
        driver.init()
        count = driver.Device.count()
    except Exception as e:  # driver missing or broken
        raise CudaUnavailableError(f"CUDA was requested but the driver failed: {e}") from None
    if count == 0:
        raise CudaUnavailableError("CUDA was requested but no CUDA device is present")
    import pycuda.autoinit  # noqa: F401  (creates the context on device 0)
    _driver = driver
    return driver


def available_devices() -> list[str]:
    """`cpu:0`, plus `cuda:N` for every CUDA device pycuda can see."""
    devices = ["cpu:0"]
    try:
        import pycuda.driver as driver
        driver.init()
        devices += [f"cuda:{k}" for k in range(driver.Device.count())]
    except Exception:
        pass
    return devices


class DeviceArray:
    """An array in GPU memory; `np.asarray(x)` copies it back to the host."""

    def __init__(self, host: np.ndarray):
        driver = _cuda()
        self.shape, self.dtype = host.shape, host.dtype
        self.allocation = driver.mem_alloc(max(host.nbytes, 1))
        driver.memcpy_htod(self.allocation, np.ascontiguousarray(host))

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, self.dtype)
        _cuda().memcpy_dtoh(out, self.allocation)
        return out if dtype is None else out.astype(dtype)


def device_put(x, device: str = "cuda:0"):
    """x on `device`: a numpy array for cpu, a DeviceArray for cuda."""
    if device.startswith("cpu"):
        return np.asarray(x)
    return DeviceArray(np.asarray(x))


class CudaExecutable:
    """A module compiled to PTX and loaded on the GPU; called like the CPU Executable."""

    BLOCK = 256

    def __init__(self, module: Module, arch: Optional[str] = None):
        from codegen.ptx import compile_ptx
        driver = _cuda()
        if arch is None:
            major, minor = driver.Device(0).compute_capability()
            arch = f"sm_{major}{minor}"
        self.program = compile_ptx(module, arch)
        self.cuda_module = driver.module_from_buffer(self.program.ptx.encode())
        self.functions = [self.cuda_module.get_function(k.name) for k in self.program.kernels]
        self.plan, self.trees = plan_buffers(module)
        self.module = module

    def __call__(self, *args):
        driver = _cuda()
        plan = self.plan
        buffers = {}
        for slot, arg in zip(plan.inputs, args):
            buffers[slot] = arg.allocation if isinstance(arg, DeviceArray) else \
                DeviceArray(np.asarray(arg, plan.shapes[slot].dtype.to_numpy())).allocation
        for slot, value in plan.constants.items():
            buffers[slot] = DeviceArray(value).allocation
        for slot, shape in plan.shapes.items():
            if slot not in buffers:
                buffers[slot] = driver.mem_alloc(max(shape.nbytes, 1))
        for kernel, function in zip(self.program.kernels, self.functions):
            inst = kernel.instruction
            slots = flatten_slots(self.trees[id(inst)]) + [
                s for o in inst.operands for s in flatten_slots(self.trees[id(o)])]
            blocks = max(1, min(65535, -(-kernel.elements // self.BLOCK)))
            function(*[buffers[s] for s in slots], block=(self.BLOCK, 1, 1),
                     grid=(blocks, 1))
        outputs = []
        for slot in plan.outputs:
            shape = plan.shapes[slot]
            host = np.empty(shape.dims, shape.dtype.to_numpy())
            driver.memcpy_dtoh(host, buffers[slot])
            outputs.append(host)
        return outputs
