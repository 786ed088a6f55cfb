"""Large kernels split over threads give exactly the single-threaded results."""
import os

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_row_split_kernels_match_numpy(threads, monkeypatch):
    monkeypatch.setenv("FLOWJIT_THREADS", threads)
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1027, 1031)).astype(np.float32)   # rows not divisible

    def f(x):
        e = fnp.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True), fnp.tanh(x) * 2 + 1
    compiled = flowjit.jit(f, opt_level=2).lower(x).compile()
    split = [k.parallel_rows for k in compiled.executable.kernels]
    assert all(s == (0 if threads == "1" else 1027) for s in split)
    softmax, t = compiled(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(softmax, e / e.sum(axis=-1, keepdims=True), rtol=2e-6,
                               atol=1e-9)
    np.testing.assert_allclose(t, np.tanh(x) * 2 + 1, rtol=2e-6, atol=2e-6)


def _blas_threads(library_path: str) -> int:
    import ctypes
    library = ctypes.CDLL(library_path)
    for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                 "openblas_get_num_threads"):
        if hasattr(library, name):
            return getattr(library, name)()
    pytest.skip("this OpenBLAS does not report its thread count")


@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("transposed", [False, True])
def test_blas_products_split_by_rows_across_our_threads(threads, transposed, monkeypatch):
    from flowjit.codegen.blas import blas
    if blas() is None:
        pytest.skip("no BLAS library found")
    monkeypatch.setenv("FLOWJIT_THREADS", threads)
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 257) if transposed else (257, 300)).astype(np.float32)
    b = rng.standard_normal((300, 129)).astype(np.float32)
    bias = rng.standard_normal(129).astype(np.float32)

    def f(a, b, bias):   # a product with a fused epilogue (kOutput), rows not divisible
        product = (a.T if transposed else a) @ b
        return fnp.maximum(product + bias, 0.0)
    compiled = flowjit.jit(f, opt_level=2).lower(a, b, bias).compile()   # one fused kernel
    split = [k.parallel_rows for k in compiled.executable.kernels]
    assert split[-1] == (0 if threads == "1" else 257)   # the product is the last kernel
    a64 = (a.T if transposed else a).astype(np.float64)
    np.testing.assert_allclose(compiled(a, b, bias), np.maximum(a64 @ b + bias, 0),
                               rtol=1e-4, atol=1e-4)


def test_the_blas_runs_one_thread_and_numpys_own_is_untouched():
    # flowjit's BLAS (scipy's OpenBLAS when installed) is held to one thread, so no second
    # pool runs beside flowjit's; numpy's separate copy keeps its own setting.
    import glob
    import os
    from flowjit.codegen.blas import blas
    numpy_libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                        "lib*openblas*.so*"))
    before = _blas_threads(numpy_libs[0]) if numpy_libs else None
    library = blas()
    if library is None:
        pytest.skip("no BLAS library found")
    flowjit.jit(lambda a: a @ a)(np.ones((512, 512), np.float32))
    assert _blas_threads(library.path) == 1
    if numpy_libs and os.path.realpath(numpy_libs[0]) != os.path.realpath(library.path):
        assert _blas_threads(numpy_libs[0]) == before


@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("lhs_shape, rhs_shape, lead", [
    ((64, 20, 128), (128, 64), 1280),    # [B, T, D] @ [D, E]: the B*T rows of one product
    ((4, 50, 3, 64), (64, 160), 600),    # three leading dims merged into the rows
    ((10, 2, 40, 64), (10, 2, 64, 50), 10),  # batched: the batch is split
])
def test_merged_and_batched_products_split_across_threads(threads, lhs_shape, rhs_shape,
                                                           lead, monkeypatch):
    from flowjit.codegen.blas import blas
    if blas() is None:
        pytest.skip("no BLAS library found")
    monkeypatch.setenv("FLOWJIT_THREADS", threads)
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    rng = np.random.default_rng(2)
    a = rng.standard_normal(lhs_shape).astype(np.float32)
    b = rng.standard_normal(rhs_shape).astype(np.float32)

    def f(a, b):
        return fnp.tanh(a @ b) * 2.0
    compiled = flowjit.jit(f, opt_level=2).lower(a, b).compile()   # one fused kernel
    assert [k.parallel_rows for k in compiled.executable.kernels] == [
        0 if threads == "1" else lead]
    want = np.tanh(np.matmul(a.astype(np.float64), b)) * 2
    np.testing.assert_allclose(compiled(a, b), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lhs_shape, rhs_shape", [
    ((1000, 700), (700, 513)), ((128, 784), (784, 512)), ((64, 20, 128), (128, 64)),
    ((8, 128, 256), (256, 256)), ((4, 4, 128, 64), (4, 4, 64, 128)), ((9, 70, 512), (512, 30)),
])
def test_results_are_identical_whatever_the_number_of_threads(lhs_shape, rhs_shape,
                                                              monkeypatch):
    # A thread's rows start on OpenBLAS's register tiles, so every element is computed by
    # the same instructions in the same order as on one thread: bit for bit the same.
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    rng = np.random.default_rng(4)
    a = rng.standard_normal(lhs_shape).astype(np.float32)
    b = rng.standard_normal(rhs_shape).astype(np.float32)
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FLOWJIT_THREADS", threads)
        results.append(np.asarray(flowjit.jit(lambda a, b: fnp.tanh(a @ b))(a, b)))
    np.testing.assert_allclose(results[0], np.tanh(np.matmul(a.astype(np.float64), b)),
                               rtol=1e-4, atol=1e-4)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


@pytest.mark.parametrize("lhs_contract, rhs_contract", [((0, 1), (0, 1)), ((1, 2), (0, 1))])
def test_products_contracting_several_adjacent_dims_are_one_blas_product(lhs_contract,
                                                                         rhs_contract):
    # The weight gradient of [B, T, D] @ [D, E] contracts B and T: one [D, B*T] x [B*T, E]
    # product, not a loop over every element.
    from flowjit.codegen.dot import gemm_plan
    rng = np.random.default_rng(5)
    lhs_shape = (6, 40, 32) if lhs_contract == (0, 1) else (32, 6, 40)
    a = rng.standard_normal(lhs_shape).astype(np.float32)
    b = rng.standard_normal((6, 40, 24)).astype(np.float32)
    dims = ((lhs_contract, rhs_contract), ((), ()))
    compiled = flowjit.jit(lambda a, b: flowjit.lax.dot_general(a, b, dims),
                           opt_level=2).lower(a, b).compile()
    dots = [i for c in compiled.module.computations for i in c.instructions
            if i.opcode == "dot"]
    assert dots and all(gemm_plan(d) is not None for d in dots)
    want = np.tensordot(a.astype(np.float64), b, axes=(lhs_contract, rhs_contract))
    np.testing.assert_allclose(compiled(a, b), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lhs_shape, rhs_shape", [((0, 1), (1, 3)), ((2, 0, 4), (4, 5)),
                                                  ((3, 0), (0, 2))])
def test_empty_products_compile_and_match_numpy(lhs_shape, rhs_shape):
    a = np.ones(lhs_shape, np.float32)
    b = np.ones(rhs_shape, np.float32)
    got = flowjit.jit(lambda a, b: a @ b + 1.0, opt_level=2)(a, b)
    np.testing.assert_array_equal(got, np.matmul(a, b) + 1.0)


def test_helpers_that_start_late_outlive_their_program_safely(monkeypatch):
    """More helper threads than cores, and each program freed right after one call: a
    helper the OS runs after its program is gone finds no work and touches none of the
    freed code or memory (the helpers' entry is compiled once per process)."""
    import gc
    from flowjit.jitted import clear_caches
    monkeypatch.setenv("FLOWJIT_THREADS", "8")
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    x = np.linspace(-2, 2, 512 * 1024, dtype=np.float32).reshape(512, 1024)
    for k in range(12):
        scale = np.float32(k + 1)
        out = flowjit.jit(lambda v: fnp.tanh(v * scale) + fnp.exp(-v * v))(x)
        np.testing.assert_allclose(out, np.tanh(x * scale) + np.exp(-x * x), rtol=2e-6,
                                   atol=2e-6)
        del out
        clear_caches()
        gc.collect()


def test_every_row_is_computed_once_whatever_the_chunks(monkeypatch):
    """Rows claimed in chunks by threads that race, for row counts that do and do not divide
    into the chunks: a row no thread computed would hold whatever the buffer held."""
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    for threads in ("2", "3", "5"):
        monkeypatch.setenv("FLOWJIT_THREADS", threads)
        for rows in (7, 64, 1001):
            x = np.arange(rows * 600, dtype=np.float32).reshape(rows, 600)
            got = flowjit.jit(lambda v: fnp.sqrt(v) * 2.0 + fnp.sin(v))(x)
            np.testing.assert_allclose(got, np.sqrt(x) * 2 + np.sin(x), rtol=3e-6, atol=1e-5)


_CORE_TYPE_PROBE = """
import ctypes, os
from flowjit.codegen.blas import blas
library = blas()
lib = ctypes.CDLL(library.path)
name = next(n for n in ("scipy_openblas_get_corename", "openblas_get_corename",
                        "scipy_openblas_get_corename64_") if hasattr(lib, n))
getattr(lib, name).restype = ctypes.c_char_p
print(getattr(lib, name)().decode(), os.environ.get("OPENBLAS_CORETYPE", "<unset>"))
"""


def _avx512_host() -> bool:
    # The oracle is the kernel's own list of the CPU's flags, not LLVM's.
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    return all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl"))


@pytest.mark.parametrize("override", [None, "Haswell"])
def test_the_blas_kernels_follow_the_host_not_numpys_setting(override):
    # An OPENBLAS_CORETYPE meant for numpy's copy (here: AVX2 kernels) must not slow our
    # products on an AVX-512 host, and the environment the user set is left as it was;
    # FLOWJIT_BLAS_CORETYPE still chooses explicitly.
    import subprocess
    import sys
    from flowjit.codegen.blas import blas
    if blas() is None:
        pytest.skip("no BLAS library found")
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    env.pop("FLOWJIT_BLAS_CORETYPE", None)
    if override is not None:
        env["FLOWJIT_BLAS_CORETYPE"] = override
    out = subprocess.run([sys.executable, "-c", _CORE_TYPE_PROBE], env=env, text=True,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    core, left = out.stdout.split()
    assert left == "Haswell"
    want = "haswell" if override or not _avx512_host() else "skylakex"
    assert core.lower() == want


@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.bool_])
def test_reshapes_are_block_copies_split_by_rows(threads, dtype, monkeypatch):
    # A reshape keeps the row-major order of elements, so a thread's rows of the result are
    # the same bytes of the operand.
    monkeypatch.setenv("FLOWJIT_THREADS", threads)
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    x = (np.arange(2000 * 1500) % 7).reshape(2000, 1500).astype(dtype)
    compiled = flowjit.jit(lambda x: x.reshape(1500, 2000)).lower(x).compile()
    np.testing.assert_array_equal(compiled(x), x.reshape(1500, 2000))
    if threads == "3" and dtype is np.float32:
        assert [k.parallel_rows for k in compiled.executable.kernels] == [1500]


def test_launches_from_several_python_threads_share_the_pool_safely(monkeypatch):
    # Four callers post to the same helpers at once: a launch a helper has not taken yet is
    # replaced by the next one (its reference dropped), and its caller runs those chunks
    # itself. Every result must still be whole and right.
    import threading
    monkeypatch.setenv("FLOWJIT_THREADS", "3")
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    x = np.linspace(-2, 2, 2048 * 1024, dtype=np.float32).reshape(2048, 1024)
    a = np.random.default_rng(7).standard_normal((400, 300)).astype(np.float32)
    rowwise = flowjit.jit(lambda v, s: fnp.tanh(v * s) + fnp.exp(-v * v)).lower(
        x, np.float32(1)).compile()
    product = flowjit.jit(lambda m: m @ m.T).lower(a).compile()
    for compiled in (rowwise, product):   # (at opt level 0 a broadcast comes first)
        assert any(k.parallel_rows for k in compiled.executable.kernels)
    want_product = a.astype(np.float64) @ a.T.astype(np.float64)
    failures = []

    def call(k: int) -> None:
        for i in range(10):
            s = np.float32(1 + (k * 10 + i) % 5)
            got = np.asarray(rowwise(x, s))
            if not np.allclose(got, np.tanh(x * s) + np.exp(-x * x), rtol=2e-6, atol=2e-6):
                failures.append(("rowwise", k, i))
            if not np.allclose(product(a), want_product, rtol=1e-4, atol=1e-3):
                failures.append(("product", k, i))
    threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


_FORK_PROBE = """
import os, numpy as np, flowjit, flowjit.numpy as fnp
x = np.linspace(-2, 2, 512 * 1024, dtype=np.float32).reshape(512, 1024)
f = flowjit.jit(lambda v: fnp.tanh(v) + fnp.exp(-v * v))
f(x)  # the parent's pool is started
pid = os.fork()
if pid == 0:
    ok = all(np.allclose(f(x), np.tanh(x) + np.exp(-x * x), rtol=2e-6, atol=2e-6)
             for _ in range(10))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_runs_parallel_kernels_without_the_parents_helpers():
    # The child inherits the pool's state but not its threads: its launches are never
    # taken by a helper, so the caller runs every chunk itself. No hang, right results.
    import subprocess
    import sys
    env = dict(os.environ, FLOWJIT_THREADS="2", FLOWJIT_CACHE_DIR="off")
    out = subprocess.run([sys.executable, "-c", _FORK_PROBE], env=env, text=True,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"]


def test_a_product_with_unit_free_dims_anywhere_is_one_blas_product():
    # vmap of a matrix-vector product gives rhs [B, K, 1] contracted on K: the unit dim
    # takes no room, so it is the transposed matrix [B, K] to BLAS (it ran as loops, 50x
    # slower, in jacfwd of a 256 -> 256 function).
    from flowjit.codegen.dot import gemm_plan
    from flowjit.ir.parser import parse_module
    module = parse_module("""HloModule m
ENTRY e {
  a = f32[64,48] parameter(0)
  b = f32[40,48,1] parameter(1)
  ROOT d = f32[64,40,1] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={1}
}""")
    plan = gemm_plan(module.entry.root)
    assert plan is not None and (plan.m, plan.n, plan.k, plan.rhs_transposed) == (64, 40, 48, True)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 48)).astype(np.float32)
    b = rng.standard_normal((40, 48, 1)).astype(np.float32)
    got = flowjit.jit(lambda a, b: fnp.einsum("ik,jkl->ijl", a, b))(a, b)
    np.testing.assert_allclose(got, np.einsum("ik,jkl->ijl", a.astype(np.float64), b),
                               rtol=1e-4, atol=1e-4)
