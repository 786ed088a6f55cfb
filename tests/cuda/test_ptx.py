"""PTX for every kernel kind, assembled by ptxas (skipped, not passed, without ptxas);
on a machine with a GPU (mark `gpu`), results must equal the CPU's."""
import shutil
import subprocess

import numpy as np
import pytest

import compiler
import compiler.numpy as fnp
from codegen.ptx import compile_ptx

needs_ptxas = pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas not on PATH")

IDX = np.array([3, 0, 1])


def elementwise(x):
    return fnp.tanh(x * 2.0 + 1.0) + fnp.exp(-x) + compiler.lax.erf(x)


def softmax(x):
    e = fnp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dense(x, w):
    return fnp.maximum(x @ w + 1.0, 0.0)


def shapes_and_ints(x, i):
    return (x[i], fnp.pad(x, ((1, 0), (0, 2))), fnp.concatenate([x, x[::-1]]),
            (i * 7) // 3 % 5, x.astype(np.float16) * 2, fnp.sin(x.astype(np.float64)))


CASES = {
    "elementwise": (elementwise, [np.ones((8, 16), np.float32)]),
    "softmax": (softmax, [np.ones((8, 32), np.float32)]),
    "dot-epilogue": (dense, [np.ones((4, 8), np.float32), np.ones((8, 16), np.float32)]),
    "gather-pad-concat-int-f16-f64": (shapes_and_ints, [np.ones((4, 5), np.float32), IDX]),
}


def _ptx(name: str, arch: str) -> str:
    fn, args = CASES[name]
    module = compiler.jit(fn).lower(*args).compile().module
    return compile_ptx(module, arch).ptx


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_ptx_assembles(name, arch, tmp_path):
    ptx = _ptx(name, arch)
    assert ".entry kernel_0" in ptx and f".target {arch}" in ptx
    path = tmp_path / f"{name}.ptx"
    path.write_text(ptx)
    result = subprocess.run(["ptxas", "-arch=sm_90", str(path), "-o", str(tmp_path / "k.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_asking_for_cuda_without_a_gpu_says_what_is_missing():
    try:
        import pycuda.driver as driver
        driver.init()
        if driver.Device.count():
            pytest.skip("a GPU is present")
    except Exception:
        pass
    from runtime.cuda import CudaUnavailableError
    with pytest.raises(CudaUnavailableError, match="pycuda is not installed|no CUDA device"):
        compiler.jit(lambda x: x + 1, device="cuda")(np.ones(3, np.float32))
    assert compiler.devices()[0] == "cpu:0"


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_matches_cpu(name):
    fn, args = CASES[name]
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(a.shape).astype(a.dtype) if a.dtype.kind == "f" else a
            for a in args]
    cpu = compiler.jit(fn)(*args)
    gpu = compiler.jit(fn, device="cuda")(*args)
    for c, g in zip(compiler.tree.flatten(cpu)[0], compiler.tree.flatten(gpu)[0]):
        np.testing.assert_allclose(np.asarray(g), np.asarray(c), rtol=1e-5, atol=1e-6)
