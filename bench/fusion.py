"""Fused vs unfused: each workload at opt_level 0 and 2 and with numpy, in one run.

    python -m bench.fusion            # full sizes (the issue's workloads)
    python -m bench.fusion --small    # quick smoke run

Prints median time, kernels launched, bytes moved, achieved GB/s against the copy bandwidth
measured in the same run, and the O0/O2 ratio; saves a PNG chart when matplotlib is present.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

import flowjit
import flowjit.numpy as fnp
from flowjit import tree
from bench.timing import copy_bandwidth, format_table, median_time

_NOT_KERNELS = {"parameter", "constant", "tuple", "get-tuple-element"}


def kernel_count(module) -> int:
    """Instructions of the entry computation that launch a kernel."""
    return sum(1 for i in module.entry.instructions if i.opcode not in _NOT_KERNELS)


def gelu_chain(x, a, b):
    y = x * a + b
    return 0.5 * y * (1.0 + fnp.tanh(0.7978845608 * (y + 0.044715 * y * y * y)))


def softmax(x):
    e = fnp.exp(x - fnp.max(x, axis=-1, keepdims=True))
    return e / fnp.sum(e, axis=-1, keepdims=True)


def layernorm(x, gamma, beta):
    mean = fnp.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    var = fnp.mean(centered * centered, axis=-1, keepdims=True)
    return centered / fnp.sqrt(var + 1e-5) * gamma + beta


def dense_relu(x, w, b):
    return fnp.maximum(x @ w + b, 0.0)


def adam(p, g, m, v, lr, t):
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat = m / (1 - b1 ** t)
    vhat = v / (1 - b2 ** t)
    return p - lr * mhat / (fnp.sqrt(vhat) + eps), m, v


def mlp10(x, ws):
    for w in ws:
        x = fnp.tanh(x @ w)
    return x


def _numpy_versions():
    def np_gelu(x, a, b):
        y = x * a + b
        return 0.5 * y * (1.0 + np.tanh(np.float32(0.7978845608) * (y + np.float32(0.044715)
                                                                     * y * y * y)))

    def np_softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def np_layernorm(x, gamma, beta):
        mean = x.mean(axis=-1, keepdims=True)
        c = x - mean
        return c / np.sqrt((c * c).mean(axis=-1, keepdims=True) + np.float32(1e-5)) * gamma + beta

    def np_dense(x, w, b):
        return np.maximum(x @ w + b, 0)

    def np_adam(p, g, m, v, lr, t):
        m = np.float32(0.9) * m + np.float32(0.1) * g
        v = np.float32(0.999) * v + np.float32(0.001) * g * g
        mhat = m / np.float32(1 - 0.9 ** t)
        vhat = v / np.float32(1 - 0.999 ** t)
        return p - np.float32(lr) * mhat / (np.sqrt(vhat) + np.float32(1e-8)), m, v

    def np_mlp(x, ws):
        for w in ws:
            x = np.tanh(x @ w)
        return x
    return np_gelu, np_softmax, np_layernorm, np_dense, np_adam, np_mlp


def workloads(small: bool):
    rng = np.random.default_rng(0)
    f32 = np.float32
    n = 1 << (16 if small else 24)
    rows, cols = (256, 256) if small else (4096, 1024)
    params = 100_000 if small else 10_000_000
    width = 128 if small else 512
    np_gelu, np_softmax, np_layernorm, np_dense, np_adam, np_mlp = _numpy_versions()
    x = rng.standard_normal(n).astype(f32)
    a, b = rng.standard_normal(n).astype(f32), rng.standard_normal(n).astype(f32)
    m = rng.standard_normal((rows, cols)).astype(f32)
    gamma, beta = rng.standard_normal(cols).astype(f32), rng.standard_normal(cols).astype(f32)
    dx = rng.standard_normal((256, 1024 if not small else 256)).astype(f32)
    dw = rng.standard_normal((dx.shape[1], dx.shape[1])).astype(f32) * 0.03
    db = rng.standard_normal(dx.shape[1]).astype(f32)
    p, g = rng.standard_normal(params).astype(f32), rng.standard_normal(params).astype(f32)
    mm, vv = np.zeros(params, f32), np.ones(params, f32)
    # Batch 1024: activations, not weights, dominate memory, as in inference at scale.
    mx = rng.standard_normal((128 if small else 1024, width)).astype(f32)
    ws = [(rng.standard_normal((width, width)) / math.sqrt(width)).astype(f32)
          for _ in range(10)]
    return [
        ("gelu(x*a+b)", gelu_chain, np_gelu, (x, a, b), 4 * n * 4),
        ("softmax", softmax, np_softmax, (m,), 2 * m.nbytes),
        ("layernorm", layernorm, np_layernorm, (m, gamma, beta), 2 * m.nbytes),
        ("dense+bias+relu", dense_relu, np_dense, (dx, dw, db),
         dx.nbytes + dw.nbytes + dx.nbytes),
        ("adam", lambda *args: adam(*args, 1e-3, 3), lambda *args: np_adam(*args, 1e-3, 3),
         (p, g, mm, vv), 7 * p.nbytes),
        ("mlp10 forward", mlp10, np_mlp, (mx, ws), mx.nbytes * 2 + sum(w.nbytes for w in ws)),
    ]


def run(small: bool = False, chart: str = "bench/results/fusion.png") -> list[dict]:
    bandwidth = copy_bandwidth(1 << (24 if small else 28))
    print(f"measured copy bandwidth: {bandwidth / 1e9:.1f} GB/s (read + write)")
    results = []
    rows = []
    for name, fn, np_fn, args, min_bytes in workloads(small):
        row = {"name": name, "min_bytes": min_bytes}
        row["numpy"] = median_time(lambda: np_fn(*args))
        for level in (0, 2):
            compiled = flowjit.jit(fn, opt_level=level).lower(*args).compile()
            leaves = tree.flatten(args)[0]
            row[f"O{level}"] = median_time(lambda: compiled(*leaves))
            row[f"kernels O{level}"] = kernel_count(compiled.module)
            try:
                analysis = compiled.memory_analysis()
                row[f"peak O{level}"] = analysis.peak_memory_in_bytes
                row[f"bytes O{level}"] = compiled.cost_analysis()["bytes accessed"]
            except Exception:  # analyses are optional for the timing table
                row[f"peak O{level}"] = row[f"bytes O{level}"] = float("nan")
        results.append(row)
        ideal = min_bytes / bandwidth
        rows.append([name, f"{row['numpy'] * 1e3:.2f}", f"{row['O0'] * 1e3:.2f}",
                     f"{row['O2'] * 1e3:.2f}", f"{row['O0'] / row['O2']:.2f}x",
                     f"{row['kernels O0']}/{row['kernels O2']}",
                     f"{row['bytes O2'] / 1e6:.1f}",
                     f"{min_bytes / row['O2'] / 1e9:.1f}", f"{row['O2'] / ideal:.2f}",
                     f"{row['peak O2'] / max(row['peak O0'], 1):.2f}"])
    print(format_table(["workload", "numpy ms", "O0 ms", "O2 ms", "O0/O2", "kernels O0/O2",
                        "MB moved O2", "GB/s O2", "O2 / ideal", "peak O2/O0"], rows))
    _chart(results, chart)
    return results


def _chart(results: list[dict], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    names = [r["name"] for r in results]
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = np.arange(len(names))
    for k, (key, label) in enumerate([("numpy", "numpy"), ("O0", "flowjit O0"),
                                      ("O2", "flowjit O2")]):
        ax.bar(xs + (k - 1) * 0.27, [r[key] * 1e3 for r in results], 0.27, label=label)
    ax.set_xticks(xs, names, rotation=15)
    ax.set_ylabel("median ms (lower is better)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"chart: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes, for a quick run")
    args = parser.parse_args()
    run(small=args.small)


if __name__ == "__main__":
    main()
