"""Windowed reductions: pooling and cumsum, flowjit vs jax.jit side by side in one run.

    python -m bench.windows            # full sizes
    python -m bench.windows --small    # quick smoke run

Rows: max_pool 2x2 stride 2 and 3x3 stride 2 (SAME) over NHWC [8,112,112,64] f32, the
gradient of the 3x3 one (select-and-scatter), avg_pool 3x3 s2, and cumsum over 2^24 f32
with its bandwidth as a fraction of a copy of the same array timed in the same turns (one
read and one write of the array is the least a cumsum can move). Times are medians of
interleaved runs.
"""
from __future__ import annotations

import argparse

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench.timing import copy_bandwidth, format_table, interleaved_medians
from flowjit import nn


def _jax_pool(jax, jnp, window, padding, reducer):
    dims, strides = (1,) + window + (1,), (1, 2, 2, 1)
    if reducer == "max":
        return lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides,
                                               padding)
    return lambda x: jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides,
                                           padding) / np.prod(window)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    import jax
    import jax.numpy as jnp
    batch, side, scan_bits = (2, 32, 16) if args.small else (8, 112, 24)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, side, side, 64)).astype(np.float32)
    long = rng.standard_normal(1 << scan_bits).astype(np.float32)
    repeats = 5 if args.small else 11

    cases = {
        "max_pool 2x2 s2": (lambda x: nn.max_pool(x, (2, 2), (2, 2)),
                            _jax_pool(jax, jnp, (2, 2), "VALID", "max"), x),
        "max_pool 3x3 s2 SAME": (lambda x: nn.max_pool(x, (3, 3), (2, 2), "SAME"),
                                 _jax_pool(jax, jnp, (3, 3), "SAME", "max"), x),
        "avg_pool 3x3 s2 SAME": (lambda x: nn.avg_pool(x, (3, 3), (2, 2), "SAME"),
                                 _jax_pool(jax, jnp, (3, 3), "SAME", "avg"), x),
        "grad max_pool 3x3 s2": (
            flowjit.grad(lambda x: fnp.sum(nn.max_pool(x, (3, 3), (2, 2), "SAME"))),
            jax.grad(lambda x: _jax_pool(jax, jnp, (3, 3), "SAME", "max")(x).sum()), x),
        f"cumsum 2^{scan_bits}": (fnp.cumsum, jnp.cumsum, long),
    }
    rows = []
    bandwidth = copy_bandwidth()
    for name, (ours, theirs, arg) in cases.items():
        ours_jit, theirs_jit = flowjit.jit(ours), jax.jit(theirs)
        np.testing.assert_allclose(np.asarray(ours_jit(arg)), np.asarray(theirs_jit(arg)),
                                   rtol=1e-3, atol=1e-3 * (1 + abs(float(
                                       np.asarray(theirs_jit(arg)).max()))))
        fns = {"flowjit": lambda: ours_jit(arg), "jax": lambda: theirs_jit(arg)}
        if name.startswith("cumsum"):
            # A copy of the same array, timed in the same turns: on a shared machine a
            # bandwidth measured apart from the scan does not compare with it.
            copy_target = np.empty_like(arg)
            fns["copy"] = lambda: np.copyto(copy_target, arg)
        times = interleaved_medians(fns, repeats=repeats)
        note = ""
        if name.startswith("cumsum"):
            note = (f"{times['copy'] / times['flowjit']:.0%} of copy bandwidth "
                    f"(copy {times['copy'] * 1e3:.2f} ms)")
        rows.append([name, f"{times['flowjit'] * 1e3:.2f}", f"{times['jax'] * 1e3:.2f}",
                     f"{times['flowjit'] / times['jax']:.2f}x", note])
    print(f"copy bandwidth: {bandwidth / 1e9:.1f} GB/s (read + write)")
    print(format_table(["case", "flowjit ms", "jax.jit ms", "flowjit/jax", ""], rows))


if __name__ == "__main__":
    main()
