"""The CUDA runtime without a GPU: clear errors saying what is missing, the device list, and
the program interpreter (transfers, loops, branches, swaps) on the emulated device."""
import sys
import types

import numpy as np
import pytest

import flowjit.runtime.cuda as cuda
from flowjit.codegen.ptx import compile_ptx
from flowjit.ir.parser import parse_module
from tests.cuda.cases import CASES, random_args
from tests.cuda.emulator import EmulatedDevice
from tests.cuda.helpers import assert_close, reference, run_emulated


def _has_gpu() -> bool:
    return cuda.cuda_device_count() > 0


@pytest.fixture
def fresh_driver():
    """Forget the cached driver before and after a test that fakes pycuda."""
    cuda._driver.cache_clear()
    cuda.get_device.cache_clear()
    yield
    cuda._driver.cache_clear()
    cuda.get_device.cache_clear()


def _fake_pycuda(monkeypatch, count: int = 0, init_error: Exception = None) -> None:
    driver = types.ModuleType("pycuda.driver")

    def init():
        if init_error is not None:
            raise init_error
    driver.init = init
    driver.Device = types.SimpleNamespace(count=lambda: count)
    package = types.ModuleType("pycuda")
    package.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)


def test_without_pycuda_the_error_says_to_install_it(monkeypatch, fresh_driver):
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    module = parse_module(CASES["softmax"][1])
    with pytest.raises(cuda.CudaUnavailableError, match="pycuda is not installed"):
        cuda.CudaExecutable(module)
    with pytest.raises(cuda.CudaUnavailableError, match="pycuda is not installed"):
        cuda.device_put(np.ones(3), "cuda:0")
    assert cuda.available_devices() == ["cpu:0"]


def test_without_a_gpu_the_error_says_there_is_none(monkeypatch, fresh_driver):
    _fake_pycuda(monkeypatch, count=0)
    with pytest.raises(cuda.CudaUnavailableError, match="no CUDA device"):
        cuda.get_device("cuda:0")
    assert cuda.available_devices() == ["cpu:0"]


def test_a_broken_driver_is_named(monkeypatch, fresh_driver):
    _fake_pycuda(monkeypatch, init_error=RuntimeError("cuInit failed: no driver"))
    with pytest.raises(cuda.CudaUnavailableError, match="driver failed.*cuInit failed"):
        cuda.get_device("cuda:0")


@pytest.mark.skipif(_has_gpu(), reason="a GPU is present")
def test_jit_on_cuda_without_a_gpu_raises_the_clear_error():
    import flowjit
    with pytest.raises(cuda.CudaUnavailableError, match="pycuda is not installed|no CUDA device"):
        flowjit.jit(lambda x: x + 1, device="cuda")(np.ones(3, np.float32))
    assert flowjit.devices()[0] == "cpu:0"


def test_device_names_are_checked():
    with pytest.raises(ValueError, match="not a CUDA device"):
        cuda.get_device("tpu:0")


def test_device_put_to_cpu_is_a_numpy_array():
    x = cuda.device_put([1.0, 2.0], "cpu:0")
    assert isinstance(x, np.ndarray) and x.tolist() == [1.0, 2.0]


def test_device_arrays_in_and_out():
    module = parse_module(CASES["dot_epilogue"][1])
    program = compile_ptx(module)
    device = EmulatedDevice()
    executable = cuda.CudaExecutable(program, backend=device)
    args = random_args(module)
    on_device = [cuda.device_put(a, backend=device) for a in args]
    outputs = executable.run(*on_device)
    assert isinstance(outputs[0], cuda.DeviceArray) and outputs[0].shape == (130, 90)
    assert_close([np.asarray(outputs[0])], reference(module, args))
    with pytest.raises(ValueError, match="argument 0"):
        executable.run(on_device[1], on_device[1], on_device[2])
    with pytest.raises(TypeError, match="takes 3 arrays"):
        executable(args[0])


SWAP_LOOP = """HloModule swap_loop
%cond {
  %s = (f32[4], f32[4], s32[]) parameter(0)
  %i = s32[] get-tuple-element(%s), index=2
  %n = s32[] constant(3)
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}
%body {
  %s = (f32[4], f32[4], s32[]) parameter(0)
  %a = f32[4] get-tuple-element(%s), index=0
  %b = f32[4] get-tuple-element(%s), index=1
  %i = s32[] get-tuple-element(%s), index=2
  %one = s32[] constant(1)
  %next = s32[] add(%i, %one)
  ROOT %t = (f32[4], f32[4], s32[]) tuple(%b, %a, %next)
}
ENTRY %main {
  %x = f32[4] parameter(0)
  %y = f32[4] parameter(1)
  %zero = s32[] constant(0)
  %init = (f32[4], f32[4], s32[]) tuple(%x, %y, %zero)
  ROOT %w = (f32[4], f32[4], s32[]) while(%init), condition=%cond, body=%body
}
"""


def test_loop_state_that_swaps_is_copied_through_scratch():
    module = parse_module(SWAP_LOOP)
    args = [np.arange(4, dtype=np.float32), -np.arange(4, dtype=np.float32)]
    got, _ = run_emulated(module, args)
    np.testing.assert_array_equal(got[0], args[1])   # three swaps
    np.testing.assert_array_equal(got[1], args[0])
    assert int(got[2]) == 3


def test_selector_out_of_range_takes_the_last_branch():
    text = """HloModule switch
%b0 {
  %x = f32[3] parameter(0)
  ROOT %n = f32[3] negate(%x)
}
%b1 {
  %x = f32[3] parameter(0)
  ROOT %e = f32[3] exponential(%x)
}
%b2 {
  %x = f32[3] parameter(0)
  ROOT %c = f32[3] copy(%x)
}
ENTRY %main {
  %k = s32[] parameter(0)
  %x = f32[3] parameter(1)
  ROOT %r = f32[3] conditional(%k, %x, %x, %x), branch_computations={%b0, %b1, %b2}
}
"""
    module = parse_module(text)
    x = np.array([0.0, 1.0, 2.0], np.float32)
    for k in (-1, 0, 1, 2, 7):
        got, _ = run_emulated(module, [np.int32(k), x])
        assert_close(got, reference(module, [np.int32(k), x]), f"k={k}")
