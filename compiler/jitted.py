"""`jit`: trace once per signature, optimize, compile with LLVM, cache, run."""
from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from flowjit import tree
from flowjit.core import Array, as_array, current_trace
from flowjit.tracing import ArgSpec, Traced, argument_names, spec_of, trace_function
from flowjit.ir.module import Module

log = logging.getLogger("flowjit")


def _log_compiles() -> bool:
    return os.environ.get("FLOWJIT_LOG_COMPILES", "") not in ("", "0")


def _emit(message: str) -> None:
    if _log_compiles():
        if not log.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("flowjit: %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
        log.warning(message)


class Compiled:
    """A module compiled for one signature: call it with arrays of that signature."""

    def __init__(self, traced: Traced, opt_level: int, timings: dict,
                 device: Optional[str] = None):
        from flowjit.runtime.executable import compile_module
        from flowjit.passes import optimize
        self.traced = traced
        self.opt_level = opt_level
        self.timings = dict(timings)
        start = time.perf_counter()
        self.module, self.pass_records = optimize(_copy(traced.module), opt_level=opt_level)
        self.timings["passes"] = time.perf_counter() - start
        if device is not None and device.startswith("cuda"):
            from flowjit.runtime.cuda import CudaExecutable
            self.executable = CudaExecutable(self.module, device)
        else:
            self.executable = compile_module(self.module)
            self.executable.array_type = Array   # outputs are made as Arrays: no view later
        self.timings.update(getattr(self.executable, "timings", {}))
        self._dtypes = [spec.dtype for spec in traced.in_specs]
        self._wrap = getattr(self.executable, "array_type", None) is not Array
        self._single_leaf = traced.out_tree == tree.LEAF

    def __call__(self, *leaves: Any) -> Any:
        outputs = self.executable(*leaves)
        if self._wrap:
            outputs = [as_array(o) for o in outputs]
        if self._single_leaf:
            return outputs[0]
        return tree.unflatten(self.traced.out_tree, outputs)

    def as_text(self) -> str:
        """The optimized HLO text (fusions and buffer assignments visible)."""
        return self.module.to_text()

    def memory_analysis(self):
        from flowjit.passes import memory_analysis
        return memory_analysis(self.module)

    def cost_analysis(self) -> dict:
        from flowjit.passes import cost_analysis
        return cost_analysis(self.module)


def _copy(module: Module) -> Module:
    """A deep copy, so passes never touch the traced module."""
    return module.copy()


class Lowered:
    """A traced, not yet optimized module (what JAX's `.lower()` gives)."""

    def __init__(self, jitted: "Jitted", traced: Traced, key: tuple, trace_time: float):
        self._jitted = jitted
        self.traced = traced
        self._key = key
        self._trace_time = trace_time
        self._compiled: Optional[Compiled] = None

    @property
    def module(self) -> Module:
        return self.traced.module

    def as_text(self) -> str:
        return self.traced.module.to_text()

    def compile(self) -> Compiled:
        """The compiled executable (compiled once; later calls return the same object)."""
        if self._compiled is None:
            compiled = Compiled(self.traced, self._jitted.opt_level,
                                {"trace": self._trace_time}, self._jitted.device)
            _emit(f"compiled {self._jitted.__name__} for {_describe(self.traced.in_specs)} "
                  "in " + ", ".join(f"{k} {v * 1e3:.1f} ms"
                                    for k, v in compiled.timings.items()))
            self._compiled = compiled
        return self._compiled


def _describe(specs: Sequence[ArgSpec]) -> str:
    return "(" + ", ".join(str(s) for s in specs) + ")"


class Jitted:
    """The result of `jit(fun)`: call it like `fun`; `.lower(*args)` shows the IR."""

    def __init__(self, fun: Callable, static_argnums: Sequence[int], opt_level: int,
                 device: Optional[str]):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums = tuple(sorted(static_argnums))
        self.opt_level = opt_level
        self.device = device
        self.trace_count = 0
        self._cache: dict[tuple, Compiled] = {}
        self._lowered: dict[tuple, Lowered] = {}   # one trace per signature, as in JAX
        # The hot path: positional arrays only, keyed by (shape, dtype) per argument.
        self._array_cache: dict[tuple, Compiled] = {}
        self._signatures: list[tuple] = []

    def _split(self, args: tuple):
        """Static values, flat dynamic leaves, and a function to rebuild the arguments."""
        static = {}
        for i in self.static_argnums:
            if i >= len(args):
                raise TypeError(f"static_argnums={self.static_argnums} but only {len(args)} "
                                "arguments were given")
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(f"static argument {i} of {self.__name__} is not hashable: "
                                f"{type(args[i]).__name__}") from None
            static[i] = args[i]
        dynamic = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, treedef = tree.flatten(dynamic)
        names = argument_names(self.fun, len(args))
        dyn_names = [names[i] for i in range(len(args)) if i not in static]
        labels = _leaf_labels(dynamic, dyn_names)

        def rebuild(new_leaves: list) -> tuple:
            rebuilt = list(tree.unflatten(treedef, new_leaves))
            full = []
            for i in range(len(args)):
                full.append(static[i] if i in static else rebuilt.pop(0))
            return tuple(full)
        return static, leaves, treedef, rebuild, labels

    def _key(self, static, leaves, treedef, labels) -> tuple:
        specs = tuple(spec_of(leaf, label) for leaf, label in zip(leaves, labels))
        return (treedef, specs, tuple(sorted(static.items())))

    def lower(self, *args: Any) -> Lowered:
        if self.device is None or not self.device.startswith("cuda"):
            from flowjit.codegen import start_compile_workers
            start_compile_workers()   # warming up while we trace and optimize
        static, leaves, treedef, rebuild, labels = self._split(args)
        key = self._key(static, leaves, treedef, labels)
        if key in self._lowered:
            return self._lowered[key]
        self._explain_retrace(key, labels)
        start = time.perf_counter()
        traced = trace_function(self.fun, self.__name__, leaves, rebuild, labels)
        self.trace_count += 1
        self._signatures.append((key, labels))
        lowered = Lowered(self, traced, key, time.perf_counter() - start)
        self._lowered[key] = lowered
        return lowered

    def __call__(self, *args: Any) -> Any:
        if current_trace() is not None:
            return self.fun(*args)  # jit inside jit: trace straight through
        array_key = _array_key(args) if not self.static_argnums else None
        if array_key is not None:
            compiled = self._array_cache.get(array_key)
            if compiled is not None:
                return compiled(*args)
        if not self.static_argnums:
            # The warm path: no argument names or labels unless something goes wrong.
            leaves, treedef = tree.flatten(args)
            try:
                key = (treedef, tuple(_quick_spec(leaf) for leaf in leaves), ())
            except TypeError:
                key = None
            compiled = self._cache.get(key) if key is not None else None
            if compiled is not None:
                return compiled(*leaves)
        static, leaves, treedef, rebuild, labels = self._split(args)
        key = self._key(static, leaves, treedef, labels)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self.lower(*args).compile()
            self._cache[key] = compiled
        if array_key is not None:
            self._array_cache[array_key] = compiled
        return compiled(*leaves)

    def _explain_retrace(self, key: tuple, labels: list[str]) -> None:
        if not _log_compiles():
            return
        if not self._signatures:
            _emit(f"tracing {self.__name__} for {_describe(key[1])}")
            return
        previous, _ = self._signatures[-1]
        reasons = []
        if previous[0] != key[0]:
            reasons.append(f"argument structure changed from {previous[0]} to {key[0]}")
        else:
            for label, old, new in zip(labels, previous[1], key[1]):
                if old != new:
                    reasons.append(f"{label} changed from {old} to {new}")
        if previous[2] != key[2]:
            reasons.append(f"static arguments changed from {dict(previous[2])} to "
                           f"{dict(key[2])}")
        _emit(f"retracing {self.__name__} (trace #{self.trace_count + 1}): "
              + ("; ".join(reasons) or "new signature"))

    def clear_cache(self) -> None:
        self._cache.clear()
        self._lowered.clear()
        self._array_cache.clear()


_ARRAY_TYPES = (np.ndarray, Array)


def _array_key(args: tuple) -> Optional[tuple]:
    """(shape, dtype) of each argument when all are arrays, else None (the general path)."""
    key = []
    for a in args:
        if type(a) not in _ARRAY_TYPES:
            return None
        key.append((a.shape, a.dtype))
    return tuple(key)


def _quick_spec(leaf: Any) -> ArgSpec:
    """spec_of without the error-message work, for the common leaf types."""
    if type(leaf) is np.ndarray or isinstance(leaf, np.ndarray):
        return ArgSpec(leaf.shape, leaf.dtype, False)
    if type(leaf) in (float, int, bool):
        return ArgSpec((), np.asarray(leaf).dtype, True)
    return spec_of(leaf, "argument")


def _leaf_labels(dynamic: tuple, names: list[str]) -> list[str]:
    """A readable label for every leaf: `w`, `params['b']`, `xs[1]`."""
    labels: list[str] = []

    def walk(value: Any, label: str) -> None:
        if isinstance(value, dict):
            for k in sorted(value):
                walk(value[k], f"{label}[{k!r}]")
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                walk(v, f"{label}[{i}]")
        elif value is not None:
            labels.append(label)
    for value, name in zip(dynamic, names):
        walk(value, name)
    return labels


def jit(fun: Optional[Callable] = None, *, static_argnums: Any = (),
        opt_level: Optional[int] = None, device: Optional[str] = None) -> Any:
    """Compile `fun` with flowjit; usable as `@jit` or `@jit(static_argnums=...)`.

    `opt_level` 0 runs no passes (one kernel per instruction), 2 (the default) all of them;
    FLOWJIT_OPT_LEVEL changes the default, e.g. to run a whole test suite unoptimized.
    `device` ("cpu", "cuda", "cuda:1") defaults to FLOWJIT_DEVICE, else the CPU."""
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    if opt_level is None:
        opt_level = int(os.environ.get("FLOWJIT_OPT_LEVEL", "2"))
    if device is None:
        device = os.environ.get("FLOWJIT_DEVICE") or None
    if fun is None:
        return lambda f: Jitted(f, static_argnums, opt_level, device)
    return Jitted(fun, static_argnums, opt_level, device)
