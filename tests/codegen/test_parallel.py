"""Large kernels split over threads give exactly the single-threaded results."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_row_split_kernels_match_numpy(threads, monkeypatch):
    monkeypatch.setenv("FLOWJIT_THREADS", threads)
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1027, 1031)).astype(np.float32)   # rows not divisible

    def f(x):
        e = fnp.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True), fnp.tanh(x) * 2 + 1
    compiled = flowjit.jit(f, opt_level=2).lower(x).compile()
    split = [k.parallel_rows for k in compiled.executable.kernels]
    assert all(s == (0 if threads == "1" else 1027) for s in split)
    softmax, t = compiled(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(softmax, e / e.sum(axis=-1, keepdims=True), rtol=2e-6,
                               atol=1e-9)
    np.testing.assert_allclose(t, np.tanh(x) * 2 + 1, rtol=2e-6, atol=2e-6)
