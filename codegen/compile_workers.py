"""Compile workers: LLVM IR turned into object code by other processes, at the same time as
this one works on its own part (llvmlite serializes LLVM calls within a process, so threads
would not help). XLA:CPU splits a module across threads for the same reason.

Workers are plain subprocesses running `python -m flowjit.codegen.llvm_worker` (no fork of
this process, which may hold other libraries' threads). They are started early, before the
first large module is ready, and live as long as this process. Any failure — a worker that
died, could not start or reports an error — returns None, and the caller compiles that part
itself; a worker that dies is logged once per process, with what it printed.
"""
from __future__ import annotations

import atexit
import logging
import subprocess
import sys
import threading
from typing import Optional

from flowjit.codegen import llvm_target

WORKER_COMMAND = [sys.executable, "-m", "flowjit.codegen.llvm_worker"]
_HEADER_SIZE = 16   # llvm_worker.REQUEST: <IIQ
_REPLY_SIZE = 9     # llvm_worker.REPLY: <BQ


class Worker:
    def __init__(self):
        # stderr is read only once the worker has died, so it cannot fill and block.
        self.process = subprocess.Popen(WORKER_COMMAND, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._writer: Optional[threading.Thread] = None
        self.pending = 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def submit(self, text: str, opt_level: int, features: str) -> None:
        """Queue one text, to build for LLVM `features`; its result comes from the next
        `result()` in order."""
        data, feature_data = text.encode(), features.encode()
        message = (opt_level.to_bytes(4, "little") + len(feature_data).to_bytes(4, "little")
                   + len(data).to_bytes(8, "little") + feature_data + data)
        previous = self._writer

        def write() -> None:
            if previous is not None:
                previous.join()
            try:
                self.process.stdin.write(message)
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass   # result() sees the worker gone
        # A thread, so a worker still starting up cannot block us on a full pipe.
        self._writer = threading.Thread(target=write, daemon=True)
        self._writer.start()
        self.pending += 1

    def result(self) -> Optional[bytes]:
        self.pending -= 1
        try:
            head = self.process.stdout.read(_REPLY_SIZE)
            if len(head) != _REPLY_SIZE:
                self.process.wait()
                _log_death(self)
                return None
            status, size = head[0], int.from_bytes(head[1:], "little")
            payload = self.process.stdout.read(size)
        except (OSError, ValueError):
            return None
        if status != 0 or len(payload) != size:
            return None
        return payload

    def report_if_dead(self) -> None:
        if not self.alive:
            _log_death(self)

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=1)
        except Exception:
            self.process.kill()


_workers: list[Worker] = []
_lock = threading.Lock()
_death_logged = False


def _log_death(worker: Worker) -> None:
    """Say once per process that a worker died (compiles go on in this process)."""
    global _death_logged
    if _death_logged:
        return
    _death_logged = True
    try:
        said = worker.process.stderr.read().decode(errors="replace").strip()
    except (OSError, ValueError):
        said = ""
    logging.getLogger("flowjit").warning(
        "a compile worker (%s) exited with status %s; compiling in this process instead%s",
        " ".join(WORKER_COMMAND[1:]), worker.process.returncode,
        f":\n{said[-2000:]}" if said else "")


def start(count: int) -> None:
    """Make sure `count` workers are running (or starting)."""
    with _lock:
        for worker in _workers:
            worker.report_if_dead()
        _workers[:] = [w for w in _workers if w.alive]
        while len(_workers) < count:
            try:
                _workers.append(Worker())
            except OSError:
                return


def compile_texts(texts: list[str], opt_level: int, features: Optional[str] = None):
    """Hand `texts` to the workers, to build for LLVM `features` (default: the selected
    CPU feature set's); returns a function that waits and gives each text's object code
    (None for any the workers did not deliver)."""
    if features is None:
        features = llvm_target.target_features(llvm_target.selected_cpu_features())
    with _lock:
        workers = [w for w in _workers if w.alive]
    if not workers:
        return lambda: [None] * len(texts)
    order = []
    for k, text in enumerate(texts):
        worker = workers[k % len(workers)]
        worker.submit(text, opt_level, features)
        order.append(worker)

    def wait() -> list[Optional[bytes]]:
        return [worker.result() for worker in order]
    return wait


def running() -> int:
    with _lock:
        return sum(w.alive for w in _workers)


def stop() -> None:
    with _lock:
        for worker in _workers:
            worker.close()
        _workers.clear()


atexit.register(stop)
