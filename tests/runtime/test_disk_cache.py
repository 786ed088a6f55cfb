"""The on-disk compile cache: a second compile loads machine code, corrupt entries rebuild."""
import glob
import os

import numpy as np

import flowjit
import flowjit.numpy as fnp


def _compile(x):
    return flowjit.jit(lambda x: fnp.tanh(x) * 3 + 1).lower(x).compile()


def test_second_compile_uses_the_cache_and_corruption_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    x = np.linspace(-2, 2, 9).astype(np.float32)
    expected = np.tanh(x.astype(np.float64)) * 3 + 1
    first = _compile(x)
    assert not first.executable.from_disk_cache
    np.testing.assert_allclose(first(x), expected, rtol=1e-6)
    second = _compile(x)
    assert second.executable.from_disk_cache
    np.testing.assert_allclose(second(x), expected, rtol=1e-6)
    (entry,) = glob.glob(os.path.join(str(tmp_path), "*", "*.o"))
    with open(entry, "r+b") as f:       # flip bytes in the middle of the object code
        f.seek(os.path.getsize(entry) // 2)
        f.write(b"\xde\xad\xbe\xef")
    third = _compile(x)
    assert not third.executable.from_disk_cache   # detected, not trusted
    np.testing.assert_allclose(third(x), expected, rtol=1e-6)
    assert _compile(x).executable.from_disk_cache  # and written again


def test_cache_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    x = np.ones(3, np.float32)
    assert not _compile(x).executable.from_disk_cache
    assert not _compile(x).executable.from_disk_cache
