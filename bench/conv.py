"""Convolutions, flowjit jit vs JAX jit side by side (interleaved medians after warm-up):
single NHWC convolutions of ResNet-18's shapes (ms, GFLOP/s, and GFLOP/s as a share of
this machine's matmul GFLOP/s measured in the same run), and a small CNN's training step.

    python -m bench.conv [--batch 1] [--repeats 15]
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import flowjit
import flowjit.lax as flax
import flowjit.nn as nn
import flowjit.numpy as fnp
from bench.timing import format_table, interleaved_medians

NHWC = ("NHWC", "HWIO", "NHWC")
# (name, input H=W, input channels, kernel, output channels, stride): ResNet-18's layers.
RESNET18 = [
    ("conv1 7x7/2", 224, 3, 7, 64, 2),
    ("conv2 3x3", 56, 64, 3, 64, 1),
    ("conv3_1 3x3/2", 56, 64, 3, 128, 2),
    ("conv3 3x3", 28, 128, 3, 128, 1),
    ("down3 1x1/2", 56, 64, 1, 128, 2),
    ("conv4_1 3x3/2", 28, 128, 3, 256, 2),
    ("conv4 3x3", 14, 256, 3, 256, 1),
    ("conv5 3x3", 7, 512, 3, 512, 1),
]


def _conv(lax, stride):
    return lambda x, w: lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                                 dimension_numbers=NHWC)


def _flops(batch, size, cin, kernel, cout, stride) -> float:
    out = -(-size // stride)
    return 2.0 * batch * out * out * cout * kernel * kernel * cin


def matmul_gflops(repeats: int, jax) -> dict[str, float]:
    """f32 matmul (1024 x 1024 x 1024) GFLOP/s on this machine: flowjit's, and JAX's."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    ours = flowjit.jit(lambda a, b: a @ b)
    fns = {"flowjit": lambda: ours(a, b)}
    if jax is not None:
        theirs, ja, jb = jax.jit(lambda a, b: a @ b), jax.numpy.asarray(a), jax.numpy.asarray(b)
        fns["jax"] = lambda: theirs(ja, jb)
    return {name: 2 * 1024 ** 3 / seconds / 1e9
            for name, seconds in interleaved_medians(fns, repeats=repeats).items()}


def single_convolutions(batch: int, repeats: int, peak: float, jax) -> list[list[str]]:
    rng = np.random.default_rng(0)
    rows = []
    for name, size, cin, kernel, cout, stride in RESNET18:
        x = rng.standard_normal((batch, size, size, cin)).astype(np.float32)
        w = (rng.standard_normal((kernel, kernel, cin, cout)) * 0.1).astype(np.float32)
        ours = flowjit.jit(_conv(flax, stride))
        fns = {"flowjit": lambda: ours(x, w)}
        if jax is not None:
            theirs = jax.jit(_conv(jax.lax, stride))
            jx, jw = jax.numpy.asarray(x), jax.numpy.asarray(w)
            fns["jax"] = lambda: theirs(jx, jw)
            np.testing.assert_allclose(ours(x, w), theirs(jx, jw), rtol=2e-3, atol=2e-3)
        times = interleaved_medians(fns, repeats=repeats)
        gflops = _flops(batch, size, cin, kernel, cout, stride) / 1e9
        row = [name, f"{times['flowjit'] * 1e3:.2f}", f"{gflops / times['flowjit']:.1f}",
               f"{gflops / times['flowjit'] / peak:.0%}"]
        if jax is not None:
            row += [f"{times['jax'] * 1e3:.2f}", f"{gflops / times['jax']:.1f}",
                    f"{times['flowjit'] / times['jax']:.2f}"]
        rows.append(row)
    return rows


def cnn_loss(lib, params, x, labels):
    """conv3x3(16)+relu, 2x2 mean pool, conv3x3(32)+relu, 2x2 mean pool, dense(10),
    softmax cross-entropy (NHWC, batch 32, 32x32x3 inputs)."""
    (w1, b1), (w2, b2), (wd, bd) = params
    np_ = lib.numpy

    def pool(h):
        n, height, width, c = h.shape
        return np_.mean(np_.reshape(h, (n, height // 2, 2, width // 2, 2, c)), axis=(2, 4))
    h = pool(lib.nn.relu(lib.lax.conv_general_dilated(x, w1, (1, 1), "SAME",
                                                      dimension_numbers=NHWC) + b1))
    h = pool(lib.nn.relu(lib.lax.conv_general_dilated(h, w2, (1, 1), "SAME",
                                                      dimension_numbers=NHWC) + b2))
    logits = np_.reshape(h, (h.shape[0], -1)) @ wd + bd
    logp = lib.nn.log_softmax(logits)
    return -np_.mean(np_.sum(logp * labels, axis=-1))


class _Lib:
    def __init__(self, numpy, lax, nn):
        self.numpy, self.lax, self.nn = numpy, lax, nn


def training_step(repeats: int, jax) -> tuple[list[list[str]], float]:
    rng = np.random.default_rng(1)
    params = [(rng.standard_normal((3, 3, 3, 16)).astype(np.float32) * 0.3,
               np.zeros(16, np.float32)),
              (rng.standard_normal((3, 3, 16, 32)).astype(np.float32) * 0.1,
               np.zeros(32, np.float32)),
              (rng.standard_normal((8 * 8 * 32, 10)).astype(np.float32) * 0.02,
               np.zeros(10, np.float32))]
    x = rng.standard_normal((32, 32, 32, 3)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]
    ours_lib = _Lib(fnp, flax, nn)

    def step(lib, grad):
        def update(params, x, labels):
            grads = grad(lambda p: cnn_loss(lib, p, x, labels))(params)
            return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(params, grads)]
        return update
    ours = flowjit.jit(step(ours_lib, flowjit.grad))
    fns = {"flowjit": lambda: ours(params, x, labels)}
    if jax is not None:
        theirs = jax.jit(step(_Lib(jax.numpy, jax.lax, jax.nn), jax.grad))
        jparams = jax.tree_util.tree_map(jax.numpy.asarray, params)
        fns["jax"] = lambda: theirs(jparams, x, labels)
        for (a, b), (c, d) in zip(ours(params, x, labels), theirs(jparams, x, labels)):
            np.testing.assert_allclose(a, c, rtol=1e-3, atol=1e-5)
    times = interleaved_medians(fns, repeats=repeats)
    rows = [[name, f"{t * 1e3:.2f}", f"{t / times['flowjit']:.2f}"] for name, t in
            times.items()]
    return rows, times["flowjit"] / times.get("jax", float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("FLOWJIT_CACHE_DIR", tempfile.mkdtemp(prefix="flowjit-bench-"))
    try:
        import jax
    except ImportError:
        jax = None
        print("JAX is not installed: its columns are skipped")
    matmul = matmul_gflops(args.repeats, jax)
    peak = matmul["flowjit"]
    print(f"flowjit f32 matmul 1024^3: {peak:.1f} GFLOP/s (the 'of matmul' column's base)")
    if "jax" in matmul:
        print(f"JAX f32 matmul 1024^3: {matmul['jax']:.1f} GFLOP/s")
    print()
    header = ["ResNet-18 conv (NHWC, batch %d)" % args.batch, "flowjit ms", "GFLOP/s",
              "of matmul"]
    if jax is not None:
        header += ["JAX ms", "JAX GFLOP/s", "flowjit / JAX"]
    print(format_table(header, single_convolutions(args.batch, args.repeats, peak, jax)))
    rows, ratio = training_step(args.repeats, jax)
    print()
    print(format_table(["CNN training step (batch 32, 32x32x3)", "ms", "time / flowjit"],
                       rows))
    print(f"flowjit / JAX training step time: {ratio:.2f}")


if __name__ == "__main__":
    main()
