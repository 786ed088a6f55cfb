"""The on-disk compile cache: a second compile loads machine code, corrupt entries rebuild."""
import glob
import hashlib
import logging
import os
import shutil
import stat
import threading

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.runtime import disk_cache, executable


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


# The cache is an execution path: what it loads is run. Each test below tampers with it the
# way an adversary or an accident would, and checks the result against numpy.

def _entries(directory) -> set:
    return set(glob.glob(os.path.join(str(directory), "*", "*.o")))


def _compile_fn(fun, *args):
    return flowjit.jit(fun).lower(*args).compile()


def _entry_for(directory, fun, *args) -> str:
    """Compile `fun` into the cache at `directory`; the path of the entry it wrote."""
    before = _entries(directory)
    _compile_fn(fun, *args)
    (entry,) = _entries(directory) - before
    return entry


def _affine(x):
    return x * 2 + 1


def _sine(x):
    return fnp.sin(x) * 3


def _three_inputs(a, b, c):
    return a * b + c


X = np.linspace(-2, 2, 9).astype(np.float32)


def _check_affine_compiles_fresh_and_right(entry_expected_loaded=False):
    compiled = _compile_fn(_affine, X)
    assert compiled.executable.from_disk_cache == entry_expected_loaded
    np.testing.assert_allclose(compiled(X), X.astype(np.float64) * 2 + 1, rtol=1e-6)


@pytest.mark.parametrize("other", [_sine, _three_inputs], ids=["sin", "three-inputs"])
def test_an_entry_copied_to_another_keys_path_is_not_run(tmp_path, monkeypatch, other):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    mine = _entry_for(tmp_path, _affine, X)
    foreign = _entry_for(tmp_path, other, *[X] * (3 if other is _three_inputs else 1))
    shutil.copyfile(foreign, mine)
    _check_affine_compiles_fresh_and_right()
    _check_affine_compiles_fresh_and_right(entry_expected_loaded=True)   # rebuilt


def test_a_foreign_payload_with_a_recomputed_checksum_is_not_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    mine = _entry_for(tmp_path, _affine, X)
    foreign = _entry_for(tmp_path, _sine, X)
    with open(foreign, "rb") as f:
        data = f.read()
    foreign_key = os.path.basename(foreign)[:-2]
    payload = data[len(data) - _payload_size(data):]
    forgeries = [
        # the v1 format: magic + sha256(payload) + payload
        b"flowjit-object-v1\n" + hashlib.sha256(payload).digest() + payload,
        # the current format, consistent in itself, but written for the other key
        disk_cache.entry_bytes(foreign_key, payload),
    ]
    for forged in forgeries:
        with open(mine, "wb") as f:
            f.write(forged)
        _check_affine_compiles_fresh_and_right()


def _payload_size(entry: bytes) -> int:
    """The payload length an entry records (after the magic and the 64-character key)."""
    offset = len(disk_cache.MAGIC) + 64
    return int.from_bytes(entry[offset:offset + 8], "little")


@pytest.mark.parametrize("cut", [0, 10, 60, 100, -1], ids=lambda c: f"cut{c}")
def test_a_truncated_entry_is_rebuilt(tmp_path, monkeypatch, cut):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    mine = _entry_for(tmp_path, _affine, X)
    with open(mine, "r+b") as f:
        f.truncate(cut if cut >= 0 else os.path.getsize(mine) - 1)
    _check_affine_compiles_fresh_and_right()
    _check_affine_compiles_fresh_and_right(entry_expected_loaded=True)


@pytest.mark.parametrize("changed", ["flowjit-version", "cpu"])
def test_an_entry_made_elsewhere_is_not_run_here(tmp_path, monkeypatch, changed):
    """An entry from another flowjit version or another CPU is keyed differently, and copied
    to this build's key path it is still refused."""
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    mine = _entry_for(tmp_path, _affine, X)
    with monkeypatch.context() as patch:
        if changed == "cpu":
            patch.setattr(executable, "host_target_description", lambda: "other-cpu +avx9")
        else:
            patch.setattr(disk_cache, "_version", lambda: "0.0.0-other")
        elsewhere = _entry_for(tmp_path, _affine, X)   # a new key, not a hit on `mine`
    shutil.copyfile(elsewhere, mine)
    _check_affine_compiles_fresh_and_right()


def _in_a_thread(function, *args):
    """Run `function` in a daemon thread: if it hangs, the test fails instead of hanging."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function(*args)), daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), f"{function.__name__} hung"
    return result[0]


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-dev-zero", "directory"])
def test_only_regular_files_are_read(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    mine = _entry_for(tmp_path, _affine, X)
    os.remove(mine)
    if kind == "fifo":
        os.mkfifo(mine)
    elif kind == "directory":
        os.mkdir(mine)
    else:
        os.symlink("/dev/zero", mine)
    key = os.path.basename(mine)[:-2]
    assert _in_a_thread(disk_cache.load, key) is None
    compiled = _in_a_thread(_compile_fn, _affine, X)
    assert not compiled.executable.from_disk_cache
    np.testing.assert_allclose(compiled(X), X.astype(np.float64) * 2 + 1, rtol=1e-6)


def _bytes_read_by_this_process() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


def test_a_huge_entry_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    mine = _entry_for(tmp_path, _affine, X)
    limit = getattr(disk_cache, "MAX_ENTRY_BYTES", 256 << 20)
    with open(mine, "r+b") as f:
        f.truncate(limit + 1)   # sparse: costs no disk
    key = os.path.basename(mine)[:-2]
    before = _bytes_read_by_this_process()
    assert disk_cache.load(key) is None
    assert _bytes_read_by_this_process() - before < limit // 16


def test_entries_are_private_to_the_user(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(directory))
    mine = _entry_for(directory, _affine, X)
    assert stat.S_IMODE(os.stat(mine).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(mine)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert not glob.glob(os.path.join(str(directory), "*", "*.tmp"))


def _unsafe_directory(tmp_path, monkeypatch, problem):
    directory = tmp_path / "cache"
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(directory))
    mine = _entry_for(directory, _affine, X)
    if problem == "group-writable":
        os.chmod(directory, 0o770)
    elif problem == "world-writable":
        os.chmod(directory, 0o777)
    else:
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    return mine


@pytest.mark.parametrize("problem", ["group-writable", "world-writable", "other-owner"])
def test_an_unsafe_cache_directory_is_not_used_and_warned_about_once(
        tmp_path, monkeypatch, caplog, problem):
    _unsafe_directory(tmp_path, monkeypatch, problem)
    before = _entries(tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="flowjit"):
        _check_affine_compiles_fresh_and_right()   # a valid entry, but not trusted
        _check_affine_compiles_fresh_and_right()
        _compile_fn(_sine, X)
    warnings = [r for r in caplog.records if "compile cache" in r.getMessage()]
    assert len(warnings) == 1 and str(tmp_path / "cache") in warnings[0].getMessage()
    assert _entries(tmp_path / "cache") == before   # nothing written there either
