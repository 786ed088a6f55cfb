"""Sorting names (flowjit.numpy sort, argsort, lexsort, partition, argpartition,
searchsorted, unique(size=), quantile, percentile, median and nan forms; flowjit.lax sort,
sort_key_val, top_k) against JAX on the same inputs: values eagerly and compiled (NaNs,
ties, signed zeros, integers, axis=None, descending), gradients against jax.grad and float64
central differences, and JAX's signatures."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.lax as flax
import flowjit.numpy as fnp
from flowjit.ir.errors import ShapeError
from tests.finite_differences import central_difference

jax = pytest.importorskip("jax")
jnp = jax.numpy
pytestmark = pytest.mark.usefixtures("no_x64")

RNG = np.random.default_rng(1215)
X = RNG.standard_normal((4, 7)).astype(np.float32)
X[0, 1] = X[2, 4] = np.nan
X[1, 2:5] = 0.25                                  # ties
X[3, 0], X[3, 5] = -0.0, 0.0                      # equal in the sort's order
CUBE = RNG.standard_normal((3, 4, 5)).astype(np.float32)
INTS = RNG.integers(-4, 5, (3, 9)).astype(np.int32)
UINTS = RNG.integers(0, 6, (2, 8)).astype(np.uint32)
TABLE = np.sort(RNG.standard_normal(9).astype(np.float32))
TABLE[3] = TABLE[4]
QUERIES = np.array([[-3, TABLE[3], 0, np.nan], [TABLE[0], TABLE[8], 5, -0.0]], np.float32)
DISTINCT = RNG.permutation(28).reshape(4, 7).astype(np.float32) / 7 - 2

# name -> function of (library numpy, library lax) and the arguments it takes
CASES = {
    "sort": (lambda np_, lax_, x: np_.sort(x), [X]),
    "sort_axis0": (lambda np_, lax_, x: np_.sort(x, axis=0), [X]),
    "sort_none": (lambda np_, lax_, x: np_.sort(x, axis=None), [X]),
    "sort_descending": (lambda np_, lax_, x: np_.sort(x, descending=True), [X]),
    "sort_cube_axis1": (lambda np_, lax_, x: np_.sort(x, axis=1), [CUBE]),
    "sort_ints": (lambda np_, lax_, x: np_.sort(x, axis=0), [INTS]),
    "sort_uints": (lambda np_, lax_, x: np_.sort(x, descending=True), [UINTS]),
    "sort_bools": (lambda np_, lax_, x: np_.sort(x > 0), [INTS]),
    "argsort": (lambda np_, lax_, x: np_.argsort(x), [X]),
    "argsort_descending": (lambda np_, lax_, x: np_.argsort(x, descending=True), [X]),
    "argsort_descending_unstable": (
        lambda np_, lax_, x: np_.argsort(x, descending=True, stable=False), [DISTINCT]),
    "argsort_none": (lambda np_, lax_, x: np_.argsort(x, axis=None), [INTS]),
    "argsort_ints_axis0": (lambda np_, lax_, x: np_.argsort(x, axis=0), [INTS]),
    "argsort_cube": (lambda np_, lax_, x: np_.argsort(x, axis=0, descending=True), [CUBE]),
    "lexsort": (lambda np_, lax_, a, b: np_.lexsort([a, b]), [INTS, INTS[::-1]]),
    "lexsort_axis0": (lambda np_, lax_, a, b: np_.lexsort((a, b), axis=0),
                      [INTS, INTS[:, ::-1]]),
    "partition": (lambda np_, lax_, x: np_.partition(x, 2), [X]),
    "partition_axis0_uint": (lambda np_, lax_, x: np_.partition(x, 1, axis=0), [UINTS]),
    "argpartition": (lambda np_, lax_, x: np_.argpartition(x, 3), [DISTINCT]),
    "searchsorted": (lambda np_, lax_, a, v: np_.searchsorted(a, v), [TABLE, QUERIES]),
    "searchsorted_right": (lambda np_, lax_, a, v: np_.searchsorted(a, v, side="right"),
                           [TABLE, QUERIES]),
    "searchsorted_sorter": (
        lambda np_, lax_, a, v: np_.searchsorted(a, v, sorter=np.argsort(a)),
        [TABLE[::-1].copy(), QUERIES]),
    "searchsorted_ints": (lambda np_, lax_, a, v: np_.searchsorted(a, v, method="sort"),
                          [np.sort(INTS[0]), INTS[1]]),
    "median": (lambda np_, lax_, x: np_.median(x, axis=1), [X]),
    "median_all": (lambda np_, lax_, x: np_.median(x), [DISTINCT]),
    "median_axes_keepdims": (lambda np_, lax_, x: np_.median(x, axis=(0, 2), keepdims=True),
                             [CUBE]),
    "median_ints": (lambda np_, lax_, x: np_.median(x, axis=0), [INTS]),
    "nanmedian": (lambda np_, lax_, x: np_.nanmedian(x, axis=1), [X]),
    "quantile_methods": (lambda np_, lax_, x: [
        np_.quantile(x, np_.array([0.1, 0.5, 0.9]), axis=1, method=m)
        for m in ("linear", "lower", "higher", "midpoint", "nearest")], [DISTINCT]),
    "quantile_keepdims": (lambda np_, lax_, x: np_.quantile(x, 0.75, axis=0, keepdims=True),
                          [CUBE]),
    "nanquantile": (lambda np_, lax_, x: np_.nanquantile(x, np_.array([0.2, 0.6]), axis=1),
                    [X]),
    "percentile": (lambda np_, lax_, x: np_.percentile(x, 35.0, axis=2), [CUBE]),
    "nanpercentile": (lambda np_, lax_, x: np_.nanpercentile(x, 80), [X]),
    "lax_sort_multi": (lambda np_, lax_, a, b, c: lax_.sort((a, b, c), num_keys=2),
                       [INTS, (INTS % 2).astype(np.float32), CUBE.reshape(3, 20)[:, :9]]),
    "lax_sort_dimension0": (lambda np_, lax_, a, b: lax_.sort([a, b], dimension=0),
                            [X, INTS[:1].repeat(4, 0)[:, :7]]),
    "lax_sort_key_val": (lambda np_, lax_, k, v: lax_.sort_key_val(k, v), [X, DISTINCT]),
    "top_k": (lambda np_, lax_, x: lax_.top_k(x, 3), [X]),
    "top_k_ints": (lambda np_, lax_, x: lax_.top_k(x, 9), [INTS]),
    "top_k_axis0": (lambda np_, lax_, x: lax_.top_k(x, 2, axis=0), [CUBE]),
}
JITTED = ["sort", "sort_axis0", "sort_descending", "sort_cube_axis1", "sort_uints",
          "sort_bools", "argsort", "argsort_descending", "argsort_cube", "lexsort",
          "partition", "argpartition", "searchsorted_right", "median",
          "nanmedian", "quantile_methods", "lax_sort_multi", "lax_sort_dimension0",
          "top_k", "top_k_ints", "top_k_axis0"]


def same(got, want, exact=True):
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want)
        for g, w in zip(got, want):
            same(g, w, exact)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                  want.shape, want.dtype)
    if exact and want.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6, equal_nan=True)


def _exact(name: str) -> bool:
    return not any(word in name for word in ("median", "quantile", "percentile"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_matches_jax(name):
    fn, args = CASES[name]
    same(fn(fnp, flax, *args), fn(jnp, jax.lax, *args), _exact(name))


@pytest.mark.parametrize("name", JITTED)
def test_value_under_jit_matches_jax(name):
    fn, args = CASES[name]
    compiled = flowjit.jit(lambda *a: fn(fnp, flax, *a))
    same(compiled(*args), fn(jnp, jax.lax, *args), _exact(name))


@pytest.mark.parametrize("size, fill", [(12, -9), (4, None), (9, 2)])
def test_unique_with_a_static_size_pads_like_jax(size, fill):
    """numpy's unique padded as jax.numpy's is (with fill_value, else the smallest)."""
    distinct = np.unique(INTS)[:size]
    pad = distinct[0] if fill is None else fill
    want = np.concatenate([distinct, np.full(size - len(distinct), pad, np.int32)])
    for run in (fnp.unique, flowjit.jit(fnp.unique, static_argnames=("size", "fill_value"))):
        same(run(INTS, size=size, fill_value=fill), want)


def _signature(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("module, name", [
    ("numpy", n) for n in ("sort", "argsort", "lexsort", "partition", "argpartition",
                           "searchsorted", "unique", "median", "quantile", "percentile",
                           "nanmedian", "nanquantile", "nanpercentile")] + [
    ("lax", n) for n in ("sort", "sort_key_val", "top_k")])
def test_signature_matches_jax(module, name):
    ours = getattr(fnp if module == "numpy" else flax, name)
    theirs = getattr(jnp if module == "numpy" else jax.lax, name)
    assert _signature(ours) == _signature(theirs)


GRADS = {
    "sort": lambda np_, lax_: lambda x: np_.sum(np_.sort(x, axis=0) * np.arange(7.0)),
    "sort_descending_sin": lambda np_, lax_: lambda x: np_.sum(
        np_.sin(np_.sort(x, descending=True)) * np.arange(28.0).reshape(4, 7)),
    "top_k": lambda np_, lax_: lambda x: np_.sum(lax_.top_k(x, 3)[0] ** 2),
    "median": lambda np_, lax_: lambda x: np_.sum(np_.median(x, axis=1) * np.arange(4.0)),
    "quantile": lambda np_, lax_: lambda x: np_.quantile(x, 0.3),
    "sort_key_val": lambda np_, lax_: lambda x: np_.sum(
        lax_.sort_key_val(x[0], x[1])[1] * np.arange(7.0)),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradient_matches_jax_and_finite_differences(name):
    ours = flowjit.grad(GRADS[name](fnp, flax))(DISTINCT)
    theirs = jax.grad(GRADS[name](jnp, jax.lax))(DISTINCT)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    f64 = GRADS[name](_Numpy(), _NumpyLax)
    np.testing.assert_allclose(ours, central_difference(f64, [DISTINCT.astype(np.float64)]),
                               rtol=1e-4, atol=1e-5)


class _Numpy:
    """numpy, with jax.numpy's `descending` for sort (for float64 finite differences)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def sort(x, axis=-1, descending=False):
        ordered = np.sort(x, axis=axis)
        return np.flip(ordered, axis) if descending else ordered


class _NumpyLax:
    """numpy versions of the lax sorting names, for float64 finite differences."""

    @staticmethod
    def top_k(x, k):
        order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
        return np.take_along_axis(x, order, -1), order

    @staticmethod
    def sort_key_val(keys, values):
        order = np.argsort(keys, kind="stable")
        return keys[order], values[order]


def test_second_order_gradient_through_sort():
    """sort's VJP is sorts again, so it differentiates again (JAX's value)."""
    def f(np_):
        return lambda x: np_.sum(np_.sort(x, axis=1) ** 3 * np.arange(7.0))
    ours = flowjit.grad(lambda x: fnp.sum(flowjit.grad(f(fnp))(x) * DISTINCT))(DISTINCT)
    theirs = jax.grad(lambda x: jnp.sum(jax.grad(f(jnp))(x) * DISTINCT))(DISTINCT)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: flax.sort(np.float32(1)), "rank-0"),
    (lambda: fnp.sort(X, axis=2), "axis 2 is out of bounds"),
    (lambda: flax.top_k(X, 8), "k=8 must be between 0 and the size 7"),
    (lambda: flax.sort((X, INTS)), "equal dims"),
    (lambda: flax.sort((X, X), num_keys=3), "num_keys=3"),
    (lambda: fnp.searchsorted(X, 1.0), "1-dimensional"),
    (lambda: fnp.searchsorted(TABLE, 1.0, side="middle"), "side"),
    (lambda: fnp.quantile(X, 0.5, method="cubic"), "method"),
    (lambda: fnp.unique(INTS), "size="),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ShapeError, ValueError, TypeError, NotImplementedError),
                       match=message):
        call()


def test_errors_point_at_the_users_line():
    with pytest.raises(ValueError, match="test_sorting_api.py"):
        flowjit.jit(lambda x: flax.top_k(x, 99))(X)
    with pytest.raises(ShapeError, match="test_sorting_api.py"):
        flowjit.jit(lambda x: flax.sort((x, x[0])))(X)
