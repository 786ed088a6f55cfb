"""jit end to end: tracing, caching, pytrees, static arguments, the IR text, logs."""
import functools
import threading
import time

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp


def test_readme_example_matches_numpy(opt_level):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    x = rng.standard_normal((5, 16)).astype(np.float32)

    @flowjit.jit
    def predict(w, b, x):
        return fnp.tanh(x @ w + b).sum(axis=-1)
    predict.opt_level = opt_level
    expected = np.tanh(x.astype(np.float64) @ w + b).sum(axis=-1)
    np.testing.assert_allclose(predict(w, b, x), expected, rtol=1e-5, atol=1e-5)
    text = predict.lower(w, b, x).as_text()
    for op in ("dot(", "tanh(", "reduce(", "parameter(2)"):
        assert op in text


def test_cache_retraces_only_on_new_signature():
    f = flowjit.jit(lambda x: x * 2)
    f(np.ones(3, np.float32))
    f(np.zeros(3, np.float32))
    assert f.trace_count == 1
    f(np.ones(4, np.float32))
    f(np.ones(3, np.int32))
    assert f.trace_count == 3
    f(np.ones(4, np.float32))
    assert f.trace_count == 3


def test_lower_traces_once_per_signature_and_calls_reuse_it():
    f = flowjit.jit(lambda x: fnp.tanh(x) + 1)
    x = np.linspace(-2, 2, 5).astype(np.float32)
    lowered = f.lower(x)
    assert "tanh" in lowered.as_text()
    np.testing.assert_allclose(f(x), np.tanh(x) + 1, rtol=2e-6)
    assert f.lower(x) is lowered and lowered.compile() is lowered.compile()
    assert f.trace_count == 1
    f.lower(x[:3])
    assert f.trace_count == 2


def test_pytrees_in_and_out(opt_level):
    def f(params, x):
        return {"y": x @ params["w"] + params["b"], "n": [x.sum(), (x * 0).max()]}
    params = {"w": np.eye(3, dtype=np.float32) * 2, "b": np.ones(3, np.float32)}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = flowjit.jit(f, opt_level=opt_level)(params, x)
    np.testing.assert_allclose(out["y"], x @ params["w"] + params["b"])
    assert float(out["n"][0]) == 15.0 and float(out["n"][1]) == 0.0


def test_static_argnums_specialize():
    def power(x, n):
        result = x
        for _ in range(n - 1):  # a Python loop over a static value unrolls
            result = result * x
        return result
    f = flowjit.jit(power, static_argnums=1)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(f(x, 3), x ** 3)
    np.testing.assert_array_equal(f(x, 2), x ** 2)
    assert f.trace_count == 2


def test_python_scalar_arguments(opt_level):
    f = flowjit.jit(lambda x, s: x * s, opt_level=opt_level)
    out = f(np.ones(2, np.float32), 3.0)
    assert np.asarray(out).dtype == np.float32
    np.testing.assert_array_equal(out, [3.0, 3.0])


def test_results_are_numpy_compatible_without_copy():
    out = flowjit.jit(lambda x: x + 1)(np.zeros(4))
    view = np.asarray(out)
    assert np.shares_memory(view, out)
    assert isinstance(out, np.ndarray)


def test_returning_an_argument_and_constants(opt_level):
    f = flowjit.jit(lambda x: (x, fnp.zeros((2,)), 3.0), opt_level=opt_level)
    x = np.arange(3.0)
    a, z, c = f(x)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(z, np.zeros(2))
    assert float(c) == 3.0


def test_indexing_and_updates_match_numpy(opt_level):
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    idx = np.array([3, 0, 3, 1])

    def f(x, idx):
        return (x[1:, ::2], x[::-1, 2], x[idx], x[:, idx], x[idx, idx], x[None, 1, ..., -1],
                x.at[idx].add(1.0), x.at[1, 2:4].set(-1.0), x.at[idx, 0].multiply(2.0))
    got = flowjit.jit(f, opt_level=opt_level)(x, idx)
    e7 = x.copy()
    np.add.at(e7, idx, 1.0)
    e8 = x.copy()
    e8[1, 2:4] = -1.0
    e9 = x.copy()
    np.multiply.at(e9, (idx, 0), 2.0)
    expected = (x[1:, ::2], x[::-1, 2], x[idx], x[:, idx], x[idx, idx], x[None, 1, ..., -1],
                e7, e8, e9)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_dynamic_scalar_index(opt_level):
    f = flowjit.jit(lambda x, i: x[i], opt_level=opt_level)
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(f(x, np.int32(2)), x[2])
    np.testing.assert_array_equal(f(x, np.int32(-1)), x[-1])


def test_reductions_and_shapes_match_numpy(opt_level, x64):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5))

    def f(x):
        return (x.sum(), x.sum(axis=(0, 2), keepdims=True), x.mean(axis=1), x.max(axis=-1),
                x.min(axis=0), fnp.argmax(x, axis=1), fnp.argmin(x), x.var(axis=2),
                x.std(), fnp.prod(x[0], axis=0), fnp.any(x > 2), fnp.all(x > -5, axis=0),
                fnp.cumsum(x[0, 0]), fnp.transpose(x, (2, 0, 1)), fnp.swapaxes(x, 0, 2),
                fnp.concatenate([x, x * 2], axis=1), fnp.stack([x[0], x[1]], axis=-1),
                fnp.reshape(x, (-1, 5)), fnp.expand_dims(x, 1), fnp.squeeze(x[:, :1]),
                fnp.flip(x, axis=1), fnp.pad(x, ((1, 0), (0, 2), (1, 1))), fnp.tile(x[0], 2),
                fnp.where(x > 0, x, 0.0), fnp.clip(x, -0.5, 0.5), x.astype(np.int32))
    got = flowjit.jit(f, opt_level=opt_level)(x)
    expected = (x.sum(), x.sum(axis=(0, 2), keepdims=True), x.mean(axis=1), x.max(axis=-1),
                x.min(axis=0), np.argmax(x, axis=1), np.argmin(x), x.var(axis=2), x.std(),
                np.prod(x[0], axis=0), np.any(x > 2), np.all(x > -5, axis=0),
                np.cumsum(x[0, 0]), np.transpose(x, (2, 0, 1)), np.swapaxes(x, 0, 2),
                np.concatenate([x, x * 2], axis=1), np.stack([x[0], x[1]], axis=-1),
                np.reshape(x, (-1, 5)), np.expand_dims(x, 1), np.squeeze(x[:, :1]),
                np.flip(x, axis=1), np.pad(x, ((1, 0), (0, 2), (1, 1))), np.tile(x[0], 2),
                np.where(x > 0, x, 0.0), np.clip(x, -0.5, 0.5), x.astype(np.int32))
    for i, (g, e) in enumerate(zip(got, expected)):
        g = np.asarray(g)
        assert g.shape == np.shape(e), i
        assert g.dtype == np.asarray(e).dtype, (i, g.dtype, np.asarray(e).dtype)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, err_msg=str(i))


def test_products_match_numpy(opt_level, x64):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3, 4))
    b = rng.standard_normal((2, 4, 5))
    v = rng.standard_normal(4)
    m = rng.standard_normal((4, 3))

    def f(a, b, v, m):
        return (a @ b, a @ v, v @ m, fnp.dot(m.T, v[:4]), fnp.einsum("bij,bjk->bik", a, b),
                fnp.einsum("ij->ji", m), fnp.einsum("bij,jk->bik", a, m[:, :2]),
                fnp.outer(v, v), fnp.tensordot(a, b, axes=([2], [1])), v @ v)
    got = flowjit.jit(f, opt_level=opt_level)(a, b, v, m)
    expected = (a @ b, a @ v, v @ m, np.dot(m.T, v), np.einsum("bij,bjk->bik", a, b), m.T,
                np.einsum("bij,jk->bik", a, m[:, :2]), np.outer(v, v),
                np.tensordot(a, b, axes=([2], [1])), v @ v)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_log_compiles_explains_retrace(monkeypatch, caplog):
    monkeypatch.setenv("FLOWJIT_LOG_COMPILES", "1")
    f = flowjit.jit(lambda x, y: x.sum() + y.sum())
    with caplog.at_level("WARNING", logger="flowjit"):
        f(np.ones(3, np.float32), np.ones(3, np.float32))
        f(np.ones(3, np.float32), np.ones(5, np.float32))
    text = caplog.text
    assert "retracing" in text and "y changed from f32[3] to f32[5]" in text


def test_metadata_records_user_source_line():
    def f(x):
        return fnp.exp(x)  # the line the metadata must name
    text = flowjit.jit(f).lower(np.ones(2)).as_text()
    import inspect
    lines, start = inspect.getsourcelines(f)
    assert f'source_line={start + 1}' in text and __file__ in text


def test_eager_returns_concrete_arrays():
    out = fnp.exp(np.arange(3.0))
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32   # float64 inputs become float32 unless x64 is on, as JAX
    np.testing.assert_allclose(out, np.exp(np.arange(3.0)), rtol=1e-6)
    y = fnp.asarray(np.arange(4.0)).at[1].set(9.0)
    np.testing.assert_array_equal(y, [0.0, 9.0, 2.0, 3.0])


@pytest.mark.parametrize("n", [1, 7])
def test_jit_inside_jit_is_traced_through(n):
    inner = flowjit.jit(lambda x: x * n)
    outer = flowjit.jit(lambda x: inner(x) + 1)
    np.testing.assert_array_equal(outer(np.ones(2)), np.full(2, n + 1.0))


# Keyword arguments, as JAX takes them: dynamic unless named in static_argnames, and
# static_argnums/static_argnames naming each other's parameters through the signature.

def _counting(fun):
    """`fun` with a count of how often it ran (i.e. was traced, under a jit)."""
    @functools.wraps(fun)   # keeps the signature, which jax.jit reads for static_arg*
    def counted(*args, **kwargs):
        counted.runs += 1
        return fun(*args, **kwargs)
    counted.runs = 0
    return counted


def _scaled(x, scale=1.0, shift=None):
    out = x * scale + 1
    return out if shift is None else out + shift["b"]


def test_keyword_arguments_are_traced_like_jax():
    import jax
    x = np.linspace(-1, 1, 5).astype(np.float32)
    ours = flowjit.jit(_scaled)
    counted = _counting(_scaled)
    theirs = jax.jit(counted)
    calls = [((x,), {"scale": 2.0}), ((x,), {"scale": 3.0}), ((), {"x": x, "scale": 2.0}),
             ((x, 2.0), {}), ((x,), {"scale": 2.0, "shift": {"b": np.float32(5)}}),
             ((x,), {"shift": {"b": np.float32(7)}, "scale": 0.5})]
    for args, kwargs in calls:
        expected = np.asarray(theirs(*args, **kwargs))
        got = ours(*args, **kwargs)
        assert np.asarray(got).dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Values of keyword arguments are dynamic: only a new structure retraces, as in JAX.
    assert ours.trace_count == counted.runs == 4


def _power(x, n):
    result = x
    for _ in range(n - 1):   # a Python loop over a static value unrolls
        result = result * x
    return result


@pytest.mark.parametrize("static", [{"static_argnames": "n"}, {"static_argnames": ("n",)},
                                    {"static_argnums": 1}], ids=["name", "names", "num"])
def test_static_arguments_by_name_or_number_like_jax(static):
    import jax
    x = np.array([1.0, 2.0, 3.0], np.float32)
    ours = flowjit.jit(_power, **static)
    counted = _counting(_power)
    theirs = jax.jit(counted, **static)
    for args, kwargs in [((x,), {"n": 3}), ((x,), {"n": 3}), ((x, 2), {}), ((x,), {"n": 2}),
                         ((), {"x": x, "n": 4})]:
        np.testing.assert_allclose(ours(*args, **kwargs),
                                   np.asarray(theirs(*args, **kwargs)), rtol=1e-6)
    assert ours.trace_count == counted.runs


def test_lower_takes_keyword_arguments():
    x = np.ones(3, np.float32)
    f = flowjit.jit(_power, static_argnames="n")
    assert f.lower(x, n=3).as_text().count("multiply(") == 2
    np.testing.assert_allclose(f.lower(x, n=3).compile()(x), x ** 3)


def test_an_unhashable_static_keyword_is_a_type_error():
    f = flowjit.jit(_power, static_argnames="n")
    with pytest.raises(TypeError, match="static argument 'n'.*not hashable"):
        f(np.ones(2, np.float32), n=[3])


# Threads racing to call a new signature: one trace and one compile per signature.

def _slow_to_trace(x):
    time.sleep(0.05)   # widens the window in which racing threads see no trace yet
    return fnp.tanh(x) * 2


def _race(function, count=8):
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(k):
        try:
            barrier.wait()
            results[k] = function(k)
        except Exception as error:   # reported below, not lost in the thread
            errors.append(error)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_racing_first_calls_trace_and_compile_once(monkeypatch):
    import flowjit.jitted as jitted
    compiles = []

    class CountedCompiled(jitted.Compiled):
        def __init__(self, *args, **kwargs):
            compiles.append(1)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(jitted, "Compiled", CountedCompiled)
    f = flowjit.jit(_slow_to_trace)
    x = np.linspace(-2, 2, 7).astype(np.float32)
    y = x[:5].copy()
    results = _race(lambda k: f(x if k % 2 else y))
    for k, result in enumerate(results):
        np.testing.assert_allclose(result, np.tanh((x if k % 2 else y).astype(np.float64)) * 2,
                                   rtol=1e-6)
    assert f.trace_count == 2 and len(compiles) == 2


def test_racing_lower_and_keyword_calls_trace_once():
    f = flowjit.jit(lambda x, scale: _slow_to_trace(x) * scale)
    x = np.ones(4, np.float32)
    lowered = _race(lambda k: f.lower(x, scale=2.0))
    assert all(item is lowered[0] for item in lowered) and f.trace_count == 1
    results = _race(lambda k: f(x, scale=float(k)))
    for k, result in enumerate(results):
        np.testing.assert_allclose(result, np.tanh(1.0) * 2 * k, rtol=1e-6)
    assert f.trace_count == 1


def test_log_compiles_explains_a_retrace_for_a_static_keyword(monkeypatch, caplog):
    monkeypatch.setenv("FLOWJIT_LOG_COMPILES", "1")
    f = flowjit.jit(_power, static_argnames="n")
    x = np.ones(3, np.float32)
    with caplog.at_level("WARNING", logger="flowjit"):
        np.testing.assert_allclose(f(x, n=2), x ** 2)
        np.testing.assert_allclose(f(x, n=3), x ** 3)
    assert "static arguments changed from {'n': 2} to {'n': 3}" in caplog.text


def test_switching_x64_retraces_instead_of_reusing_the_other_program():
    # A program traced with 32-bit defaults must not run once x64 is on (and back).
    f = flowjit.jit(lambda x: x + flowjit.numpy.ones(3))
    x = np.arange(3.0)                     # float64 input
    with flowjit.config.override("enable_x64", False):
        narrow = f(x)
        assert np.asarray(narrow).dtype == np.float32
    with flowjit.config.override("enable_x64", True):
        wide = f(x)
        assert np.asarray(wide).dtype == np.float64
        np.testing.assert_array_equal(wide, x + 1)
    with flowjit.config.override("enable_x64", False):
        assert np.asarray(f(x)).dtype == np.float32
    assert f.trace_count == 2
