"""The BLAS path for large float dots: numpy's own OpenBLAS, called from compiled code.

One documented path (issue 6): f32/f64 dots whose operands are row-major matrices (after
leading batch dims) call `cblas_?gemm` from the OpenBLAS that numpy ships; the epilogue
(bias, activation, scale) of an output fusion still runs in the same kernel, over the
result while it is hot. Where no such library is found every dot uses the loop kernel.
"""
from __future__ import annotations

import functools
import glob
import os
from typing import Optional

import llvmlite.binding as llvm
import numpy as np

# (symbol prefix, integer width) of the CBLAS entry points, by library flavour.
_FLAVOURS = [("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64), ("cblas_{}gemm", 32)]


@functools.lru_cache(maxsize=1)
def gemm_symbols() -> Optional[tuple[str, str, int]]:
    """(sgemm name, dgemm name, int bits) once the library is loaded, or None."""
    if os.environ.get("FLOWJIT_NO_BLAS"):
        return None
    numpy_dir = os.path.dirname(np.__file__)
    candidates = sorted(glob.glob(os.path.join(numpy_dir, os.pardir, "numpy.libs",
                                               "lib*openblas*.so*")))
    candidates += sorted(glob.glob(os.path.join(numpy_dir, ".dylibs", "lib*openblas*")))
    for path in candidates:
        try:
            llvm.load_library_permanently(path)
        except RuntimeError:
            continue
        for pattern, bits in _FLAVOURS:
            s, d = pattern.format("s"), pattern.format("d")
            if llvm.address_of_symbol(s) and llvm.address_of_symbol(d):
                return s, d, bits
    return None
