"""Loops that hold loops are kept rolled (their copies cost compile time and bought no
speed); results still match numpy, for column and row reductions and 3-D elementwise code."""
import numpy as np

import flowjit
import flowjit.numpy as fnp


def test_outer_loops_are_marked_not_to_unroll_and_results_hold():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((128, 10)).astype(np.float32)
    compiled = flowjit.jit(lambda g: fnp.sum(g * 2.0 + 1.0, axis=0), opt_level=2).lower(
        g).compile()
    np.testing.assert_allclose(compiled(g), (g * 2 + 1).sum(axis=0), rtol=1e-5)
    assert "llvm.loop.unroll.disable" in compiled.executable.llvm_ir


def test_a_single_loop_is_left_to_llvm():
    x = np.linspace(-1, 1, 1000).astype(np.float32)
    compiled = flowjit.jit(lambda x: fnp.tanh(x) * 3.0, opt_level=2).lower(x).compile()
    np.testing.assert_allclose(compiled(x), np.tanh(x) * 3, rtol=2e-6, atol=1e-6)
    assert "llvm.loop.unroll.disable" not in compiled.executable.llvm_ir


def test_nested_elementwise_and_row_reductions_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)

    def f(x):
        return fnp.exp(x) / fnp.sum(fnp.exp(x), axis=-1, keepdims=True), fnp.max(x, axis=1)
    soft, mx = flowjit.jit(f, opt_level=2)(x)
    e = np.exp(x)
    np.testing.assert_allclose(soft, e / e.sum(-1, keepdims=True), rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(mx, x.max(axis=1))
