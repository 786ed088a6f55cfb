"""`flowjit.config`: global switches, read and set the way `jax.config` is.

    flowjit.config.update("enable_x64", True)   # or FLOWJIT_ENABLE_X64=1 before the import
    flowjit.config.enable_x64                   # -> True

With x64 off (the default, as in JAX) arrays are 32-bit: creation functions default to
float32 / int32, Python scalars are weakly typed, and 64-bit inputs are converted to their
32-bit kind as they enter flowjit (`canonicalize_dtype`).

    flowjit.config.update("cpu_features", "avx2")   # or FLOWJIT_CPU_FEATURES=avx2

builds machine code from then on for a CPU without AVX-512 ("host", the default: all this
CPU has), so the AVX2 code users' machines run can be tested and measured here. The choice
is part of every compile cache key; it lives in codegen (`llvm_target`), which builds it.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import numpy as np

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"{name}={os.environ[name]!r}: expected 1/0, true/false, yes/no or on/off")
    return value in _TRUE


_OPTIONS = {"enable_x64": ("FLOWJIT_ENABLE_X64", _env_flag)}
_lock = threading.Lock()
_values = {name: parse(env) for name, (env, parse) in _OPTIONS.items()}
# Options kept by the layer that uses them: name -> (getter, setter) in codegen, imported
# on first use (a process that never compiles need not load LLVM).
_DELEGATED = {"cpu_features": ("selected_cpu_features", "select_cpu_features")}


_llvm_target_module = None


def _llvm_target():
    global _llvm_target_module
    if _llvm_target_module is None:
        from flowjit.codegen import llvm_target
        _llvm_target_module = llvm_target
    return _llvm_target_module


def _option(name: str) -> str:
    option = name[4:] if name.startswith("jax_") else name   # jax.config's spelling too
    if option not in _OPTIONS and option not in _DELEGATED:
        raise AttributeError(f"unrecognized config option {name!r} (known: "
                             f"{', '.join(sorted({**_OPTIONS, **_DELEGATED}))})")
    return option


def update(name: str, value: Any) -> None:
    """Set option `name` (`enable_x64`, `cpu_features`) for the whole process, as
    jax.config.update."""
    option = _option(name)
    if option in _DELEGATED:
        getattr(_llvm_target(), _DELEGATED[option][1])(str(value))
        return
    with _lock:
        _values[option] = bool(value)


@contextlib.contextmanager
def override(name: str, value: Any):
    """Set option `name` to `value` for a `with` block (process-wide), then restore it."""
    previous = read(name)
    update(name, value)
    try:
        yield
    finally:
        update(name, previous)


def read(name: str) -> Any:
    """The current value of option `name`."""
    option = _option(name)
    if option in _DELEGATED:
        return getattr(_llvm_target(), _DELEGATED[option][0])()
    return _values[option]


def __getattr__(name: str) -> Any:
    # `flowjit.config.enable_x64` reads the option (PEP 562: only for names not defined here).
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return read(name)
    except AttributeError:
        raise AttributeError(f"module 'flowjit.config' has no attribute {name!r}") from None


# With x64 off, 64-bit dtypes enter flowjit as their 32-bit kind (JAX's canonicalization).
_NARROW = {np.dtype(np.float64): np.dtype(np.float32), np.dtype(np.int64): np.dtype(np.int32),
           np.dtype(np.uint64): np.dtype(np.uint32)}


def x64_enabled() -> bool:
    """Whether 64-bit types are enabled now (cheap: read on every jitted call)."""
    return _values["enable_x64"]


def cpu_feature_set() -> str:
    """The CPU feature set code is built for now ("host", "avx2"): a compile cache key part."""
    return _llvm_target().selected_cpu_features()


def canonicalize_dtype(dtype: Any) -> np.dtype:
    """`dtype` as flowjit holds it: 64-bit kinds become 32-bit unless x64 is enabled."""
    dtype = np.dtype(dtype)
    if _values["enable_x64"]:
        return dtype
    return _NARROW.get(dtype, dtype)


def default_float() -> np.dtype:
    """float64 with x64 enabled, else float32 (what `zeros(3)` and `1.0` become)."""
    return canonicalize_dtype(np.float64)


def default_int() -> np.dtype:
    """int64 with x64 enabled, else int32 (what `arange(3)` and `1` become)."""
    return canonicalize_dtype(np.int64)


def canonicalize_value(value: Any) -> Any:
    """A concrete (numpy) value with its dtype canonicalized; anything else as it is."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        target = canonicalize_dtype(value.dtype)
        return value if value.dtype == target else np.asarray(value, target)
    return value
