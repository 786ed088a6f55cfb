"""Gradients of convolutions, from one spec table over every option (strides, padding, both
dilations, feature and batch groups, layouts, kernel reversal through conv_transpose):
against float64 central finite differences (eagerly) and against jax.grad, first and
second order, through jit (at the default opt level: CI runs the suite at O0 and O2)."""
import numpy as np
import pytest

import flowjit
from flowjit import lax
from tests.autodiff.test_vjp_rules import _scalar, _second
from tests.finite_differences import central_difference
from tests.autodiff.gradient_cases import Case, flowjit_lib, jax_lib

pytestmark = pytest.mark.usefixtures("x64")

FLOWJIT = flowjit_lib()
NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(*args, **kwargs):
    return lambda lib: lambda x, w: lib.lax.conv_general_dilated(x, w, *args, **kwargs)


CASES = [
    Case("nchw-same", _conv((1, 1), "SAME"), ((2, 2, 5, 4), (3, 2, 3, 3))),
    Case("nhwc-strided", _conv((2, 2), ((1, 0), (1, 2)), dimension_numbers=NHWC),
         ((2, 5, 6, 2), (3, 3, 2, 3))),
    Case("lhs-dilated", _conv((1, 2), ((2, 1), (0, 1)), lhs_dilation=(2, 1)),
         ((1, 2, 4, 5), (3, 2, 2, 3))),
    Case("rhs-dilated", _conv((1, 1), "VALID", rhs_dilation=(2, 2)),
         ((2, 2, 6, 6), (2, 2, 2, 3))),
    Case("strided-and-dilated", _conv((2, 1), ((1, 1), (1, 0)), lhs_dilation=(1, 2),
                                      rhs_dilation=(2, 1), dimension_numbers=NHWC),
         ((1, 6, 4, 2), (2, 3, 2, 2))),
    Case("feature-groups", _conv((1, 1), "SAME", feature_group_count=2),
         ((2, 4, 4, 4), (6, 2, 3, 3))),
    Case("depthwise", _conv((2, 2), "SAME", dimension_numbers=NHWC, feature_group_count=3),
         ((1, 5, 5, 3), (3, 3, 1, 6))),
    Case("pure-depthwise", _conv((1, 1), "SAME", feature_group_count=3),
         ((2, 3, 4, 4), (3, 1, 3, 3))),
    Case("batch-groups", _conv((1, 1), "VALID", batch_group_count=2),
         ((4, 3, 4, 4), (4, 3, 2, 2))),
    Case("conv-1d", _conv((2,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")),
         ((2, 7, 2), (3, 2, 3))),
    Case("conv-3d", _conv((1, 2, 1), "SAME"), ((1, 2, 3, 4, 3), (2, 2, 2, 2, 2))),
    Case("transpose-kernel", lambda lib: lambda x, w: lib.lax.conv_transpose(
        x, w, (2, 2), "SAME", transpose_kernel=True), ((1, 3, 3, 2), (3, 3, 3, 2))),
]
BY_NAME = {c.name: c for c in CASES}


def _inputs(case, seed=0):
    rng = np.random.default_rng(seed + len(case.name))
    return [rng.standard_normal(shape) for shape in case.shapes]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_first_order_matches_finite_differences(case):
    xs = _inputs(case)
    f = _scalar(FLOWJIT, case.make(FLOWJIT))
    got = flowjit.grad(f, argnums=(0, 1))(*xs)
    for k in range(2):
        np.testing.assert_allclose(got[k], central_difference(f, xs, k, 1e-6), rtol=1e-6,
                                   atol=1e-7)


def test_second_order_matches_finite_differences():
    case = BY_NAME["nhwc-strided"]
    xs = _inputs(case, seed=7)
    first = _second(FLOWJIT, flowjit.grad, _scalar(FLOWJIT, case.make(FLOWJIT)))
    # d/dx of a bilinear function's gradient in x is a function of w alone: check d/dw.
    analytic = flowjit.grad(first, argnums=1)(*xs)
    np.testing.assert_allclose(analytic, central_difference(first, xs, 1, 1e-5), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_jax_first_and_second_order(case):
    jax = pytest.importorskip("jax")
    theirs_lib = jax_lib()
    xs = _inputs(case, seed=11)
    ours = _scalar(FLOWJIT, case.make(FLOWJIT))
    theirs = _scalar(theirs_lib, case.make(theirs_lib))
    got = flowjit.jit(flowjit.grad(ours, argnums=(0, 1)))(*xs)
    want = jax.jit(jax.grad(theirs, argnums=(0, 1)))(*xs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-10, atol=1e-12)
    got2 = flowjit.jit(flowjit.grad(_second(FLOWJIT, flowjit.grad, ours), argnums=(0, 1)))(*xs)
    want2 = jax.jit(jax.grad(_second(theirs_lib, jax.grad, theirs), argnums=(0, 1)))(*xs)
    for g, w in zip(got2, want2):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-10, atol=1e-12)


def test_float32_gradient_stays_float32():
    case = BY_NAME["feature-groups"]
    xs = _inputs(case, seed=5)
    f = _scalar(FLOWJIT, case.make(FLOWJIT))
    wide = flowjit.grad(f, argnums=(0, 1))(*xs)
    narrow = flowjit.jit(flowjit.grad(f, argnums=(0, 1)))(*[x.astype(np.float32) for x in xs])
    for w, n in zip(wide, narrow):
        assert n.dtype == np.float32
        np.testing.assert_allclose(n, w, rtol=1e-4, atol=1e-5)


def test_cotangents_are_convolutions_in_the_traced_graph():
    """The VJP emits IR (convolutions), so the backward pass is compiled like the forward."""
    x, w = np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3))
    text = flowjit.jit(flowjit.grad(lambda x, w: lax.conv(x, w, (1, 1), "SAME").sum(),
                                    argnums=(0, 1))).lower(x, w).as_text()
    assert text.count(" convolution(") == 3   # forward, and one per operand
