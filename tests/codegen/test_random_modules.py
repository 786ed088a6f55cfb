"""Random well-typed modules compiled for the CPU agree with the reference semantics.

The modules come from tests/ir/hlo_strategies.py (about 60 opcodes, all 13 element types,
special values); ir.reference, itself checked against hand-computed values, is the oracle.
Integers and predicates must match bit for bit; floats to a few ulp (libm differences), and
bf16 / f16 more loosely, since the CPU keeps their intermediates in f32 registers.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings

from flowjit.ir.reference import evaluate
from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from flowjit.runtime.executable import compile_module
from tests.ir.hlo_strategies import modules_with_args

_TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5,
              np.dtype(np.float16): 2e-2}


def _leaves(value):
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [np.asarray(value)]


def _close(got: np.ndarray, want: np.ndarray, where: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, where
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=where)
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=where)
    tol = _TOLERANCE.get(want.dtype, 6e-2)  # bf16
    finite = np.isfinite(w) & np.isfinite(g)
    np.testing.assert_array_equal(g[~finite & ~np.isnan(w)], w[~finite & ~np.isnan(w)],
                                  err_msg=where)
    scale = np.maximum(np.abs(w[finite]), 1.0)
    assert np.all(np.abs(g[finite] - w[finite]) <= tol * scale), where


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules_with_args())
def test_compiled_module_matches_reference(case):
    module, args = case
    with np.errstate(all="ignore"):
        expected = _leaves(evaluate(module, args))
    got = compile_module(module)(*args)
    assert len(got) == len(expected)
    for k, (g, w) in enumerate(zip(got, expected)):
        _close(g, w, f"output {k} of\n{module.to_text()}")


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules_with_args())
def test_optimized_module_matches_reference(case):
    """The whole O2 pipeline (simplify, fold, CSE, DCE, fusion, buffers) keeps results."""
    module, args = case
    with np.errstate(all="ignore"):
        expected = _leaves(evaluate(module, args))
    optimized, _ = optimize(parse_module(module.to_text()), opt_level=2, verify=True)
    got = compile_module(optimized)(*args)
    assert len(got) == len(expected)
    for k, (g, w) in enumerate(zip(got, expected)):
        _close(g, w, f"output {k} of\n{module.to_text()}")
