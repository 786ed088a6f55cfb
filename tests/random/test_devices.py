"""The same random bits and the same loops on the CUDA backend: its kernels run on the
emulated device (tests/cuda/emulator.py) here, and on a real GPU under the `gpu` mark."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import cond, random, scan
from flowjit.ir.parser import parse_module
from flowjit.passes import optimize

emulator = pytest.importorskip("tests.cuda.helpers")


def draws(key):
    # One threefry stream (CSE shares it), read as bits and as scaled floats.
    return random.bits(key, (37,)), random.uniform(key, (37,), minval=-1.0, maxval=4.0)


def shuffle(key):
    return random.permutation(key, 9)  # sorts by random keys: compares, a reduction and a scatter


def loops(xs, w):
    def step(c, x):
        return fnp.tanh(c * w + x), cond(x.sum() > 0, lambda: c.sum(), lambda: -c.sum())
    return scan(step, np.zeros(3, np.float32), xs)


CASES = {"draws": (draws, lambda: [random.key(5)]),
         "permutation": (shuffle, lambda: [random.key(6)]),
         "scan with cond": (loops, lambda: [np.random.default_rng(0).standard_normal(
             (6, 3)).astype(np.float32), np.float32(0.7)])}


@pytest.mark.parametrize("name", sorted(CASES))
def test_emulated_cuda_kernels_match_the_cpu(name):
    f, make_args = CASES[name]
    args = [np.asarray(a) for a in make_args()]
    module, _ = optimize(parse_module(flowjit.jit(f).lower(*args).as_text()), opt_level=2)
    got, _ = emulator.run_emulated(module, args)
    cpu = flowjit.jit(f)(*args)
    assert_same_bits(got, flowjit.tree.flatten(cpu)[0])


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_matches_the_cpu(name):
    f, make_args = CASES[name]
    args = make_args()
    gpu = flowjit.tree.flatten(flowjit.jit(f, device="cuda")(*args))[0]
    cpu = flowjit.tree.flatten(flowjit.jit(f)(*args))[0]
    assert_same_bits(gpu, cpu)


def assert_same_bits(got, cpu):
    """Integers and exactly rounded float steps bit for bit; tanh may differ by an ulp."""
    for g, c in zip(got, cpu):
        if np.asarray(c).dtype.kind == "f":
            np.testing.assert_allclose(g, c, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, c)
