"""The host CPU target: LLVM optimization for this machine's real features, machine code."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import llvmlite.binding as llvm

from flowjit.codegen import compile_workers, lapack_symbols
from flowjit.codegen.llvm_target import (host_target_machine, initialize, object_code, optimize,
                                         selected_cpu_features, target_features)

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _initialize() -> None:
    initialize()
    # Kernels call libm (tanhf, erff, expm1, ...), and LLVM may lower an operation to a
    # builtin of libgcc (__truncsfhf2 on a CPU without F16C, ...): make their symbols
    # visible to the JIT, which otherwise jumps to address 0.
    for name in ("m", "gcc_s"):
        library = ctypes.util.find_library(name)
        if library:
            llvm.load_library_permanently(library)


_support_engines: list = []   # never freed: helper threads may run this code at any time


@functools.lru_cache(maxsize=1)
def _parallel_support() -> None:
    """Compile the helper threads' entry (codegen/parallel.py) once, keep it for the life of
    the process, and make its symbol visible to every program the JIT links."""
    from flowjit.codegen.parallel import POST_SYMBOL, WORKER_SYMBOL, worker_module
    _initialize()
    with _lock:
        module_ref = llvm.parse_assembly(worker_module(llvm.get_process_triple()),
                                         context=llvm.create_context())
        module_ref.verify()
        engine = llvm.create_mcjit_compiler(module_ref, host_target_machine())
        engine.finalize_object()
        _support_engines.append((engine, module_ref))
        llvm.add_symbol(WORKER_SYMBOL, engine.get_function_address(WORKER_SYMBOL))
        llvm.add_symbol(POST_SYMBOL, engine.get_function_address(POST_SYMBOL))


@functools.lru_cache(maxsize=1)
def host_triple() -> str:
    _initialize()
    return llvm.get_process_triple()


@functools.lru_cache(maxsize=1)
def host_data_layout() -> str:
    # Computed once: asking a target machine for its TargetData twice aborts in llvmlite.
    return str(host_target_machine().target_data)


@dataclass
class MachineCode:
    """JIT-compiled LLVM modules kept alive, with the address of `entry`."""

    engine: object
    entry_address: int
    texts: list
    opt_level: int
    features: str   # the LLVM feature string the code was built with
    timings: dict = field(default_factory=dict)

    @functools.cached_property
    def optimized_ir(self) -> str:
        """The optimized LLVM IR (recomputed on request: parts may be optimized elsewhere)."""
        out = []
        with _lock:
            for text in self.texts:
                module_ref = llvm.parse_assembly(text, context=llvm.create_context())
                if self.opt_level:
                    optimize(module_ref, host_target_machine(self.features), self.opt_level)
                out.append(str(module_ref))
        return "\n".join(out)

    @functools.cached_property
    def assembly(self) -> str:
        """The machine code as assembly text, built again as it was (same features)."""
        out = []
        with _lock:
            for text in self.texts:
                module_ref = llvm.parse_assembly(text, context=llvm.create_context())
                tm = host_target_machine(self.features)
                if self.opt_level:
                    optimize(module_ref, tm, self.opt_level)
                out.append(tm.emit_assembly(module_ref))
        return "\n".join(out)


def host_target_description() -> str:
    """Everything about this machine and the selected CPU feature set that changes the
    machine code (a cache key part)."""
    return _target_description(selected_cpu_features())


@functools.lru_cache(maxsize=None)
def _target_description(feature_set: str) -> str:
    _initialize()
    return " ".join([llvm.get_process_triple(), llvm.get_host_cpu_name(),
                     target_features(feature_set), str(llvm.llvm_version_info)])


def compile_jobs() -> int:
    """How many processes may compile LLVM modules at once: the usable cores, or
    FLOWJIT_COMPILE_JOBS (1 compiles everything in this process)."""
    if "FLOWJIT_COMPILE_JOBS" in os.environ:
        return max(1, int(os.environ["FLOWJIT_COMPILE_JOBS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def compile_llvm_ir(texts: Union[str, Sequence[str]], opt_level: int = 3,
                    object_code: Optional[bytes] = None,
                    save_object: Optional[Callable[[bytes], None]] = None) -> MachineCode:
    """Optimize and compile LLVM IR texts that link into one program (`entry` in the first)
    and load their machine code; returns the entry address.

    Several texts are compiled in parallel: all but the first by compile workers (other
    processes: llvmlite serializes LLVM calls within one), as XLA:CPU splits a module across
    threads.
    With `object_code` (from a cache) LLVM's work is skipped; `save_object` receives the
    object code that was generated otherwise. The code is built for the selected CPU
    feature set (`llvm_target.select_cpu_features`)."""
    _initialize()
    _parallel_support()
    features = target_features(selected_cpu_features())
    texts = [texts] if isinstance(texts, str) else list(texts)
    lapack_symbols.bind_symbols_in(texts)
    timings: dict = {}
    objects = unpack_objects(object_code, len(texts)) if object_code is not None else None
    with _lock:
        if objects is None:
            objects = _compile_parts(texts, opt_level, features, timings)
            if save_object is not None:
                save_object(pack_objects(objects))
        start = time.perf_counter()
        tm = host_target_machine(features)
        host = llvm.parse_assembly(f'target triple = "{host_triple()}"')
        engine = llvm.create_mcjit_compiler(host, tm)
        for obj in objects:
            engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        address = engine.get_function_address("entry")
        timings["link"] = time.perf_counter() - start
    if not address:
        raise RuntimeError("compiled code has no `entry` function")
    return MachineCode(engine, address, texts, opt_level, features, timings)


def _compile_parts(texts: list[str], opt_level: int, features: str,
                   timings: dict) -> list[bytes]:
    """Object code for each text: the first here, the others by the compile workers
    meanwhile (or here too, for any they do not deliver)."""
    wait = compile_workers.compile_texts(texts[1:], opt_level, features)
    objects = [object_code(texts[0], opt_level, timings, features)]
    start = time.perf_counter()
    for text, obj in zip(texts[1:], wait()):
        objects.append(obj if obj is not None else object_code(text, opt_level,
                                                               features=features))
    if len(texts) > 1:
        timings["wait_for_parts"] = time.perf_counter() - start
    return objects


def start_compile_workers() -> None:
    """Start the worker processes now, so they are ready when a large module is."""
    jobs = compile_jobs()
    if jobs > 1:
        compile_workers.start(jobs - 1)


_MAGIC = b"flowjit-objects-1\n"


def pack_objects(objects: list[bytes]) -> bytes:
    """Several object files as one cache entry."""
    head = struct.pack(f"<I{len(objects)}Q", len(objects), *map(len, objects))
    return _MAGIC + head + b"".join(objects)


def unpack_objects(blob: bytes, expected: int) -> Optional[list[bytes]]:
    """The object files of `pack_objects`, or None if `blob` is not `expected` of them."""
    if not blob.startswith(_MAGIC):
        return None
    body = blob[len(_MAGIC):]
    if len(body) < 4:
        return None
    (count,) = struct.unpack_from("<I", body)
    if count != expected or len(body) < 4 + 8 * count:
        return None
    sizes = struct.unpack_from(f"<{count}Q", body, 4)
    offset, objects = 4 + 8 * count, []
    for size in sizes:
        objects.append(body[offset:offset + size])
        offset += size
    return objects if offset == len(body) and all(len(o) for o in objects) else None
