"""Compiling one module as several LLVM modules in worker processes: same results as numpy,
and every failure of a worker falls back to compiling here."""
import logging
import sys

import numpy as np
from hypothesis import given, strategies as st

import flowjit
import flowjit.numpy as fnp
from flowjit.codegen import compile_workers
from flowjit.codegen.cpu import pack_objects, unpack_objects


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=5))
def test_packed_objects_round_trip(objects):
    assert unpack_objects(pack_objects(objects), len(objects)) == objects


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=5),
       st.integers(min_value=1, max_value=10_000))
def test_a_truncated_or_miscounted_entry_is_refused(objects, cut):
    blob = pack_objects(objects)
    assert unpack_objects(blob[:max(0, len(blob) - cut)], len(objects)) is None
    assert unpack_objects(blob, len(objects) + 1) is None


def many_kernels(x, w):
    # Several dots and transcendental chains: a module large enough to be split (each step
    # with its own constant, so the steps' kernels differ and are not shared).
    for k in range(4):
        x = fnp.tanh(x @ w) * fnp.exp(-x * x) + fnp.log1p(fnp.abs(x)) * (1.0 + k / 8)
    return x


def many_kernels_numpy(x, w):
    for k in range(4):
        x = np.tanh(x @ w) * np.exp(-x * x) + np.log1p(np.abs(x)) * np.float32(1.0 + k / 8)
    return x


def _args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((64, 64)).astype(np.float32),
            (rng.standard_normal((64, 64)) / 8).astype(np.float32))


def _compile(monkeypatch, jobs: str):
    monkeypatch.setenv("FLOWJIT_COMPILE_JOBS", jobs)
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    return flowjit.jit(many_kernels).lower(*_args()).compile()


def test_a_module_split_across_workers_matches_numpy(monkeypatch):
    compiled = _compile(monkeypatch, "3")
    assert "wait_for_parts" in compiled.timings      # it really was compiled in parts
    np.testing.assert_allclose(compiled(*_args()), many_kernels_numpy(*_args()),
                               rtol=2e-5, atol=2e-5)


def test_parts_whose_worker_died_are_compiled_here(monkeypatch):
    compile_workers.start(2)
    for worker in compile_workers._workers:
        worker.process.kill()
        worker.process.wait()
    monkeypatch.setattr(compile_workers, "start", lambda count: None)   # no replacements
    assert compile_workers.compile_texts(["anything"], 2)() == [None]
    compiled = _compile(monkeypatch, "3")
    assert "wait_for_parts" in compiled.timings
    np.testing.assert_allclose(compiled(*_args()), many_kernels_numpy(*_args()),
                               rtol=2e-5, atol=2e-5)


def test_a_worker_reports_bad_ir_and_goes_on():
    compile_workers.start(1)
    wait = compile_workers.compile_texts(
        ["this is not LLVM IR", "define void @f() {\n  ret void\n}\n"], 2)
    bad, good = wait()
    assert bad is None
    assert good is not None and good[:4] in (b"\x7fELF", b"\xcf\xfa\xed\xfe")
    assert compile_workers.running() >= 1


def test_one_job_compiles_everything_here(monkeypatch):
    compiled = _compile(monkeypatch, "1")
    assert "wait_for_parts" not in compiled.timings
    np.testing.assert_allclose(compiled(*_args()), many_kernels_numpy(*_args()),
                               rtol=2e-5, atol=2e-5)


def test_a_worker_runs_as_a_module_of_the_installed_package():
    assert compile_workers.WORKER_COMMAND[1:] == ["-m", "flowjit.codegen.llvm_worker"]
    compile_workers.start(1)
    (good,) = compile_workers.compile_texts(["define void @f() {\n  ret void\n}\n"], 2)()
    assert good is not None       # it started, compiled and answered


def test_a_worker_that_dies_at_start_is_logged_once(monkeypatch, caplog):
    compile_workers.stop()
    monkeypatch.setattr(compile_workers, "WORKER_COMMAND", [
        sys.executable, "-c", "import sys; sys.stderr.write('cannot start'); sys.exit(3)"])
    monkeypatch.setattr(compile_workers, "_death_logged", False)
    try:
        with caplog.at_level(logging.WARNING, logger="flowjit"):
            compile_workers.start(2)
            for worker in compile_workers._workers:
                worker.process.wait()
            compile_workers.start(2)      # finds them dead: says so, once
            for worker in compile_workers._workers:
                worker.process.wait()
            compile_workers.start(2)
        warnings = [r.getMessage() for r in caplog.records if r.name == "flowjit"]
        assert len(warnings) == 1
        assert "exited with status 3" in warnings[0] and "cannot start" in warnings[0]
    finally:
        compile_workers.stop()
