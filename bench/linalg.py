"""Cholesky + solve at n=512: flowjit vs numpy.linalg (one BLAS thread and all of them) and
JAX, side by side in one run (issue 15's target: <= 1.2x the best numpy).

    python -m bench.linalg            # n = 512
    python -m bench.linalg --n 256

The program is `cholesky(a)` and `solve(a, b)` (b: n x 8) on a symmetric positive definite
f32 matrix: one potrf, one getrf and four trsm calls in LAPACK. numpy's OpenBLAS (its own
copy) is set to one thread, then to all cores, through its own set_num_threads (no
threadpoolctl here); flowjit always runs LAPACK on one thread (its runtime owns the
threads). Times are medians of interleaved runs; the machine is shared, so read the ratios.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import os

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench.timing import format_table, interleaved_medians


def _numpy_openblas():
    """numpy's own OpenBLAS and its set_num_threads, or None."""
    root = os.path.dirname(np.__file__)
    for path in glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*openblas*")):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(library, name):
                return getattr(library, name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    n = args.n
    rng = np.random.default_rng(0)
    m = rng.normal(size=(n, n))
    a = (m @ m.T / n + np.eye(n)).astype(np.float32)
    b = rng.normal(size=(n, 8)).astype(np.float32)

    def numpy_program():
        return np.linalg.cholesky(a), np.linalg.solve(a, b)

    ours = flowjit.jit(lambda a, b: (fnp.linalg.cholesky(a), fnp.linalg.solve(a, b)))
    chol, x = ours(a, b)
    want_chol, want_x = numpy_program()
    np.testing.assert_allclose(chol, want_chol, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(x, want_x, rtol=1e-3, atol=1e-4)

    set_threads = _numpy_openblas()
    cores = len(os.sched_getaffinity(0))
    programs = {"flowjit": lambda: ours(a, b), "numpy": numpy_program}
    try:
        import jax
        import jax.numpy as jnp
        jax_program = jax.jit(lambda a, b: (jnp.linalg.cholesky(a), jnp.linalg.solve(a, b)))
        jax_program(a, b)
        programs["jax"] = lambda: jax_program(a, b)
    except ImportError:
        pass
    # One phase per numpy thread count (OpenBLAS's idle threads spin for a while after a
    # threaded call and would slow whatever runs next); in each, the programs in turns.
    times = {}
    for threads in ([1, cores] if set_threads is not None else [None]):
        if threads is not None:
            set_threads(threads)
        phase = interleaved_medians(programs, repeats=args.repeats)
        label = "" if threads is None else f", {threads} thread{'s' if threads > 1 else ''}"
        for name, seconds in phase.items():
            key = name + (label if name == "numpy" else f" (numpy phase{label})")
            times[key] = seconds
    best_numpy = min(t for name, t in times.items() if name.startswith("numpy"))
    rows = [[name, f"{t * 1e3:.2f}", f"{t / best_numpy:.2f}"] for name, t in times.items()]
    print(f"cholesky + solve, n={n}, f32 ({cores} cores, shared machine: ratios, not "
          f"absolute times)")
    print(format_table(["program", "median ms", "vs best numpy"], rows))


if __name__ == "__main__":
    main()
