"""The on-disk compilation cache: machine code keyed by what determines it.

Key: SHA-256 of the LLVM IR, the host CPU name and features, and the flowjit and LLVM
versions. An entry is `MAGIC + sha256(object code) + object code`, written to a temporary
file and renamed into place, so concurrent processes never see half an entry; an entry whose
checksum does not match is deleted and rebuilt, never trusted. FLOWJIT_CACHE_DIR moves the
cache; FLOWJIT_CACHE_DIR=off turns it off.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Optional

MAGIC = b"flowjit-object-v1\n"


def cache_dir() -> Optional[str]:
    path = os.environ.get("FLOWJIT_CACHE_DIR")
    if path == "off":
        return None
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        path = os.path.join(base, "flowjit")
    return path


def cache_key(llvm_ir: str, target: str) -> str:
    import llvmlite
    digest = hashlib.sha256()
    for part in (llvm_ir, target, _version(), llvmlite.__version__):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("flowjit")
    except Exception:  # running from a checkout that was not installed
        return "dev"


def _path(key: str) -> Optional[str]:
    directory = cache_dir()
    return None if directory is None else os.path.join(directory, key[:2], key + ".o")


def load(key: str) -> Optional[bytes]:
    """The cached object code for `key`, or None (a corrupt entry is removed)."""
    path = _path(key)
    if path is None or not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    header = len(MAGIC) + 32
    if data[:len(MAGIC)] == MAGIC and hashlib.sha256(data[header:]).digest() == \
            data[len(MAGIC):header]:
        return data[header:]
    try:
        os.remove(path)  # corrupt or truncated: rebuild it
    except OSError:
        pass
    return None


def store(key: str, code: bytes) -> None:
    """Write an entry atomically; failures (read-only disk, ...) only cost the cache."""
    path = _path(key)
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(code).digest() + code)
        os.replace(tmp, path)
    except OSError:
        pass
