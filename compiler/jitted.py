"""`jit`: trace once per signature, optimize, compile with LLVM, cache, run."""
from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Optional, Sequence

import numpy as np

from flowjit import tree
from flowjit.config import canonicalize_dtype, cpu_feature_set, x64_enabled
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
        self.last_used = next(_use_clock)   # what the executable cache evicts by

    def __call__(self, *leaves: Any) -> Any:
        self.last_used = next(_use_clock)
        outputs = self.executable(*leaves)
        if self._wrap:
            outputs = [as_array(o) for o in outputs]
        if self._single_leaf:
            return outputs[0]
        return tree.unflatten(self.traced.out_tree, outputs)

    def as_text(self) -> str:
        """The optimized HLO text (fusions and buffer assignments visible)."""
        return self.module.to_text()

    def profile(self, *leaves: Any, runs: int = 10):
        """Time per step (kernel, loop-state copy) of this program, inside loops too: the
        same optimized module compiled once more with timers around its steps, run `runs`
        times after a warm-up. CPU only."""
        from flowjit.runtime.executable import compile_module, profile_run
        if self.executable.__class__.__name__ == "CudaExecutable":
            raise NotImplementedError("profile() times CPU programs; on the GPU use nsys")
        if getattr(self, "_profiling", None) is None:
            self._profiling = compile_module(self.module, profile=True)
        return profile_run(self._profiling, list(leaves), runs)

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
        # A weak reference: a jitted function that nobody holds is freed at once (its
        # executables with it), not at the next garbage collection of a cycle.
        self._jitted = weakref.ref(jitted)
        self._name, self._opt_level, self._device = (jitted.__name__, jitted.opt_level,
                                                     jitted.device)
        self.traced = traced
        self._key = key
        self._trace_time = trace_time
        self._compiled: Optional[Compiled] = None
        self._compile_lock = threading.Lock()

    @property
    def module(self) -> Module:
        return self.traced.module

    def as_text(self) -> str:
        return self.traced.module.to_text()

    def compile(self) -> Compiled:
        """The compiled executable (compiled once, also when threads race to compile it;
        later calls return the same object)."""
        compiled = self._compiled
        if compiled is not None:
            return compiled
        with self._compile_lock:
            if self._compiled is None:
                compiled = Compiled(self.traced, self._opt_level, {"trace": self._trace_time},
                                    self._device)
                _emit(f"compiled {self._name} for {_describe(self.traced.in_specs)} in "
                      + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in compiled.timings.items()))
                self._compiled = compiled
                jitted = self._jitted()
                if jitted is not None:
                    _EXECUTABLES.add(jitted, self._key, compiled)
        return self._compiled


def _describe(specs: Sequence[ArgSpec]) -> str:
    return "(" + ", ".join(str(s) for s in specs) + ")"


class Jitted:
    """The result of `jit(fun)`: call it like `fun`; `.lower(*args)` shows the IR."""

    def __init__(self, fun: Callable, static_argnums: Sequence[int], opt_level: int,
                 device: Optional[str], static_argnames: Sequence[str] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums, self.static_argnames = _infer_static_arguments(
            fun, tuple(static_argnums), tuple(static_argnames))
        self.opt_level = opt_level
        self.device = device
        self.trace_count = 0
        self._cache: dict[tuple, Compiled] = {}
        self._lowered: dict[tuple, Lowered] = {}   # one trace per signature, as in JAX
        # The hot path: positional arrays only, keyed by (shape, dtype) per argument.
        self._array_cache: dict[tuple, Compiled] = {}
        self._signatures: list[tuple] = []
        # One lock per signature: threads racing to call a new signature trace it once.
        self._signature_locks: dict[tuple, threading.RLock] = {}
        self._locks_lock = threading.Lock()
        self._token = next(_tokens)
        weakref.finalize(self, _EXECUTABLES.forget_owner, self._token)

    def _split(self, args: tuple, kwargs: dict):
        """Static values, flat dynamic leaves, a function to rebuild the arguments (as
        `(positional, keywords)`), and a label per leaf."""
        static = self._static_positional(args)
        static_kw, dynamic_kw = self._static_keywords(kwargs)
        kw_names = tuple(sorted(dynamic_kw))
        positional = tuple(a for i, a in enumerate(args) if i not in static)
        dynamic = positional + tuple(dynamic_kw[name] for name in kw_names)
        leaves, treedef = tree.flatten(dynamic)
        names = argument_names(self.fun, len(args))
        dyn_names = [names[i] for i in range(len(args)) if i not in static] + list(kw_names)
        labels = _leaf_labels(dynamic, dyn_names)

        def rebuild(new_leaves: list) -> tuple:
            rebuilt = list(tree.unflatten(treedef, new_leaves))
            full = []
            for i in range(len(args)):
                full.append(static[i] if i in static else rebuilt.pop(0))
            keywords = dict(static_kw)
            keywords.update(zip(kw_names, rebuilt))
            return tuple(full), keywords
        statics = _statics_key(static, static_kw, kw_names)
        return statics, leaves, treedef, rebuild, labels

    def _static_positional(self, args: tuple) -> dict:
        static = {}
        for i in self.static_argnums:
            if i >= len(args):
                if self.static_argnames:
                    continue   # may come as a keyword (static_argnames)
                raise TypeError(f"static_argnums={self.static_argnums} but only {len(args)} "
                                "arguments were given")
            static[i] = _hashable(args[i], f"static argument {i} of {self.__name__}")
        return static

    def _static_keywords(self, kwargs: dict) -> tuple[dict, dict]:
        static, dynamic = {}, {}
        for name, value in kwargs.items():
            if name in self.static_argnames:
                static[name] = _hashable(value, f"static argument '{name}' of {self.__name__}")
            else:
                dynamic[name] = value
        return static, dynamic

    def _key(self, statics: tuple, leaves, treedef, labels) -> tuple:
        specs = tuple(spec_of(leaf, label) for leaf, label in zip(leaves, labels))
        # A program traced with x64 on differs (its defaults, constants): part of the key;
        # so is the CPU feature set its machine code is built for.
        return (treedef, specs, statics, x64_enabled(), cpu_feature_set())

    def lower(self, *args: Any, **kwargs: Any) -> Lowered:
        """The traced module for these arguments (traced once per signature)."""
        if self.device is None or not self.device.startswith("cuda"):
            from flowjit.codegen import start_compile_workers
            start_compile_workers()   # warming up while we trace and optimize
        statics, leaves, treedef, rebuild, labels = self._split(args, kwargs)
        key = self._key(statics, leaves, treedef, labels)
        lowered = self._lowered.get(key)
        if lowered is not None:
            return lowered
        with self._signature_lock(key):
            lowered = self._lowered.get(key)   # another thread may have traced it meanwhile
            if lowered is not None:
                return lowered
            self._explain_retrace(key, labels)
            start = time.perf_counter()
            traced = trace_function(self._call_with_keywords, self.__name__, leaves, rebuild,
                                    labels)
            with self._locks_lock:
                self.trace_count += 1
            self._signatures[:] = [(key, labels)]   # the last, to explain the next retrace
            lowered = Lowered(self, traced, key, time.perf_counter() - start)
            self._lowered[key] = lowered
        return lowered

    def profile(self, *args: Any, runs: int = 10, **kwargs: Any):
        """Where the time goes for these arguments: milliseconds per run of each kernel and
        loop-state copy, with the loop it sits in and the source line (print the result)."""
        leaves = self._split(args, kwargs)[1]
        return self.lower(*args, **kwargs).compile().profile(*leaves, runs=runs)

    def _call_with_keywords(self, positional: tuple, keywords: dict) -> Any:
        return self.fun(*positional, **keywords)

    def _signature_lock(self, key: tuple) -> threading.RLock:
        with self._locks_lock:
            lock = self._signature_locks.get(key)
            if lock is None:
                lock = self._signature_locks[key] = threading.RLock()
            return lock

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_trace() is not None:
            return self.fun(*args, **kwargs)  # jit inside jit: trace straight through
        simple = not self.static_argnums and not kwargs
        array_key = _array_key(args) if simple else None
        if array_key is not None:
            compiled = self._array_cache.get(array_key)
            if compiled is not None:
                return compiled(*args)
        if simple:
            # The warm path: no argument names or labels unless something goes wrong.
            leaves, treedef = tree.flatten(args)
            try:
                key = (treedef, tuple(_quick_spec(leaf) for leaf in leaves), (),
                       x64_enabled(), cpu_feature_set())
            except TypeError:
                key = None
            compiled = self._cache.get(key) if key is not None else None
            if compiled is not None:
                return compiled(*leaves)
        statics, leaves, treedef, rebuild, labels = self._split(args, kwargs)
        key = self._key(statics, leaves, treedef, labels)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self.lower(*args, **kwargs).compile()
            if _EXECUTABLES.holds(self, key):   # not evicted already by a racing compile
                self._cache[key] = compiled
                if array_key is not None:
                    self._array_cache[array_key] = compiled
        elif array_key is not None:
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
            reasons.append(f"static arguments changed from {_describe_statics(previous[2])} "
                           f"to {_describe_statics(key[2])}")
        if previous[3] != key[3]:
            reasons.append(f"enable_x64 changed from {previous[3]} to {key[3]}")
        if previous[4] != key[4]:
            reasons.append(f"cpu_features changed from {previous[4]} to {key[4]}")
        _emit(f"retracing {self.__name__} (trace #{self.trace_count + 1}): "
              + ("; ".join(reasons) or "new signature"))

    def _evict(self, key: tuple) -> None:
        """Drop the executable (and trace) of one signature: its machine code is freed once
        no caller holds it."""
        compiled = self._cache.pop(key, None)
        lowered = self._lowered.pop(key, None)
        if compiled is None and lowered is not None:
            compiled = lowered._compiled
        for array_key in [k for k, c in list(self._array_cache.items()) if c is compiled]:
            self._array_cache.pop(array_key, None)
        with self._locks_lock:
            self._signature_locks.pop(key, None)

    def clear_cache(self) -> None:
        """Drop every trace and executable of this function (their memory is freed)."""
        _EXECUTABLES.forget_owner(self._token)
        self._cache.clear()
        self._lowered.clear()
        self._array_cache.clear()
        with self._locks_lock:
            self._signature_locks.clear()


class _ExecutableCache:
    """A bound on the executables all jitted functions keep, evicting the least recently
    used. A call only stamps its executable with a counter, so the hot path takes no lock;
    the search for the oldest happens on a compile, which costs far more anyway.

    Each entry is (owner token, signature) -> (weak reference to the owner, executable);
    an owner that is garbage-collected drops its entries."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: dict[tuple, tuple] = {}
        self._lock = threading.RLock()

    def add(self, owner: "Jitted", key: tuple, compiled: Compiled) -> None:
        with self._lock:
            self._entries[(owner._token, key)] = (weakref.ref(owner), compiled)
            compiled.last_used = next(_use_clock)
        self._make_room()

    def _make_room(self) -> None:
        with self._lock:
            evicted = []
            while len(self._entries) > self.capacity:
                entry_key = min(self._entries,
                                key=lambda k: self._entries[k][1].last_used)
                owner_ref, _ = self._entries.pop(entry_key)
                evicted.append((owner_ref, entry_key[1]))
        for owner_ref, key in evicted:   # outside the lock: eviction frees LLVM objects
            victim = owner_ref()
            if victim is not None:
                victim._evict(key)

    def holds(self, owner: "Jitted", key: tuple) -> bool:
        return (owner._token, key) in self._entries

    def forget_owner(self, token: int) -> None:
        with self._lock:
            for entry_key in [k for k in self._entries if k[0] == token]:
                del self._entries[entry_key]

    def resize(self, capacity: int) -> None:
        with self._lock:
            self.capacity = capacity
        self._make_room()

    def owners(self) -> list:
        with self._lock:
            refs = {id(ref): ref for ref, _ in self._entries.values()}
        return [owner for owner in (ref() for ref in refs.values()) if owner is not None]

    def __len__(self) -> int:
        return len(self._entries)


DEFAULT_EXECUTABLE_CACHE_SIZE = 512


def _capacity_from_environment() -> int:
    text = os.environ.get("FLOWJIT_EXECUTABLE_CACHE_SIZE", "")
    try:
        return max(1, int(text)) if text else DEFAULT_EXECUTABLE_CACHE_SIZE
    except ValueError:
        log.warning("flowjit: FLOWJIT_EXECUTABLE_CACHE_SIZE=%r is not an integer; using %d",
                    text, DEFAULT_EXECUTABLE_CACHE_SIZE)
        return DEFAULT_EXECUTABLE_CACHE_SIZE


_tokens = itertools.count()
_use_clock = itertools.count()
_EXECUTABLES = _ExecutableCache(_capacity_from_environment())


def set_executable_cache_size(size: int) -> None:
    """Keep at most `size` compiled executables over all jitted functions (least recently
    used go first; FLOWJIT_EXECUTABLE_CACHE_SIZE sets it at startup, default 512)."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"the executable cache size must be a positive int, got {size!r}")
    _EXECUTABLES.resize(size)


def executable_cache_size() -> int:
    """The most compiled executables kept at once (see `set_executable_cache_size`)."""
    return _EXECUTABLES.capacity


def clear_caches() -> None:
    """Drop every jitted function's traces and executables, as `jax.clear_caches()`."""
    for owner in _EXECUTABLES.owners():
        owner.clear_cache()


def _hashable(value: Any, what: str) -> Any:
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{what} is not hashable: {type(value).__name__}") from None
    return value


def _statics_key(static: dict, static_kw: dict, kw_names: tuple) -> tuple:
    """The part of a cache key that is not shapes: static values and keyword names
    (empty when there are none, as the warm path assumes)."""
    if not static_kw and not kw_names:
        return tuple(sorted(static.items()))
    return ("keywords", tuple(sorted(static.items())), tuple(sorted(static_kw.items())),
            kw_names)


def _describe_statics(statics: tuple) -> str:
    if statics and statics[0] == "keywords":
        _, positional, keywords, _ = statics
        return str({**dict(positional), **dict(keywords)})
    return str(dict(statics))


def _infer_static_arguments(fun: Callable, argnums: tuple,
                            argnames: tuple) -> tuple[tuple, tuple]:
    """JAX's rule: given only static_argnums (or only static_argnames), the signature of
    `fun` supplies the names (or positions) of the same parameters; given both, both are
    used as they are."""
    argnums = tuple(sorted(set(argnums)))
    if (argnums and argnames) or (not argnums and not argnames):
        return argnums, tuple(argnames)
    try:
        parameters = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return argnums, tuple(argnames)
    positional = [p.name for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if argnums:
        names = tuple(parameters[i].name for i in argnums if i < len(parameters)
                      and parameters[i].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return argnums, names
    numbers = tuple(sorted(positional.index(name) for name in argnames if name in positional
                           and parameters[positional.index(name)].kind
                           == inspect.Parameter.POSITIONAL_OR_KEYWORD))
    return numbers, tuple(argnames)


_ARRAY_TYPES = (np.ndarray, Array)


def _array_key(args: tuple) -> Optional[tuple]:
    """(shape, dtype) of each argument when all are arrays, else None (the general path)."""
    key: list = [x64_enabled(), cpu_feature_set()]
    for a in args:
        if type(a) not in _ARRAY_TYPES:
            return None
        key.append((a.shape, a.dtype))
    return tuple(key)


def _quick_spec(leaf: Any) -> ArgSpec:
    """spec_of without the error-message work, for the common leaf types."""
    if type(leaf) is np.ndarray or isinstance(leaf, np.ndarray):
        return ArgSpec(leaf.shape, canonicalize_dtype(leaf.dtype), False)
    if type(leaf) in (float, int, bool):
        return ArgSpec((), canonicalize_dtype(np.asarray(leaf).dtype), True)
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
        elif tree.registered_children(value) is not None:   # a registered class
            for i, v in enumerate(tree.registered_children(value)):
                walk(v, f"{label}<{i}>")
        elif value is not None:
            labels.append(label)
    for value, name in zip(dynamic, names):
        walk(value, name)
    return labels


def jit(fun: Optional[Callable] = None, *, static_argnums: Any = (),
        static_argnames: Any = (), opt_level: Optional[int] = None,
        device: Optional[str] = None) -> Any:
    """Compile `fun` with flowjit; usable as `@jit` or `@jit(static_argnums=...)`.

    Keyword arguments are dynamic (traced) unless named in `static_argnames`; as in JAX,
    static_argnums and static_argnames name each other's parameters through the signature.
    `opt_level` 0 runs no passes (one kernel per instruction), 2 (the default) all of them;
    FLOWJIT_OPT_LEVEL changes the default, e.g. to run a whole test suite unoptimized.
    `device` ("cpu", "cuda", "cuda:1") defaults to FLOWJIT_DEVICE, else the CPU."""
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    if isinstance(static_argnames, str):
        static_argnames = (static_argnames,)
    if opt_level is None:
        opt_level = int(os.environ.get("FLOWJIT_OPT_LEVEL", "2"))
    if device is None:
        device = os.environ.get("FLOWJIT_DEVICE") or None
    if fun is None:
        return lambda f: Jitted(f, static_argnums, opt_level, device, static_argnames)
    return Jitted(fun, static_argnums, opt_level, device, static_argnames)
