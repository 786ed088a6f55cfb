"""Shared by the CUDA tests: compile for a device, compare with the reference semantics."""
from __future__ import annotations

import numpy as np

from flowjit.codegen.ptx import compile_ptx
from flowjit.ir.module import Module
from flowjit.ir.reference import evaluate
from flowjit.runtime.cuda import CudaExecutable
from tests.cuda.emulator import EmulatedDevice

_TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5,
              np.dtype(np.float16): 2e-2}


def run_emulated(module: Module, args: list, max_blocks: int = 3) -> tuple[list,
                                                                           EmulatedDevice]:
    """The module's outputs computed by its CUDA kernels on the emulated device."""
    program = compile_ptx(module)
    device = EmulatedDevice(max_blocks)
    return CudaExecutable(program, backend=device)(*args), device


def reference(module: Module, args: list) -> list:
    with np.errstate(all="ignore"):
        value = evaluate(module, args)
    return _leaves(value)


def _leaves(value) -> list:
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [np.asarray(value)]


def assert_close(got: list, want: list, where: str = "") -> None:
    """Integers bit for bit; floats within a few ulp of the reference (scaled by max(1, |x|)),
    with NaN and infinities where the reference has them."""
    assert len(got) == len(want), where
    for k, (g, w) in enumerate(zip(got, want)):
        message = f"output {k} {where}"
        assert g.shape == w.shape and g.dtype == w.dtype, message
        if w.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w, err_msg=message)
            continue
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        np.testing.assert_array_equal(np.isnan(g64), np.isnan(w64), err_msg=message)
        finite = np.isfinite(w64) & np.isfinite(g64)
        infinite = ~finite & ~np.isnan(w64)
        np.testing.assert_array_equal(g64[infinite], w64[infinite], err_msg=message)
        tolerance = _TOLERANCE.get(w.dtype, 6e-2)
        scale = np.maximum(np.abs(w64[finite]), 1.0)
        assert np.all(np.abs(g64[finite] - w64[finite]) <= tolerance * scale), message
