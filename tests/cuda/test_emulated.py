"""Every kernel kind, run on the emulated device (tests/cuda/emulator.py: the kernels' LLVM IR
on host threads, one per GPU thread), against the reference semantics. This checks kernel
logic (indexing, block reductions, tiling, atomics, the launch program) without a GPU."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from tests.cuda.cases import CASES, fixture_args, fixture_texts, random_args
from tests.cuda.helpers import assert_close, reference, run_emulated
from tests.ir.hlo_strategies import modules_with_args


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_reference(name):
    module = parse_module(CASES[name][1])
    args = random_args(module, seed=1)
    got, _ = run_emulated(module, args)
    assert_close(got, reference(module, args), name)


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("name", sorted(fixture_texts()))
def test_fixture_matches_reference(name, opt_level):
    module, _ = optimize(parse_module(fixture_texts()[name]), opt_level=opt_level)
    args = fixture_args(name)
    got, _ = run_emulated(module, args)
    assert_close(got, reference(module, args), name)


def test_grid_stride_loops_cover_outputs_larger_than_the_grid():
    module = parse_module(CASES["elementwise_transcendentals"][1])   # 1000 elements
    args = random_args(module)
    got, device = run_emulated(module, args, max_blocks=1)            # one block
    assert device.launches == [(device.launches[0][0], (4, 1, 1), (256, 1, 1))]
    assert_close(got, reference(module, args))


def test_reduction_with_a_non_identity_init_counts_it_once():
    module = parse_module(CASES["reduction_short_rows"][1])   # 40 elements, 64 threads
    args = [np.ones((9, 40), np.float32)]
    got, _ = run_emulated(module, args)
    np.testing.assert_array_equal(got[0], np.full(9, 42.0, np.float32))


def test_scatter_with_duplicate_indices_combines_every_update():
    module = parse_module(CASES["scatter_multiply"][1])
    x = np.ones((6, 4), np.float32)
    idx = np.array([[2]] * 9, np.int32)
    v = np.full((9, 4), 2.0, np.float32)
    got, _ = run_emulated(module, [x, idx, v])
    want = np.ones((6, 4), np.float32)
    want[2] = 2.0 ** 9
    np.testing.assert_array_equal(got[0], want)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules_with_args())
def test_random_module_matches_reference(case):
    """About 60 opcodes and all 13 element types, through the CUDA lowering."""
    module, args = case
    got, _ = run_emulated(module, args)
    assert_close(got, reference(module, args), f"of\n{module.to_text()}")
