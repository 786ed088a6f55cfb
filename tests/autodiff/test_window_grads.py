"""Gradients of reduce-window (sum, max, min pooling), select-and-scatter and the cumulative
ops: against float64 central differences and against jax.grad, first and second order,
eagerly and compiled. Cases are written once against a library namespace (gradient_cases.Lib)
so the same function runs on flowjit and on JAX."""
from __future__ import annotations

import numpy as np
import pytest

import flowjit
from tests.autodiff.gradient_cases import flowjit_lib, jax_lib

jax = pytest.importorskip("jax")

pytestmark = pytest.mark.usefixtures("x64")


def _sum_pool(lib, x):
    return lib.lax.reduce_window(x, 0.0, lib.lax.add, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")


def _max_pool(lib, x):
    return lib.lax.reduce_window(x, -np.inf, lib.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")


def _min_pool_padded(lib, x):
    return lib.lax.reduce_window(x, np.inf, lib.lax.min, (1, 2, 3, 1), (1, 1, 2, 1),
                                 ((0, 0), (1, 0), (0, 2), (0, 0)))


def _dilated_sum(lib, x):
    return lib.lax.reduce_window(x, 0.0, lib.lax.add, (1, 2, 2, 1), (1, 2, 1, 1),
                                 ((0, 0), (1, 0), (0, 2), (0, 0)), (1, 2, 1, 1), (1, 1, 2, 1))


def _base_dilated_max(lib, x):
    return lib.lax.reduce_window(x, -np.inf, lib.lax.max, (1, 2, 2, 1), (1, 1, 1, 1),
                                 "VALID", (1, 2, 2, 1))


# name -> (function of (lib, x), shape of x, differentiation orders checked)
CASES = {
    "sum_pool": (_sum_pool, (2, 7, 6, 2), (1, 2)),
    "max_pool": (_max_pool, (2, 7, 6, 2), (1, 2)),
    "min_pool_padded": (_min_pool_padded, (1, 5, 6, 2), (1,)),
    "dilated_sum": (_dilated_sum, (1, 6, 7, 2), (1, 2)),
    "base_dilated_max": (_base_dilated_max, (1, 4, 5, 1), (1,)),
    "cumsum": (lambda lib, x: lib.lax.cumsum(x, axis=1), (3, 6), (1, 2)),
    "cumsum_reverse": (lambda lib, x: lib.lax.cumsum(x, axis=0, reverse=True), (5, 2), (1,)),
    # Second order through the associative scan compiles slowly: marked slow below.
    "cumprod": (lambda lib, x: lib.lax.cumprod(x, axis=1), (3, 5), (1,)),
    "cummax": (lambda lib, x: lib.lax.cummax(x, axis=0), (5, 2), (1,)),
    "cummin_reverse": (lambda lib, x: lib.lax.cummin(x, axis=1, reverse=True), (2, 5), (1,)),
    "cumlogsumexp": (lambda lib, x: lib.lax.cumlogsumexp(x, axis=1), (2, 5), (1,)),
    "numpy_cumsum": (lambda lib, x: lib.np.cumsum(x), (3, 4), (1,)),
}


def _scalar(lib, case: str, weights: np.ndarray):
    fn = CASES[case][0]
    return lambda x: lib.np.sum(lib.np.sin(fn(lib, x)) * weights)


def _args(case: str):
    rng = np.random.default_rng(abs(hash(case)) % 2 ** 32)
    x = rng.uniform(0.5, 1.5, CASES[case][1])
    probe = flowjit_lib()
    out_shape = np.shape(CASES[case][0](probe, x))
    return x, rng.standard_normal(out_shape), rng.standard_normal(x.shape)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_central_differences_in_float64(case):
    x, weights, direction = _args(case)
    f = _scalar(flowjit_lib(), case, weights)
    step = 1e-6
    numeric = (float(f(x + step * direction)) - float(f(x - step * direction))) / (2 * step)
    # Eagerly for the pooling ops; the scans' eager gradients are slow op-by-op.
    grads = [flowjit.jit(flowjit.grad(f))] + ([] if "cum" in case else [flowjit.grad(f)])
    for grad in grads:
        np.testing.assert_allclose(np.sum(np.asarray(grad(x)) * direction), numeric,
                                   rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_jax(case):
    x, weights, direction = _args(case)
    want = jax.jit(jax.grad(_scalar(jax_lib(), case, weights)))(x)
    got = flowjit.jit(flowjit.grad(_scalar(flowjit_lib(), case, weights)))(x)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if 2 in CASES[case][2]:
        _check_second_order(case, x, weights, direction)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["cumprod", "cumlogsumexp"])
def test_second_order_through_the_associative_scan_matches_jax(case):
    _check_second_order(case, *_args(case))


def _check_second_order(case, x, weights, direction):
    # Second order: the gradient of <grad f(x), direction> (a Hessian-vector product).
    def hvp(lib, grad):
        f = _scalar(lib, case, weights)
        return grad(lambda x: lib.np.sum(grad(f)(x) * direction))
    want = jax.jit(hvp(jax_lib(), jax.grad))(x)
    got = flowjit.jit(hvp(flowjit_lib(), flowjit.grad))(x)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def test_max_pool_gradient_goes_to_the_first_of_equal_maxima():
    # All equal: each window's cotangent lands on its first (top-left) element, as in XLA.
    x = np.ones((1, 4, 4, 1))
    g = flowjit.grad(lambda x: flowjit.numpy.sum(_max_pool(flowjit_lib(), x)))(x)
    np.testing.assert_array_equal(g, jax.grad(lambda x: _max_pool(jax_lib(), x).sum())(x))


def test_select_and_scatter_gradient_gathers_at_the_selected_positions():
    # d/d source of select_and_scatter_add(source, operand): source[w] moves to argmax of
    # window w, so <out, v> has gradient v[argmax(w)]; d/d init is sum(v).
    from flowjit.ir.builder import Builder, scalar_computation
    from flowjit.ir.attributes import window
    from flowjit.ir.dtypes import DType
    from flowjit.ir.module import Module
    from flowjit.ir.shapes import ArrayShape
    from flowjit.passes.vjp import vjp_module
    from flowjit.ir.reference import evaluate
    b = Builder("main")
    f64 = DType.F64
    x = b.parameter(0, ArrayShape(f64, (4, 6)), "x")
    source = b.parameter(1, ArrayShape(f64, (2, 3)), "source")
    init = b.parameter(2, ArrayShape(f64, ()), "init")
    select = Builder("ge", b.names)
    p, q = (select.parameter(0, ArrayShape(f64, ()), "a"),
            select.parameter(1, ArrayShape(f64, ()), "b"))
    ge = select.finish(select.add("compare", [p, q], {"direction": "GE"}))
    add = scalar_computation("add", f64, b.names)
    out = b.add("select-and-scatter", [x, source, init], {"window": window((2, 2), (2, 2))},
                {"select": ge, "scatter": add})
    module = Module("m", b.finish(out), [ge, add])
    backward = vjp_module(module, wrt=[1, 2])
    rng = np.random.default_rng(0)
    xv, sv, v = rng.standard_normal((4, 6)), rng.standard_normal((2, 3)), rng.standard_normal(
        (4, 6))
    grads = evaluate(backward, [xv, sv, np.float64(0.5), v])
    blocks = xv.reshape(2, 2, 3, 2).transpose(0, 2, 1, 3).reshape(2, 3, 4)
    chosen = v.reshape(2, 2, 3, 2).transpose(0, 2, 1, 3).reshape(2, 3, 4)
    want = np.take_along_axis(chosen, blocks.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(grads[-2], want)
    np.testing.assert_allclose(grads[-1], v.sum())


def test_a_generic_reducer_says_it_has_no_gradient():
    f = lambda x: flowjit.numpy.sum(flowjit.lax.reduce_window(  # noqa: E731
        x, 0.0, lambda a, b: a * 0.5 + b, (2,), (1,)))
    with pytest.raises(NotImplementedError, match="only add, maximum and minimum reducers"):
        flowjit.grad(f)(np.arange(4.0))


def test_max_pool_gradient_split_over_threads_by_batch_rows_matches_jax():
    # Large enough for the select-and-scatter kernel to run rows of the batch on several
    # threads (each image's windows write only that image); ties decide by position.
    from flowjit.codegen.parallel import thread_count
    x = np.random.default_rng(7).integers(0, 4, (8, 112, 112, 8)).astype(np.float32)
    fn = flowjit.jit(flowjit.grad(lambda x: flowjit.numpy.sum(
        _max_pool(flowjit_lib(), x) ** 2)))
    kernels = fn.lower(x).compile().executable.kernels
    scatter = [k for k in kernels if "select_and_scatter" in k.name]
    assert len(scatter) == 1
    assert (scatter[0].parallel_rows > 0) == (thread_count() > 1)
    want = jax.jit(jax.grad(lambda x: (_max_pool(jax_lib(), x) ** 2).sum()))(x)
    np.testing.assert_array_equal(fn(x), want)
