"""Executables free their machine code and buffers when dropped, and a bounded cache of
executables keeps a long-running process from growing with every new shape."""
import gc
import os
import weakref

import llvmlite.binding as llvm
import numpy as np
import pytest

import flowjit
import flowjit.jitted as jitted
import flowjit.numpy as fnp


@pytest.fixture
def cache_size():
    """Set the executable cache size for one test, restoring it afterwards."""
    before = jitted.executable_cache_size()
    yield jitted.set_executable_cache_size
    jitted.set_executable_cache_size(before)


@pytest.fixture
def disposed_engines(monkeypatch):
    """A list that grows by one each time LLVM disposes of an execution engine."""
    disposed = []
    original = llvm.ExecutionEngine._dispose

    def dispose(engine):
        disposed.append(id(engine))
        original(engine)
    monkeypatch.setattr(llvm.ExecutionEngine, "_dispose", dispose)
    return disposed


def _executable_refs(compiled):
    return weakref.ref(compiled), weakref.ref(compiled.executable._code.engine)


def test_a_dropped_jitted_function_frees_its_machine_code_at_once(disposed_engines):
    x = np.linspace(-1, 1, 5).astype(np.float32)
    gc.collect()
    gc.disable()   # freed by reference counting, not at some later garbage collection
    try:
        f = flowjit.jit(lambda x: fnp.tanh(x) * 3 + 1)
        np.testing.assert_allclose(f(x), np.tanh(x.astype(np.float64)) * 3 + 1, rtol=1e-6)
        compiled_ref, engine_ref = _executable_refs(f.lower(x).compile())
        del f
        assert compiled_ref() is None and engine_ref() is None
    finally:
        gc.enable()
    assert len(disposed_engines) == 1


def test_clear_cache_frees_every_executable(disposed_engines):
    f = flowjit.jit(lambda x: x * 2 + 1)
    refs = []
    for n in range(1, 5):
        x = np.arange(n, dtype=np.float32)
        np.testing.assert_array_equal(f(x), x * 2 + 1)
        refs.append(_executable_refs(f.lower(x).compile()))
    f.clear_cache()
    assert all(c() is None and e() is None for c, e in refs)
    assert len(disposed_engines) == 4
    np.testing.assert_array_equal(f(np.ones(2, np.float32)), [3, 3])   # and compiles again


def test_the_executable_cache_is_bounded_and_keeps_what_is_used(cache_size):
    cache_size(3)
    f = flowjit.jit(lambda x: x - 1)
    hot = np.zeros(1, np.float32)
    f(hot)
    hot_ref = weakref.ref(f.lower(hot).compile())
    refs = []
    for n in range(2, 12):
        x = np.full(n, n, np.float32)
        np.testing.assert_array_equal(f(x), x - 1)
        refs.append(weakref.ref(f.lower(x).compile()))
        np.testing.assert_array_equal(f(hot), [-1])   # used between compiles: kept
    assert sum(r() is not None for r in refs) <= 2
    assert hot_ref() is not None
    traces = f.trace_count
    np.testing.assert_array_equal(f(np.full(2, 2, np.float32)), [1, 1])   # evicted: rebuilt
    assert f.trace_count == traces + 1


def test_the_executable_cache_size_is_checked_and_clear_caches_empties_it(cache_size):
    with pytest.raises(ValueError, match="positive"):
        cache_size(0)
    f = flowjit.jit(lambda x: x + 1)
    f(np.ones(3, np.float32))
    ref = weakref.ref(f.lower(np.ones(3, np.float32)).compile())
    jitted.clear_caches()
    assert ref() is None


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def test_compiling_many_shapes_does_not_grow_memory_without_bound(cache_size):
    """40 shapes whose executables each keep a 4 MiB output for reuse: 160 MiB if every
    executable stayed alive, a few (and LLVM's own per-compile cost) with a bound of 4."""
    cache_size(4)
    f = flowjit.jit(lambda x: x * 2.0)
    f(np.ones(8, np.float32))
    gc.collect()
    before = _resident_mib()
    for k in range(40):
        x = np.ones((1 << 20) + k, np.float32)
        y = f(x)
        assert y[0] == 2.0 and y[-1] == 2.0
        del x, y
    gc.collect()
    assert _resident_mib() - before < 80
