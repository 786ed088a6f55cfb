"""On a CUDA GPU (mark `gpu`; skipped without pycuda and a GPU): every kernel kind, the
fixtures and random modules agree with the reference semantics, and jit(device="cuda")
agrees with the CPU."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from tests.cuda.cases import CASES, fixture_args, fixture_texts, random_args
from tests.cuda.helpers import assert_close, reference
from tests.ir.hlo_strategies import modules_with_args

pytestmark = pytest.mark.gpu


def run_on_gpu(module, args):
    from flowjit.runtime.cuda import CudaExecutable
    return CudaExecutable(module, "cuda:0")(*args)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_reference(name):
    module = parse_module(CASES[name][1])
    args = random_args(module, seed=2)
    assert_close(run_on_gpu(module, args), reference(module, args), name)


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("name", sorted(fixture_texts()))
def test_fixture_matches_reference(name, opt_level):
    module, _ = optimize(parse_module(fixture_texts()[name]), opt_level=opt_level)
    args = fixture_args(name)
    assert_close(run_on_gpu(module, args), reference(module, args), name)


@pytest.mark.parametrize("rows,cols", [(1, 100_000), (3000, 700), (50_000, 33)])
def test_large_softmax(rows, cols):
    text = CASES["softmax"][1].replace("7,300", f"{rows},{cols}").replace(
        "f32[7]", f"f32[{rows}]")
    module = parse_module(text)
    x = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    assert_close(run_on_gpu(module, [x]), reference(module, [x]))


def test_large_dot_epilogue():
    text = CASES["dot_epilogue"][1].replace("130", "1000").replace("70", "513").replace(
        "90", "777")
    module = parse_module(text)
    args = random_args(module, seed=3)
    got = run_on_gpu(module, args)[0]
    want = reference(module, args)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules_with_args())
def test_random_module_matches_reference(case):
    module, args = case
    assert_close(run_on_gpu(module, args), reference(module, args), f"of\n{module.to_text()}")


def test_jit_on_cuda_matches_cpu():
    import flowjit
    import flowjit.numpy as fnp

    def f(x, w):
        h = fnp.maximum(x @ w + 1.0, 0.0)
        e = fnp.exp(h - h.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    w = rng.standard_normal((32, 128)).astype(np.float32)
    cpu = flowjit.jit(f)(x, w)
    gpu = flowjit.jit(f, device="cuda")(x, w)
    np.testing.assert_allclose(np.asarray(gpu), np.asarray(cpu), rtol=1e-5, atol=1e-6)


def test_device_put_round_trip():
    from flowjit.runtime.cuda import device_put
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(np.asarray(device_put(x, "cuda:0")), x)
