"""flowjit vs numpy, JAX (and PyTorch eager) side by side, in one run: the issue-6 table.

    python -m bench.compare            # full sizes
    python -m bench.compare --small    # quick smoke run
    python -m bench.compare --cpu-features avx2   # both compilers limited to AVX2

`--cpu-features avx2` builds flowjit's code without AVX-512 (`flowjit.config` option
`cpu_features`) and limits XLA the same way (`--xla_cpu_max_isa=AVX2`), so an AVX-512
machine measures what AVX2-only machines run. The default: each compiler uses every feature
of this CPU (XLA prefers 256-bit vectors even then).

Where this machine pins OpenBLAS to an older kernel (OPENBLAS_CORETYPE), unset it for the
run: numpy and flowjit's large dots both use numpy's OpenBLAS.

Prints one table of median times and flowjit/JAX ratios (gelu chain, softmax, layernorm,
MLP training step, first-call compile, compile with a warm disk cache in a new process,
dispatch of a jitted call with four small arrays), and writes a roofline PNG.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench import fusion, train_mlp
from bench.timing import copy_bandwidth, format_table, interleaved_medians, median_time
from flowjit import tree


def _jax():
    try:
        import jax
        import jax.numpy as jnp
        return jax, jnp
    except ImportError:
        return None, None


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def jax_versions(jax, jnp):
    def gelu(x, a, b):
        y = x * a + b
        return 0.5 * y * (1.0 + jnp.tanh(0.7978845608 * (y + 0.044715 * y * y * y)))

    def softmax(x):
        return jax.nn.softmax(x, axis=-1)

    def layernorm(x, g, b):
        mean = x.mean(-1, keepdims=True)
        c = x - mean
        return c / jnp.sqrt((c * c).mean(-1, keepdims=True) + 1e-5) * g + b
    return {"gelu(x*a+b)": jax.jit(gelu), "softmax": jax.jit(softmax),
            "layernorm": jax.jit(layernorm)}


def compile_in_new_process() -> float:
    """Compile-side seconds of the MLP step in a fresh process (warm disk cache)."""
    code = ("import time, flowjit; from bench.train_mlp import make, flowjit_step; "
            "p, x, y = make(); t = time.perf_counter(); "
            "flowjit.jit(flowjit_step).lower(p, x, y).compile(); "
            "print(time.perf_counter() - t)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root)
    if out.returncode != 0:
        raise RuntimeError(f"the compile in a new process failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _row(name: str, times: dict, unit: str = "ms") -> list[str]:
    """A table row from interleaved medians: flowjit, numpy, JAX, flowjit/JAX, torch."""
    scale, fmt = (1e6, "{:.1f} us") if unit == "us" else (1e3, "{:.2f}")
    cell = lambda key: fmt.format(times[key] * scale) if key in times else "-"  # noqa
    ratio = f"{times['flowjit'] / times['jax']:.2f}" if "jax" in times else "-"
    return [name, cell("flowjit"), cell("numpy"), cell("jax"), ratio, cell("torch")]


def _workloads(small: bool):
    """The kernel rows: bench.fusion's gelu chain, softmax and layernorm, and the gelu
    chain once more at a size that fits in the last-level cache (2**22; 2**14 if small),
    where transcendental code, not memory, sets the speed."""
    rows = []
    for name, fn, np_fn, args, min_bytes in fusion.workloads(small):
        if name == "gelu(x*a+b)":
            n = args[0].size
            cached = [a[:n >> 2].copy() for a in args]
            rows.append((f"{name} 2^{cached[0].size.bit_length() - 1}", fn, np_fn,
                         tuple(cached), name))
            rows.append((f"{name} 2^{n.bit_length() - 1}", fn, np_fn, args, name))
        elif name in ("softmax", "layernorm"):
            rows.append((name, fn, np_fn, args, name))
    return rows


def limit_jax_to(cpu_features: str) -> str:
    """Give XLA the same feature limit as flowjit (before JAX is imported); says what
    JAX uses."""
    if cpu_features == "avx2":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_max_isa=AVX2").strip()
        return "JAX limited to AVX2 (--xla_cpu_max_isa=AVX2)"
    return "JAX with this host's features"


def run(small: bool, cpu_features: str = "host", kernels_only: bool = False,
        repeats: Optional[int] = None) -> None:
    jax_note = limit_jax_to(cpu_features)
    flowjit.config.update("cpu_features", cpu_features)
    os.environ["FLOWJIT_CPU_FEATURES"] = cpu_features   # for the compile in a new process
    jax, jnp = _jax()
    torch = _torch()
    rows, points = [], []
    bandwidth = copy_bandwidth(1 << (24 if small else 28))
    jax_fns = jax_versions(jax, jnp) if jax else {}
    repeats = repeats or (5 if small else 15)
    for label, fn, np_fn, args, name in _workloads(small):
        compiled = flowjit.jit(fn).lower(*args).compile()
        leaves = tree.flatten(args)[0]
        fns = {"flowjit": lambda: compiled(*leaves), "numpy": lambda: np_fn(*args)}
        if jax:
            jargs = [jnp.asarray(a) for a in args]
            fns["jax"] = lambda: jax_fns[name](*jargs)
        times = interleaved_medians(fns, repeats)
        if torch:
            # Timed on its own, after the others: PyTorch's OpenMP threads spin for a while
            # after each call and, on a small machine, slow whatever runs next (flowjit and
            # JAX by 1.5-2x on 2 cores), which would skew the interleaved ratios.
            times["torch"] = median_time(_torch_fn(torch, name, args), repeats)
        rows.append(_row(label, times))
        cost = compiled.cost_analysis()
        points.append((label, cost["flops"] / max(cost["bytes accessed"], 1),
                       cost["flops"] / times["flowjit"] / 1e9))
    if not kernels_only:
        rows += _matmul_rows(jax, jnp, small, repeats, points)
    # The MLP training step; a fresh disk cache, so the first call really compiles.
    params, x, y = train_mlp.make()
    step = flowjit.jit(train_mlp.flowjit_step)
    step(params, x, y)
    fns = {"flowjit": lambda: step(params, x, y),
           "numpy": lambda: train_mlp.numpy_step(params, x, y)}
    if jax:
        jax_step, jparams = train_mlp.jax_step_and_params(params)
        fns["jax"] = lambda: jax_step(jparams, x, y)
    rows.append(_row("mlp train step", interleaved_medians(fns, 2 * repeats)))
    if not kernels_only:
        rows += _compile_and_dispatch_rows(jax, jnp, params, x, y)
    print(f"flowjit cpu_features={cpu_features}; {jax_note}")
    print(f"measured copy bandwidth {bandwidth / 1e9:.1f} GB/s; "
          f"jax {jax.__version__ if jax else 'not installed'}; "
          f"torch {torch.__version__ if torch else 'not installed'}; "
          f"timings interleaved, medians of {repeats}+ runs")
    print(format_table(["workload", "flowjit ms", "numpy ms", "JAX ms", "flowjit/JAX",
                        "torch eager ms"], rows))
    if not kernels_only:
        _roofline(points, bandwidth)


def _compile_and_dispatch_rows(jax, jnp, params, x, y) -> list[list[str]]:
    """First-call compile, compile in a new process, dispatch of four small arrays."""
    rows = []
    rows.append(_row("first-call compile (mlp step), median of 3",
                     _first_calls(jax, jnp, params, x, y)))
    warm = compile_in_new_process()
    rows.append(["new process, warm disk cache (compile)", f"{warm * 1e3:.0f}", "-", "-",
                 "(target <= 150 ms)", "-"])
    # Dispatch: a jitted call with four small arrays.
    small_args = [np.ones(4, np.float32) for _ in range(4)]
    add4 = flowjit.jit(lambda a, b, c, d: a + b + c + d)
    fns = {"flowjit": lambda: add4(*small_args)}
    if jax:
        jadd = jax.jit(lambda a, b, c, d: a + b + c + d)
        jsmall = [jnp.asarray(a) for a in small_args]
        fns["jax"] = lambda: jadd(*jsmall)
    times = interleaved_medians(fns, 300)
    rows.append(_row("dispatch, 4 small arrays", times, unit="us"))
    return rows


def _first_calls(jax, jnp, params, x, y, runs: int = 3) -> dict:
    """First call (trace + compile + run) of the MLP step, each time from nothing: a new
    jit object and an empty disk cache for flowjit, cleared caches for JAX."""
    ours, theirs = [], []
    for _ in range(runs):
        os.environ["FLOWJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="flowjit-bench-cache-")
        start = time.perf_counter()
        flowjit.jit(train_mlp.flowjit_step)(params, x, y)
        ours.append(time.perf_counter() - start)
        if jax:
            jax.clear_caches()
            jax_step, jparams = train_mlp.jax_step_and_params(params)
            start = time.perf_counter()
            jax.block_until_ready(jax_step(jparams, x, y))
            theirs.append(time.perf_counter() - start)
    times = {"flowjit": statistics.median(ours)}
    if theirs:
        times["jax"] = statistics.median(theirs)
    return times


def _matmul_rows(jax, jnp, small: bool, repeats: int, points: list) -> list[list[str]]:
    """f32 matmul at 1024^3 and 2048^3 (target: >= 80% of numpy's BLAS GFLOP/s), and the
    same with a fused bias + relu epilogue."""
    rows = []
    rng = np.random.default_rng(0)
    for n in ((256, 512) if small else (1024, 2048)):
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        for label, fn, np_fn, args in (
                (f"matmul f32 {n}^3", lambda a, b: a @ b, lambda: a @ b, (a, b)),
                (f"relu(x @ w + b) f32 {n}^3", lambda a, b, c: fnp.maximum(a @ b + c, 0.0),
                 lambda: np.maximum(a @ b + bias, 0.0), (a, b, bias))):
            compiled = flowjit.jit(fn).lower(*args).compile()
            fns = {"flowjit": lambda: compiled(*args), "numpy": np_fn}
            if jax:
                jfn = jax.jit(lambda a, b, *c: jnp.maximum(a @ b + c[0], 0.0) if c else a @ b)
                jargs = [jnp.asarray(v) for v in args]
                fns["jax"] = lambda: jfn(*jargs)
            times = interleaved_medians(fns, max(3, repeats // 3))
            row = _row(label, times)
            if label.startswith("matmul"):   # 2n^3 flops over three n x n f32 matrices
                points.append((label, 2 * n ** 3 / (3 * 4 * n * n),
                               2 * n ** 3 / times["flowjit"] / 1e9))
            row[0] += f" ({2 * n ** 3 / times['flowjit'] / 1e9:.0f} GFLOP/s, " \
                      f"{times['numpy'] / times['flowjit']:.0%} of numpy's)"
            rows.append(row)
    return rows


def _torch_fn(torch, name, args):
    t = [torch.from_numpy(np.asarray(a)) for a in args]
    fns = {"gelu(x*a+b)": lambda x, a, b: torch.nn.functional.gelu(x * a + b,
                                                                      approximate="tanh"),
           "softmax": lambda x: torch.softmax(x, -1),
           "layernorm": lambda x, g, b: torch.nn.functional.layer_norm(x, x.shape[-1:], g, b)}
    return lambda: fns[name](*t)


def _roofline(points, bandwidth, path: str = "bench/results/roofline.png") -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    # Peak: the best of numpy's 1024^3 matmul now and what flowjit's matmuls reached.
    peak = max([2 * 1024 ** 3 / median_time(lambda: a @ a, repeats=11) / 1e9]
               + [y for _, _, y in points])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    intensity = np.logspace(-2, 3, 100)
    ax.plot(intensity, np.minimum(peak, intensity * bandwidth / 1e9), "k-",
            label=f"roofline ({bandwidth / 1e9:.0f} GB/s, {peak:.0f} GFLOP/s)")
    for name, x, y in points:
        ax.plot([x], [y], "o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (flop/byte)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"roofline: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--cpu-features", choices=["host", "avx2"], default="host",
                        help="build flowjit's (and limit XLA's) code to this feature set")
    parser.add_argument("--kernels-only", action="store_true",
                        help="only the gelu, softmax, layernorm and MLP-step rows")
    parser.add_argument("--repeats", type=int, help="timed runs per row (default 15)")
    args = parser.parse_args()
    run(args.small, args.cpu_features, args.kernels_only, args.repeats)


if __name__ == "__main__":
    main()
