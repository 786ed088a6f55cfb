"""Timing helpers shared by the benchmarks: medians after warm-up, measured bandwidth."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 2,
                min_seconds: float = 0.0) -> float:
    """Median wall time of `fn()` in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        _block(fn())
    times = []
    start_all = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start_all < min_seconds:
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
        if len(times) >= 10 * repeats:
            break
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int = 15,
                        warmup: int = 2) -> dict[str, float]:
    """Median seconds of each function, timed in turns (a, b, c, a, b, c, ...) so that a
    burst of load on a shared machine hits all of them alike and their ratios hold."""
    for fn in fns.values():
        for _ in range(warmup):
            _block(fn())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _block(fn())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _block(result: object) -> None:
    """Wait for a result (JAX dispatches asynchronously)."""
    if hasattr(result, "block_until_ready"):
        result.block_until_ready()
    elif isinstance(result, (tuple, list)):
        for r in result:
            _block(r)


def copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes per second of a large memory copy (read + write counted), measured now."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    seconds = median_time(lambda: np.copyto(dst, src), repeats=5)
    return 2 * src.nbytes / seconds


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
