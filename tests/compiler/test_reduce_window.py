"""flowjit.lax.reduce_window, the cumulative ops, associative_scan and flax-style pooling:
JAX's names, signatures and defaults, and values against JAX (or a numpy oracle for the
pooling helpers, since flax is not installed), eagerly and compiled."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import flowjit  # noqa: E402
import flowjit.numpy as fnp  # noqa: E402
from flowjit import lax, nn  # noqa: E402
from flowjit.ir.errors import ShapeError  # noqa: E402

# JAX's default 32-bit types on both sides, whatever other tests set for the process.
pytestmark = pytest.mark.usefixtures("no_x64")


def _parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", ["reduce_window", "cumsum", "cumprod", "cummax", "cummin",
                                  "cumlogsumexp", "associative_scan"])
def test_lax_signature_is_jaxs(name):
    assert _parameters(getattr(lax, name)) == _parameters(getattr(jax.lax, name))


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "nancumsum", "nancumprod",
                                  "cumulative_sum", "cumulative_prod"])
def test_numpy_signature_is_jaxs(name):
    assert _parameters(getattr(fnp, name)) == _parameters(getattr(jnp, name))


def test_pooling_signatures_are_flaxs():
    # flax.linen's, from its documentation (flax is not installed here).
    assert _parameters(nn.max_pool) == [
        ("inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("window_shape", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("strides", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("padding", inspect.Parameter.POSITIONAL_OR_KEYWORD, "VALID")]
    assert _parameters(nn.avg_pool)[-1] == ("count_include_pad",
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD, True)


def _both(fn, *args):
    """fn run eagerly and compiled."""
    return [fn(*args), flowjit.jit(fn)(*args)]


WINDOWS = [  # window_dimensions, strides, padding, base_dilation, window_dilation
    ((1, 3, 3, 1), (1, 2, 2, 1), "SAME", None, None),
    ((1, 2, 2, 1), (1, 2, 2, 1), "VALID", None, None),
    ((1, 3, 2, 1), (1, 1, 2, 1), ((0, 0), (2, 1), (0, 3), (0, 0)), None, None),
    ((2, 2, 2, 1), (1, 1, 1, 1), "SAME", (1, 2, 1, 1), (1, 1, 2, 1)),
    ((1, 3, 3, 2), (1, 2, 3, 1), "SAME_LOWER", None, (1, 2, 1, 1)),
]


@pytest.mark.parametrize("monoid, case", [(m, c) for c in range(len(WINDOWS))
                                          for m in ("add", "max", "min", "mul")
                                          if (c + "add max min mul".split().index(m)) % 2 == 0
                                          or c == 0])
def test_reduce_window_matches_jax(monoid, case):
    dims, strides, padding, base, dilation = WINDOWS[case]
    x = np.random.default_rng(case).uniform(0.5, 1.5, (2, 7, 6, 3)).astype(np.float32)
    init = {"add": 0.0, "max": -np.inf, "min": np.inf, "mul": 1.0}[monoid]
    want = jax.lax.reduce_window(x, np.float32(init), getattr(jax.lax, monoid), dims, strides,
                                 padding, base, dilation)
    for got in _both(lambda x: lax.reduce_window(x, np.float32(init), getattr(lax, monoid),
                                                 dims, strides, padding, base, dilation), x):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_reduce_window_takes_any_function_over_pytrees():
    # A running (sum, max) pair over a dict of operands, with a non-identity init.
    def pair(acc, value):
        return {"s": acc["s"] + value["s"], "m": fnp.maximum(acc["m"], value["m"])}

    def jax_pair(acc, value):
        return {"s": acc["s"] + value["s"], "m": jnp.maximum(acc["m"], value["m"])}
    x = np.random.default_rng(3).standard_normal((6, 8)).astype(np.float32)
    operands, inits = {"s": x, "m": -x}, {"s": np.float32(1), "m": np.float32(-np.inf)}
    args = ((2, 3), (1, 2), "SAME", (2, 1), (1, 2))
    want = jax.lax.reduce_window(operands, inits, jax_pair, *args)
    for got in _both(lambda o: lax.reduce_window(o, inits, pair, *args), operands):
        assert set(got) == {"s", "m"}
        for key in got:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5)


def test_reduce_window_errors_name_the_shapes():
    x = np.ones((4, 4), np.float32)
    with pytest.raises(ShapeError, match=r"window_dimensions has 1 entries for an operand "
                                         r"of rank 2 \[4, 4\]"):
        lax.reduce_window(x, 0.0, lax.add, (2,))
    with pytest.raises(ShapeError, match="window size 0 in dimension 1"):
        flowjit.jit(lambda x: lax.reduce_window(x, 0.0, lax.add, (1, 0)))(x)
    with pytest.raises(ValueError, match="unknown padding 'FULL'"):
        lax.reduce_window(x, 0.0, lax.add, (2, 2), padding="FULL")

    @flowjit.jit
    def closes_over_a_traced_value(x, scale):
        return lax.reduce_window(x, 0.0, lambda a, b: a + b * scale, (2, 2))
    with pytest.raises(TypeError, match="may not close over traced values"):
        closes_over_a_traced_value(x, np.float32(2))


CUMULATIVE = ["cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"]


@pytest.mark.parametrize("axis, reverse", [(0, True), (1, False), (2, True), (2, False)])
@pytest.mark.parametrize("name", CUMULATIVE)
def test_lax_cumulative_ops_match_jax(name, axis, reverse):
    x = np.random.default_rng(axis).uniform(0.5, 1.5, (4, 5, 6)).astype(np.float32)
    want = getattr(jax.lax, name)(x, axis, reverse)
    for got in _both(lambda x: getattr(lax, name)(x, axis=axis, reverse=reverse), x):
        np.testing.assert_allclose(got, want, rtol=2e-5)


@pytest.mark.parametrize("name", ["cummax", "cummin", "cumsum"])
def test_integer_cumulative_ops_are_exact(name):
    x = np.random.default_rng(0).integers(-50, 50, (3, 40)).astype(np.int32)
    for got in _both(lambda x: getattr(lax, name)(x, 1), x):
        np.testing.assert_array_equal(got, getattr(jax.lax, name)(x, 1))


def test_cumsum_runs_as_a_prefix_scan_with_its_producer_fused_in():
    # A long row: the prefix-scan kernel (not n windows of n) computes the elementwise
    # producer inside it; the consumer is not fused into the scan.
    from flowjit.codegen.window_kernels import prefix_scan_of
    x = np.random.default_rng(1).standard_normal((3, 20000)).astype(np.float32)
    f = flowjit.jit(lambda x: fnp.cumsum(fnp.exp(x * 0.01), axis=1) * 2.0)
    np.testing.assert_allclose(f(x), np.cumsum(np.exp(x.astype(np.float64) * 0.01), axis=1)
                               * 2, rtol=1e-4)
    module = f.lower(x).compile().module
    scans = [i for i in module.entry.instructions if prefix_scan_of(i) is not None]
    assert len(scans) == 1
    assert scans[0].shape.dims == (3, 20000)
    if scans[0].opcode == "fusion":   # opt level 2: the exp is fused in, the * 2 is not
        opcodes = {i.opcode for i in scans[0].calls["calls"].instructions}
        assert "exponential" in opcodes and scans[0].calls["calls"].root.opcode == \
            "reduce-window"


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.float16, np.float32])
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "nancumsum", "nancumprod"])
def test_numpy_cumulative_ops_match_jax_values_and_dtypes(name, dtype):
    x = (np.random.default_rng(2).uniform(0, 2, (3, 4)) + 0.5).astype(dtype)
    for axis in (None, -1):
        want = getattr(jnp, name)(x, axis=axis)
        got = getattr(fnp, name)(x, axis=axis)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                   rtol=1e-2 if dtype == np.float16 else 1e-6)


def test_nancumsum_skips_nans_and_cumulative_sum_includes_the_initial_zero():
    x = np.array([[1.0, np.nan, 2.0], [np.nan, 3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(fnp.nancumsum(x, axis=1), [[1, 1, 3], [0, 3, 7]])
    got = flowjit.jit(lambda x: fnp.cumulative_sum(x, axis=0, include_initial=True))(
        np.arange(6, dtype=np.int8).reshape(2, 3))
    np.testing.assert_array_equal(got, [[0, 0, 0], [0, 1, 2], [3, 5, 7]])
    assert got.dtype == jnp.cumulative_sum(np.ones(3, np.int8)).dtype
    with pytest.raises(ValueError, match="axis was not set"):
        fnp.cumulative_sum(np.ones((2, 2)))


@pytest.mark.parametrize("n, reverse", [(1, False), (5, True), (8, False)])
def test_associative_scan_matches_jax_for_a_non_commutative_fn(n, reverse):
    # Affine maps compose associatively but not commutatively: (a1, b1) then (a2, b2).
    def compose(f, g):
        return (f[0] * g[0], f[1] * g[0] + g[1])
    rng = np.random.default_rng(n)
    elems = (rng.uniform(0.5, 1.5, (n, 3)).astype(np.float32),
             rng.standard_normal((n, 3)).astype(np.float32))
    want = jax.jit(lambda e: jax.lax.associative_scan(compose, e, reverse=reverse))(elems)
    for got in _both(lambda e: lax.associative_scan(compose, e, reverse=reverse), elems):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


# --- pooling against a numpy oracle (flax's documented behaviour) --------------------------

def _np_pool(x, window, strides, pads, reduce, fill):
    """Windows over the spatial dims of NHWC `x`, padded with `fill`, folded by `reduce`."""
    n, h, w, c = x.shape
    padded = np.full((n, h + sum(pads[0]), w + sum(pads[1]), c), fill, np.float64)
    padded[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w] = x
    out_h = (padded.shape[1] - window[0]) // strides[0] + 1
    out_w = (padded.shape[2] - window[1]) // strides[1] + 1
    out = np.empty((n, out_h, out_w, c))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, i * strides[0]:i * strides[0] + window[0],
                           j * strides[1]:j * strides[1] + window[1]]
            out[:, i, j] = reduce(patch, axis=(1, 2))
    return out


def _same_pads(size, window, stride):
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + window - size)
    return (total // 2, total - total // 2)


@pytest.mark.parametrize("window, strides, padding", [
    ((2, 2), (2, 2), "VALID"), ((3, 3), (2, 2), "SAME"), ((3, 2), None, ((1, 1), (0, 1)))])
def test_max_and_avg_pool_match_a_numpy_oracle(window, strides, padding):
    x = np.random.default_rng(4).standard_normal((2, 9, 8, 3)).astype(np.float32)
    s = strides or (1, 1)
    pads = ([_same_pads(d, k, st) for d, k, st in zip((9, 8), window, s)]
            if padding == "SAME" else [(0, 0), (0, 0)] if padding == "VALID" else padding)
    want_max = _np_pool(x, window, s, pads, np.max, -np.inf)
    want_sum = _np_pool(x, window, s, pads, np.sum, 0.0)
    counts = _np_pool(np.ones_like(x), window, s, pads, np.sum, 0.0)
    for got in _both(lambda x: nn.max_pool(x, window, strides, padding), x):
        np.testing.assert_allclose(got, want_max, rtol=1e-6)
    for got in _both(lambda x: nn.avg_pool(x, window, strides, padding), x):
        np.testing.assert_allclose(got, want_sum / np.prod(window), rtol=1e-5, atol=1e-6)
    for got in _both(lambda x: nn.avg_pool(x, window, strides, padding,
                                           count_include_pad=False), x):
        np.testing.assert_allclose(got, want_sum / counts, rtol=1e-5, atol=1e-6)


def test_pooling_an_unbatched_input_keeps_its_rank():
    x = np.random.default_rng(5).standard_normal((6, 6, 2)).astype(np.float32)
    got = nn.max_pool(x, (2, 2), (2, 2))
    np.testing.assert_allclose(got, _np_pool(x[None], (2, 2), (2, 2), [(0, 0)] * 2,
                                             np.max, -np.inf)[0])
    with pytest.raises(ValueError, match="strides"):
        nn.max_pool(x, (2, 2), (2,))
