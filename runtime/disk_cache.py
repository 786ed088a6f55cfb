"""The on-disk compilation cache: machine code keyed by what determines it.

Loading an entry runs its machine code, so the cache is treated as an execution path:

- Key: SHA-256 of the LLVM IR, the host target (triple, CPU name and features, LLVM version,
  opt level), and the flowjit and llvmlite versions.
- An entry is `MAGIC + key + payload length + SHA-256(key and payload) + payload`: the full
  key is stored inside and compared on load, so an entry copied to another key's path (or
  made by another flowjit, LLVM or CPU) is a miss, never run.
- Only a regular file of bounded size, owned by this user, is read (opened without following
  links and without blocking, checked on the opened descriptor): a FIFO, a link to
  /dev/zero or a huge file is a miss, not a hang.
- The cache directory must be owned by this user and not writable by group or others;
  otherwise the cache is off for this process, with one warning.
- Entries are written to a temporary file (mode 0o600, directories 0o700) and renamed into
  place, so concurrent processes never see half an entry.

FLOWJIT_CACHE_DIR moves the cache; FLOWJIT_CACHE_DIR=off turns it off.
"""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from typing import Optional

MAGIC = b"flowjit-object-v2\n"
KEY_BYTES = 64          # a hex SHA-256
_LENGTH_BYTES = 8
_HEADER = len(MAGIC) + KEY_BYTES + _LENGTH_BYTES + 32
# Far above any real entry (a few MB for the largest modules), far below what hurts to read.
MAX_ENTRY_BYTES = 256 << 20

log = logging.getLogger("flowjit")
_warned_dirs: set[str] = set()


def cache_dir() -> Optional[str]:
    """The cache directory FLOWJIT_CACHE_DIR names (default ~/.cache/flowjit), or None."""
    path = os.environ.get("FLOWJIT_CACHE_DIR")
    if path == "off":
        return None
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        path = os.path.join(base, "flowjit")
    return path


def cache_key(llvm_ir: str, target: str) -> str:
    """The key of the object code for `llvm_ir` on `target` with these flowjit/llvmlite."""
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


def _is_key(key: str) -> bool:
    return len(key) == KEY_BYTES and all(c in "0123456789abcdef" for c in key)


def _private_dir_problem(path: str, follow_links: bool = True) -> Optional[str]:
    """Why `path` is not a directory only this user can write to, or None."""
    try:
        info = os.stat(path) if follow_links else os.lstat(path)
    except FileNotFoundError:
        return None   # made (0o700) on the first store
    except OSError as error:
        return f"cannot stat it ({error.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if info.st_uid != os.getuid():
        return f"it is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _trusted_dir() -> Optional[str]:
    """The cache directory if it is safe to run code from, else None (warned once)."""
    directory = cache_dir()
    if directory is None:
        return None
    problem = _private_dir_problem(directory)
    if problem is None:
        return directory
    if directory not in _warned_dirs:
        _warned_dirs.add(directory)
        log.warning("flowjit: not using the compile cache %s: %s (fix its owner/mode or "
                    "set FLOWJIT_CACHE_DIR)", directory, problem)
    return None


def _entry_path(directory: str, key: str) -> str:
    return os.path.join(directory, key[:2], key + ".o")


def load(key: str) -> Optional[bytes]:
    """The cached object code for `key`, or None (a corrupt entry is removed)."""
    directory = _trusted_dir()
    if directory is None or not _is_key(key):
        return None
    shard = os.path.join(directory, key[:2])
    if not os.path.isdir(shard) or _private_dir_problem(shard, follow_links=False):
        return None
    path = _entry_path(directory, key)
    data = _read_regular_file(path)
    if data is None:
        return None
    payload = _payload(data, key)
    if payload is None:
        _remove(path)   # corrupt, truncated or another key's: rebuild it
    return payload


def _read_regular_file(path: str) -> Optional[bytes]:
    """The bytes of `path` if it is a regular file of this user's, at most
    MAX_ENTRY_BYTES long; None for anything else (links, FIFOs, devices, huge files)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None   # missing, or a symbolic link (ELOOP)
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                or info.st_size > MAX_ENTRY_BYTES):
            return None
        chunks, left = [], info.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _payload(data: bytes, key: str) -> Optional[bytes]:
    """The payload of an entry if it is whole and was written for `key`, else None."""
    if len(data) < _HEADER or not data.startswith(MAGIC):
        return None
    offset = len(MAGIC)
    stored_key = data[offset:offset + KEY_BYTES]
    offset += KEY_BYTES
    length = int.from_bytes(data[offset:offset + _LENGTH_BYTES], "little")
    offset += _LENGTH_BYTES
    checksum = data[offset:offset + 32]
    payload = data[_HEADER:]
    if stored_key != key.encode() or length != len(payload):
        return None
    if _checksum(stored_key, payload) != checksum:
        return None
    return payload


def _checksum(key: bytes, payload: bytes) -> bytes:
    return hashlib.sha256(MAGIC + key + len(payload).to_bytes(_LENGTH_BYTES, "little")
                          + payload).digest()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def entry_bytes(key: str, code: bytes) -> bytes:
    """The bytes `store` writes for `key` (tests forge and tamper with entries from it)."""
    encoded = key.encode()
    return (MAGIC + encoded + len(code).to_bytes(_LENGTH_BYTES, "little")
            + _checksum(encoded, code) + code)


def store(key: str, code: bytes) -> None:
    """Write an entry atomically; failures (read-only disk, ...) only cost the cache."""
    if not _is_key(key) or len(code) + _HEADER > MAX_ENTRY_BYTES:
        return
    directory = cache_dir()
    if directory is None:
        return
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if _trusted_dir() is None:
            return
        shard = os.path.join(directory, key[:2])
        os.makedirs(shard, mode=0o700, exist_ok=True)
        if _private_dir_problem(shard, follow_links=False):
            return
        fd, tmp = tempfile.mkstemp(dir=shard, suffix=".tmp")   # mode 0o600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(entry_bytes(key, code))
            os.replace(tmp, _entry_path(directory, key))
        except BaseException:
            _remove(tmp)
            raise
    except OSError:
        pass
