"""A costly value that a row reduction sums and the output reads again (softmax's
exp(x - max)) is kept in a row buffer, not computed twice: results still match numpy."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp


def softmax(x):
    e = fnp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (64, 1024), (3, 4, 50), (2, 20000)])
def test_softmax_matches_numpy(shape):
    x = (np.random.default_rng(0).standard_normal(shape) * 4).astype(np.float32)
    compiled = flowjit.jit(softmax, opt_level=2).lower(x).compile()
    np.testing.assert_allclose(compiled(x), np_softmax(x), rtol=2e-6, atol=1e-7)
    # Rows up to 64 KiB are cached; a row of 20000 floats (80 KiB) is computed twice.
    assert ("row_cache" in compiled.executable.llvm_ir) == (shape[-1] * 4 <= 1 << 16)


def test_a_value_read_at_another_index_is_not_taken_from_the_row():
    # The output reads e reversed along the row: the cache holds e in row order, so it
    # must not be used for those reads.
    def f(x):
        e = fnp.exp(x)
        return e[:, ::-1] / e.sum(axis=-1, keepdims=True)
    x = np.random.default_rng(1).standard_normal((5, 9)).astype(np.float32)
    e = np.exp(x)
    np.testing.assert_allclose(flowjit.jit(f)(x), e[:, ::-1] / e.sum(-1, keepdims=True),
                               rtol=2e-6)


def test_two_reductions_of_one_value_and_threads(monkeypatch):
    # Sum and sum of squares of the same exp, on rows split across threads.
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    def f(x):
        e = fnp.exp(x)
        s = e.sum(axis=-1, keepdims=True)
        return e / s + e * e / (e * e).sum(axis=-1, keepdims=True)
    x = np.random.default_rng(2).standard_normal((2048, 512)).astype(np.float32)
    e = np.exp(x)
    want = e / e.sum(-1, keepdims=True) + e * e / (e * e).sum(-1, keepdims=True)
    np.testing.assert_allclose(flowjit.jit(f)(x), want, rtol=1e-5)
