"""Sorting: flowjit vs numpy and jax.jit side by side in one run.

    python -m bench.sort            # full sizes
    python -m bench.sort --small    # quick smoke run

Rows: sort of f32 rows (64 x 16384; issue 15's target: at most numpy's time), argsort of the
same rows, and top_k (256 x 4096, k=8; target: at most JAX's time). Outputs are compared
with numpy's / JAX's first; times are medians of interleaved runs after warm-up.
"""
from __future__ import annotations

import argparse

import numpy as np

import flowjit
import flowjit.lax as flax
import flowjit.numpy as fnp
from bench.timing import format_table, interleaved_medians
from flowjit.codegen.parallel import thread_count


def _leaves(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    import jax
    import jax.numpy as jnp
    rows_shape = (8, 2048) if args.small else (64, 16384)
    topk_shape = (32, 512) if args.small else (256, 4096)
    repeats = 5 if args.small else 15
    rng = np.random.default_rng(0)
    x = rng.standard_normal(rows_shape).astype(np.float32)
    scores = rng.standard_normal(topk_shape).astype(np.float32)

    cases = {
        f"sort f32 {rows_shape[0]}x{rows_shape[1]}": (
            fnp.sort, jnp.sort, lambda a: np.sort(a, axis=-1), x),
        f"argsort f32 {rows_shape[0]}x{rows_shape[1]}": (
            fnp.argsort, jnp.argsort, lambda a: np.argsort(a, axis=-1, kind="stable"), x),
        f"top_k {topk_shape[0]}x{topk_shape[1]} k=8": (
            lambda a: flax.top_k(a, 8), lambda a: jax.lax.top_k(a, 8), None, scores),
    }
    table = []
    for name, (ours, theirs, numpy_fn, arg) in cases.items():
        ours_jit, theirs_jit = flowjit.jit(ours), jax.jit(theirs)
        for got, want in zip(_leaves(ours_jit(arg)), _leaves(theirs_jit(arg))):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        fns = {"flowjit": lambda: ours_jit(arg), "jax": lambda: theirs_jit(arg)}
        if numpy_fn is not None:
            fns["numpy"] = lambda: numpy_fn(arg)
        times = interleaved_medians(fns, repeats=repeats)
        versus_numpy = (f"{times['flowjit'] / times['numpy']:.2f}x"
                        if "numpy" in times else "")
        table.append([name, f"{times['flowjit'] * 1e3:.2f}",
                      f"{times['numpy'] * 1e3:.2f}" if "numpy" in times else "",
                      f"{times['jax'] * 1e3:.2f}", versus_numpy,
                      f"{times['flowjit'] / times['jax']:.2f}x"])
    print(f"threads: {thread_count()}")
    print(format_table(["case", "flowjit ms", "numpy ms", "jax.jit ms", "flowjit/numpy",
                        "flowjit/jax"], table))


if __name__ == "__main__":
    main()
