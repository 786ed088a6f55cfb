"""LAPACK and BLAS entry points for compiled code, taken from scipy as jaxlib and numba do.

`scipy.linalg.cython_lapack` and `cython_blas` export each routine in `__pyx_capi__` as a
PyCapsule holding its C function pointer (every argument by pointer, Fortran-style). The
pointer is bound under a name of ours (`flowjit.lapack.spotrf`) with llvmlite's
`add_symbol`, so kernels call LAPACK directly, with no Python in between.

Threads: these routines run in scipy's OpenBLAS, the library `codegen.blas` holds to one
thread when it loads it (ARCHITECTURE.md, principle 7: flowjit's runtime owns the threads;
OpenBLAS's threaded LAPACK on this 2-core machine made a 512x512 cholesky 20x slower).
"""
from __future__ import annotations

import ctypes
import functools

import llvmlite.binding as llvm

from flowjit.codegen import blas

PREFIX = "flowjit.lapack."


def _capsule_pointer(capsule) -> int:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


@functools.lru_cache(maxsize=None)
def address(routine: str) -> int:
    """The C address of LAPACK/BLAS `routine` (`spotrf`, `dtrsm`, ...) in scipy; its
    library is held to one thread first."""
    from scipy.linalg import cython_blas, cython_lapack
    library = blas.blas()
    if library is None:
        # FLOWJIT_NO_BLAS keeps dots off BLAS; LAPACK still needs one thread.
        _one_thread_without_blas()
    for module in (cython_lapack, cython_blas):
        capsule = module.__pyx_capi__.get(routine)
        if capsule is not None:
            return _capsule_pointer(capsule)
    raise KeyError(f"scipy has no LAPACK/BLAS routine '{routine}'")


@functools.lru_cache(maxsize=1)
def _one_thread_without_blas() -> None:
    """scipy's OpenBLAS held to one thread when codegen.blas did not load it."""
    for path in blas._candidates():   # scipy's library first, as codegen.blas picks it
        try:
            if blas.hold_to_one_thread(ctypes.CDLL(path)):
                return
        except OSError:
            continue


def symbol(routine: str) -> str:
    """The name compiled code calls `routine` by, bound to scipy's function."""
    name = PREFIX + routine
    llvm.add_symbol(name, address(routine))
    return name


def bind_symbols_in(texts) -> None:
    """Bind every LAPACK symbol LLVM texts call (compiled code loaded from a cache was not
    lowered in this process, so nothing bound them yet)."""
    for text in texts:
        start = text.find(PREFIX)
        while start >= 0:
            end = start + len(PREFIX)
            while end < len(text) and text[end].isalnum():
                end += 1
            symbol(text[start + len(PREFIX):end])
            start = text.find(PREFIX, end)


def _call(routine: str, args) -> None:
    function = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(args))(address(routine))
    function(*[ctypes.cast(a, ctypes.c_void_p) for a in args])


def workspace(routine: str, *arguments) -> tuple[int, ...]:
    """LAPACK's own answer to "how much workspace", asked once at compile time (lwork =
    -1): `arguments` are the routine's arguments as Python values, with 'work' and 'iwork'
    where the query's outputs go; returns the sizes asked for, in that order."""
    float_t = ctypes.c_float if routine[0] == "s" else ctypes.c_double
    held, queried = [], []
    for value in arguments:
        if value in ("work", "iwork"):
            cell = (float_t if value == "work" else ctypes.c_int)(0)
            queried.append(cell)
        elif value == "array":
            cell = (float_t * 1)()
        elif isinstance(value, str):
            cell = ctypes.c_char(value.encode())
        else:
            cell = ctypes.c_int(value)
        held.append(cell)
    _call(routine, [ctypes.addressof(c) for c in held])
    return tuple(max(1, int(c.value)) for c in queried)
