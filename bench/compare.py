"""flowjit vs numpy, JAX (and PyTorch eager) side by side, in one run: the issue-6 table.

    python -m bench.compare            # full sizes
    python -m bench.compare --small    # quick smoke run

Prints one table of median times and flowjit/JAX ratios (gelu chain, softmax, layernorm,
MLP training step, first-call compile, compile with a warm disk cache in a new process,
dispatch of a jitted call with four small arrays), and writes a roofline PNG.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

import compiler
from bench import fusion, train_mlp
from bench.timing import copy_bandwidth, format_table, median_time
from compiler import tree


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
    code = ("import time, compiler; from bench.train_mlp import make, flowjit_step; "
            "p, x, y = make(); t = time.perf_counter(); "
            "compiler.jit(flowjit_step).lower(p, x, y).compile(); "
            "print(time.perf_counter() - t)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root)
    if out.returncode != 0:
        raise RuntimeError(f"the compile in a new process failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def run(small: bool) -> None:
    jax, jnp = _jax()
    torch = _torch()
    rows, points = [], []
    bandwidth = copy_bandwidth(1 << (24 if small else 28))
    jax_fns = jax_versions(jax, jnp) if jax else {}
    for name, fn, np_fn, args, min_bytes in fusion.workloads(small):
        if name not in ("gelu(x*a+b)", "softmax", "layernorm"):
            continue
        compiled = compiler.jit(fn).lower(*args).compile()
        leaves = tree.flatten(args)[0]
        ours = median_time(lambda: compiled(*leaves))
        theirs_np = median_time(lambda: np_fn(*args))
        row = [name, f"{ours * 1e3:.2f}", f"{theirs_np * 1e3:.2f}"]
        if jax:
            jargs = [jnp.asarray(a) for a in args]
            jt = median_time(lambda: jax_fns[name](*jargs))
            row += [f"{jt * 1e3:.2f}", f"{ours / jt:.2f}"]
        else:
            row += ["-", "-"]
        row.append(_torch_time(torch, name, args) if torch else "-")
        rows.append(row)
        cost = compiled.cost_analysis()
        points.append((name, cost["flops"] / max(cost["bytes accessed"], 1),
                       cost["flops"] / ours / 1e9))
    # The MLP training step; a fresh disk cache, so the first call really compiles.
    import tempfile
    os.environ["FLOWJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="flowjit-bench-cache-")
    params, x, y = train_mlp.make()
    start = time.perf_counter()
    step = compiler.jit(train_mlp.flowjit_step)
    step(params, x, y)
    first = time.perf_counter() - start
    ours = median_time(lambda: step(params, x, y), repeats=20)
    np_t = median_time(lambda: train_mlp.numpy_step(params, x, y), repeats=20)
    row = ["mlp train step", f"{ours * 1e3:.2f}", f"{np_t * 1e3:.2f}"]
    first_row = ["first-call compile (mlp step)", f"{first * 1e3:.0f}", "-"]
    if jax:
        jax_step, jparams = _jax_train(jax, jnp, params)
        t0 = time.perf_counter()
        jax.block_until_ready(jax_step(jparams, x, y))
        jax_first = time.perf_counter() - t0
        jt = median_time(lambda: jax_step(jparams, x, y), repeats=20)
        row += [f"{jt * 1e3:.2f}", f"{ours / jt:.2f}", "-"]
        first_row += [f"{jax_first * 1e3:.0f}", f"{first / jax_first:.2f}", "-"]
    else:
        row += ["-", "-", "-"]
        first_row += ["-", "-", "-"]
    rows += [row, first_row]
    warm = compile_in_new_process()
    rows.append(["new process, warm disk cache (compile)", f"{warm * 1e3:.0f}", "-", "-",
                 "(target <= 150 ms)", "-"])
    # Dispatch: a jitted call with four small arrays.
    small_args = [np.ones(4, np.float32) for _ in range(4)]
    add4 = compiler.jit(lambda a, b, c, d: a + b + c + d)
    add4(*small_args)
    ours = median_time(lambda: add4(*small_args), repeats=200)
    row = ["dispatch, 4 small arrays", f"{ours * 1e6:.1f} us", "-"]
    if jax:
        jadd = jax.jit(lambda a, b, c, d: a + b + c + d)
        jsmall = [jnp.asarray(a) for a in small_args]
        jadd(*jsmall).block_until_ready()
        jt = median_time(lambda: jadd(*jsmall), repeats=200)
        row += [f"{jt * 1e6:.1f} us", f"{ours / jt:.2f}", "-"]
    else:
        row += ["-", "-", "-"]
    rows.append(row)
    print(f"measured copy bandwidth {bandwidth / 1e9:.1f} GB/s; "
          f"jax {jax.__version__ if jax else 'not installed'}; "
          f"torch {torch.__version__ if torch else 'not installed'}")
    print(format_table(["workload", "flowjit ms", "numpy ms", "JAX ms", "flowjit/JAX",
                        "torch eager ms"], rows))
    _roofline(points, bandwidth)


def _torch_time(torch, name, args) -> str:
    t = [torch.from_numpy(np.asarray(a)) for a in args]
    fns = {"gelu(x*a+b)": lambda x, a, b: torch.nn.functional.gelu(x * a + b,
                                                                      approximate="tanh"),
           "softmax": lambda x: torch.softmax(x, -1),
           "layernorm": lambda x, g, b: torch.nn.functional.layer_norm(x, x.shape[-1:], g, b)}
    return f"{median_time(lambda: fns[name](*t)) * 1e3:.2f}"


def _jax_train(jax, jnp, params):
    lr = train_mlp.LR

    def loss(params, x, y):
        for w, b in params[:-1]:
            x = jax.nn.relu(x @ w + b)
        w, b = params[-1]
        logp = jax.nn.log_softmax(x @ w + b)
        return -jnp.mean(logp[jnp.arange(x.shape[0]), y])

    @jax.jit
    def step(params, x, y):
        grads = jax.grad(loss)(params, x, y)
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)]
    return step, [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]


def _roofline(points, bandwidth, path: str = "bench/results/roofline.png") -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    peak = 2 * 1024 ** 3 / median_time(lambda: a @ a) / 1e9   # measured matmul GFLOP/s
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
    run(parser.parse_args().small)


if __name__ == "__main__":
    main()
