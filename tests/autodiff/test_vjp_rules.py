"""Every VJP rule from the spec table (gradient_cases.py) against central finite differences
in float64, first and second order, eagerly and through jit; float32 gradients against the
float64 ones; and against jax.grad where JAX is installed."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from tests.autodiff.gradient_cases import CASES, F32, flowjit_lib, jax_lib
from tests.finite_differences import central_difference

# numpy's dtypes, float64 and int64 included: 64-bit types on, as JAX needs for them.
pytestmark = pytest.mark.usefixtures("x64")

FLOWJIT = flowjit_lib()
BY_NAME = {c.name: c for c in CASES}


def _inputs(case, seed=0):
    rng = np.random.default_rng(seed + len(case.name))
    out = []
    for shape in case.shapes:
        x = rng.standard_normal(shape)
        if case.domain == "positive":
            x = np.abs(x) + 0.5
        if case.domain == "small":
            x = x * 0.3
        out.append(x)
    return out


def _scalar(lib, fn):
    """A scalar function of the case: a fixed projection of its (flattened) output."""
    def f(*xs):
        out = lib.np.reshape(fn(*xs), (-1,))
        return lib.np.sum(out * np.linspace(0.5, 1.5, out.shape[0]).astype(out.dtype))
    return f


def _second(lib, grad, f):
    """A scalar of f's gradient (w.r.t. argument 0), to differentiate once more."""
    def first(*xs):
        g = grad(f)(*xs)
        return lib.np.sum(g * np.linspace(1, 2, g.size).reshape(g.shape))
    return first


def _params(order):
    return [pytest.param(c, id=c.name) for c in CASES if order in c.orders]


@pytest.mark.parametrize("case", _params(1))
def test_first_order_matches_finite_differences(case):
    xs = _inputs(case)
    f = _scalar(FLOWJIT, case.make(FLOWJIT))
    argnums = tuple(range(len(xs)))
    eager = flowjit.grad(f, argnums=argnums)(*xs)
    compiled = flowjit.jit(flowjit.grad(f, argnums=argnums))(*xs)
    for k in range(len(xs)):
        expected = central_difference(f, xs, k, 1e-6)
        np.testing.assert_allclose(eager[k], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(compiled[k], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", _params(2))
def test_second_order_matches_finite_differences(case):
    xs = _inputs(case, seed=7)
    first = _second(FLOWJIT, flowjit.grad, _scalar(FLOWJIT, case.make(FLOWJIT)))
    analytic = flowjit.grad(first)(*xs)
    expected = central_difference(first, xs, 0, 1e-5)
    np.testing.assert_allclose(analytic, expected, rtol=1e-4, atol=1e-5)


SECOND_ORDER_JIT = ["dot", "softmax-cross-entropy", "gather", "conditional-true", "scan",
                    "custom-vjp"]


@pytest.mark.parametrize("name", SECOND_ORDER_JIT)
def test_second_order_through_jit_matches_eager(name):
    case = BY_NAME[name]
    xs = _inputs(case, seed=3)
    first = _second(FLOWJIT, flowjit.grad, _scalar(FLOWJIT, case.make(FLOWJIT)))
    np.testing.assert_allclose(flowjit.jit(flowjit.grad(first))(*xs),
                               flowjit.grad(first)(*xs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES
                                  if F32 in c.dtypes])
def test_float32_gradients_stay_float32_and_agree(case):
    xs = _inputs(case, seed=5)
    f = _scalar(FLOWJIT, case.make(FLOWJIT))
    argnums = tuple(range(len(xs)))
    wide = flowjit.grad(f, argnums=argnums)(*xs)
    narrow = flowjit.grad(f, argnums=argnums)(*[x.astype(np.float32) for x in xs])
    for w, n in zip(wide, narrow):
        assert n.dtype == np.float32
        np.testing.assert_allclose(n, w, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_matches_jax(case):
    pytest.importorskip("jax")
    import jax
    theirs_lib = jax_lib()
    xs = _inputs(case, seed=11)
    ours = _scalar(FLOWJIT, case.make(FLOWJIT))
    theirs = _scalar(theirs_lib, case.make(theirs_lib))
    argnums = tuple(range(len(xs)))
    got = flowjit.grad(ours, argnums=argnums)(*xs)
    want = jax.jit(jax.grad(theirs, argnums=argnums))(*xs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-9, atol=1e-12)
    if 2 in case.orders:
        got2 = flowjit.grad(_second(FLOWJIT, flowjit.grad, ours))(*xs)
        want2 = jax.jit(jax.grad(_second(theirs_lib, jax.grad, theirs)))(*xs)
        np.testing.assert_allclose(got2, np.asarray(want2), rtol=1e-9, atol=1e-12)


def test_convert_between_float_types_passes_the_gradient_through():
    # d/dx sum(3 * f64(f32(x))) = 3 exactly (hand-computed; finite differences would only
    # see the f32 rounding steps).
    f = lambda x: fnp.sum(fnp.astype(fnp.astype(x, np.float32), np.float64) * 3.0)  # noqa
    np.testing.assert_array_equal(flowjit.grad(f)(np.array([0.1, 2.0])), [3.0, 3.0])


def test_product_gradient_is_exact_with_zeros():
    # Hand-computed: d/dx_i prod(x) is the product of the others, also where x has zeros.
    g = flowjit.grad(lambda x: fnp.prod(x))
    np.testing.assert_array_equal(g(np.array([0.0, 2.0, 3.0])), [6.0, 0.0, 0.0])
    np.testing.assert_array_equal(g(np.array([0.0, 2.0, 0.0])), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(g(np.array([4.0, 2.0, 3.0])), [6.0, 12.0, 8.0])
