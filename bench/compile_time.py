"""Compile time against program length: a chain of N elementwise ops under jit at opt_level
0 (one kernel per op) and 2 (fused), split into tracing, passes, LLVM IR emission and LLVM
(parse, optimize, machine code, in parallel parts where the module is split).

    python -m bench.compile_time [--ops 1000 2000 5000 10000] [--levels 0 2]

Every compile is fresh (the disk cache is off). One compile per row: at these sizes a
compile takes seconds and the shares matter more than the noise. The chain is x*a+b with a
sine every eighth step (1.9 ops a step), each multiplier its own constant; "us/op" is the
total over the ops, flat when the growth is linear. The machine's other load shows in the
wall times; "cpu" is this process's CPU time (compile workers, when the module is split,
run in other processes).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench.timing import format_table

LLVM_PHASES = ("llvm_parse", "llvm_optimize", "machine_code", "wait_for_parts", "link")


def chain(x, steps: int):
    # Each step its own constant: at opt_level 2 no two fused kernels are alike, so none is
    # shared (equal kernels are compiled once) and LLVM compiles every one.
    for k in range(steps):
        x = fnp.sin(x) if k % 8 == 0 else x * (1.0 + k * 1e-7) + 0.5
    return x


def steps_for(ops: int) -> int:
    """Steps of `chain` that make about `ops` elementwise ops (a sine step is one op)."""
    return round(ops * 8 / 15)


def measure(ops: int, opt_level: int) -> dict:
    """Seconds of each phase of one fresh compile of a chain of `ops` ops."""
    steps = steps_for(ops)
    x = np.linspace(-1, 1, 1024).astype(np.float32)
    jitted = flowjit.jit(lambda v: chain(v, steps), opt_level=opt_level)
    wall, cpu = time.perf_counter(), time.process_time()
    compiled = jitted.lower(x).compile()
    timings = compiled.timings
    return {"total": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "trace": timings.get("trace", 0.0), "passes": timings.get("passes", 0.0),
            "llvm_ir": timings.get("llvm_ir", 0.0),
            "llvm": sum(timings.get(k, 0.0) for k in LLVM_PHASES)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    os.environ["FLOWJIT_CACHE_DIR"] = "off"
    rows = []
    for level in args.levels:
        for ops in args.ops:
            m = measure(ops, level)
            rows.append([f"O{level}", str(ops), f"{m['total']:.2f}", f"{m['cpu']:.2f}",
                         f"{m['trace']:.2f}", f"{m['passes']:.2f}", f"{m['llvm_ir']:.2f}",
                         f"{m['llvm']:.2f}", f"{1e6 * m['total'] / ops:.0f}"])
            print(" ".join(rows[-1]), flush=True)
    print()
    print(format_table(["level", "ops", "total s", "cpu s", "trace", "passes", "llvm ir",
                        "llvm", "us/op"], rows))


if __name__ == "__main__":
    main()
