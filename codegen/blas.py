"""The BLAS path for large float dots: an OpenBLAS that scipy or numpy ships, called from
compiled code, one thread per call.

f32/f64 dots whose operands are row-major matrices (after leading batch dims) call
`cblas_?gemm`; the epilogue (bias, activation, scale) of an output fusion still runs in the
same kernel, over the result while it is hot. Where no such library is found every dot uses
the loop kernel.

Threads: flowjit's runtime owns them (ARCHITECTURE.md, principle 7). The library is held to
one thread when it is loaded, and a large product is split by rows across flowjit's own
threads instead. Two pools on two cores oversubscribed them, and OpenBLAS's spinning threads
made a busy machine catastrophic (a transformer forward 30x slower under load). scipy's
OpenBLAS comes first: it is a separate library from numpy's, so numpy's own threading is
never touched (scipy.linalg's BLAS calls in the same process are one thread each).

Kernels: the runtime picks the library's kernel family by the host's features, as it picks
LLVM's target features. OpenBLAS reads `OPENBLAS_CORETYPE` once, when it is loaded, and
its own detection can miss the newest CPUs (an AVX-512 AMD Zen 5 ran its AVX2 kernels at
half speed: sgemm 105 vs 200 GFLOP/s on one core), as does an `OPENBLAS_CORETYPE` set for
numpy's copy. `FLOWJIT_BLAS_CORETYPE` overrides the choice ("" leaves the environment alone).
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
from dataclasses import dataclass
from typing import Optional

import llvmlite.binding as llvm

from flowjit.codegen.llvm_target import initialize

# (symbol pattern, integer width) of the CBLAS entry points, by library flavour.
_FLAVOURS = [("scipy_cblas_{}gemm", 32), ("scipy_cblas_{}gemm64_", 64),
             ("cblas_{}gemm64_", 64), ("cblas_{}gemm", 32)]
# The names compiled code calls; bound to the chosen library's functions.
SGEMM, DGEMM = "flowjit.blas.sgemm", "flowjit.blas.dgemm"


@dataclass(frozen=True)
class Blas:
    """The library the dots call (held to one thread) and its integer width."""

    path: str
    int_bits: int


def _candidates() -> list[str]:
    found = []
    for package in ("scipy", "numpy"):
        try:
            module = __import__(package)
        except ImportError:
            continue
        root = os.path.dirname(module.__file__)
        for pattern in (os.path.join(root, os.pardir, f"{package}.libs", "lib*openblas*.so*"),
                        os.path.join(root, ".dylibs", "lib*openblas*")):
            found += sorted(glob.glob(pattern))
    return found


def _core_type() -> Optional[str]:
    """The OpenBLAS kernel family to load for this host, or None to leave OpenBLAS to choose."""
    if "FLOWJIT_BLAS_CORETYPE" in os.environ:
        return os.environ["FLOWJIT_BLAS_CORETYPE"] or None
    initialize()
    features = llvm.get_host_cpu_features()
    # What OpenBLAS's SkylakeX kernels need (its own check in dynamic.c).
    if all(features.get(f, False) for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl")):
        return "SkylakeX"
    return None


def _open(path: str) -> ctypes.CDLL:
    """Load the library with the chosen kernels; the environment is left as it was."""
    core = _core_type()
    saved = os.environ.get("OPENBLAS_CORETYPE")
    if core is not None:
        os.environ["OPENBLAS_CORETYPE"] = core
    try:
        return ctypes.CDLL(path)
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_CORETYPE", None)
        else:
            os.environ["OPENBLAS_CORETYPE"] = saved


def _address(library: ctypes.CDLL, name: str) -> Optional[int]:
    try:
        return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    except AttributeError:
        return None


@functools.lru_cache(maxsize=1)
def blas() -> Optional[Blas]:
    """The BLAS library, its functions bound to SGEMM / DGEMM; or None."""
    if os.environ.get("FLOWJIT_NO_BLAS"):
        return None
    for path in _candidates():
        try:
            library = _open(path)
        except OSError:
            continue
        for pattern, bits in _FLAVOURS:
            sgemm, dgemm = (_address(library, pattern.format(t)) for t in "sd")
            if sgemm and dgemm:
                llvm.add_symbol(SGEMM, sgemm)
                llvm.add_symbol(DGEMM, dgemm)
                hold_to_one_thread(library)
                return Blas(path, bits)
    return None


def hold_to_one_thread(library: ctypes.CDLL) -> bool:
    """Run every call of this OpenBLAS on one thread, process-wide (a per-call
    openblas_set_num_threads_local(1) / restore raced between our threads: it is one
    setting for the process in these builds). False when it is not an OpenBLAS."""
    for name in ("scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                 "openblas_set_num_threads"):
        if hasattr(library, name):
            getattr(library, name)(1)
            return True
    return False


def gemm_symbols() -> Optional[tuple[str, str, int]]:
    """(sgemm name, dgemm name, int bits) to call from compiled code, or None."""
    library = blas()
    return None if library is None else (SGEMM, DGEMM, library.int_bits)
