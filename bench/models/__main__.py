"""The model zoo side by side: flowjit jit vs JAX jit, idle and with a busy neighbour.

    python -m bench.models                 # the table, idle
    python -m bench.models --load          # then again while another process loads the CPUs
    python -m bench.models --plot out.png  # and a PNG of the ratios
    python -m bench.models --only LSTM     # rows whose name contains a word

Times are medians of interleaved runs after warm-up (flowjit, JAX, flowjit, ...), so a burst
of load hits both alike; "first call" is trace + compile + one run, with a fresh disk cache.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import tempfile
import time

from bench.models.neighbour import busy
from bench.models.zoo import flowjit_backend, jax_backend, workloads
from bench.timing import format_table, interleaved_medians


def _first_call(fn, args) -> float:
    start = time.perf_counter()
    _wait(fn(*args))
    return time.perf_counter() - start


def _wait(result) -> None:
    import jax
    jax.block_until_ready(result)


def measure(only: str = "", repeats: int = 10) -> list[dict]:
    flowjit, jax = flowjit_backend(), jax_backend()
    rows = []
    for work in workloads():
        if only and only.lower() not in work.name.lower():
            continue
        ours = flowjit.jit(work.make_fn(flowjit))
        theirs = jax.jit(work.make_fn(jax))
        jax_args = jax_device_args(work.args)
        first = {"flowjit": _first_call(ours, work.args),
                 "JAX": _first_call(theirs, jax_args)}
        times = interleaved_medians({"flowjit": lambda: ours(*work.args),
                                     "JAX": lambda: _wait(theirs(*jax_args))},
                                    repeats=repeats)
        rows.append({"name": work.name, "flowjit": times["flowjit"], "JAX": times["JAX"],
                     "first flowjit": first["flowjit"], "first JAX": first["JAX"]})
        print(f"  measured {work.name}", flush=True)
    return rows


def jax_device_args(args):
    import jax
    return jax.tree_util.tree_map(jax.numpy.asarray, args)


def render(rows: list[dict]) -> str:
    table = [[r["name"], f"{r['flowjit'] * 1e3:.2f}", f"{r['JAX'] * 1e3:.2f}",
              f"{r['flowjit'] / r['JAX']:.2f}", f"{r['first flowjit'] * 1e3:.0f}",
              f"{r['first JAX'] * 1e3:.0f}"] for r in rows]
    return format_table(["workload", "flowjit ms", "JAX ms", "flowjit/JAX",
                         "first call flowjit ms", "first call JAX ms"], table)


def plot(results: dict[str, list[dict]], path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("--plot needs matplotlib: pip install -e '.[bench]'")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["name"] for r in next(iter(results.values()))]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.5))
    height = 0.8 / len(results)
    for k, (label, rows) in enumerate(results.items()):
        ratios = [r["flowjit"] / r["JAX"] for r in rows]
        ax.barh([i + k * height for i in range(len(rows))], ratios, height, label=label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks([i + height * (len(results) - 1) / 2 for i in range(len(names))], names)
    ax.set_xlabel("flowjit time / JAX time (lower is better)")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", action="store_true", help="also measure under load")
    parser.add_argument("--plot", metavar="PNG", help="write a bar chart of the ratios")
    parser.add_argument("--only", default="", help="rows whose name contains this")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    os.environ["FLOWJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="flowjit-zoo-cache-")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    results = {"idle": measure(args.only, args.repeats)}
    print("\nidle:\n" + render(results["idle"]))
    if args.load:
        spawn = multiprocessing.get_context("spawn")   # no fork of a process JAX threads in
        stop = spawn.Event()
        neighbour = spawn.Process(target=busy, args=(stop,), daemon=True)
        neighbour.start()
        time.sleep(3)   # its start-up (numpy's import) is not the load
        if not neighbour.is_alive():
            raise SystemExit("bench.models: the neighbour process died; no table under load")
        try:
            os.environ["FLOWJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="flowjit-zoo-cache-")
            results["under load"] = measure(args.only, args.repeats)
        finally:
            stop.set()
            neighbour.join(timeout=10)
        if not neighbour.is_alive() and neighbour.exitcode not in (0, None):
            raise SystemExit("bench.models: the neighbour process died during the run")
        print("\nunder load (a neighbour process doing multithreaded numpy matmuls):\n"
              + render(results["under load"]))
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
