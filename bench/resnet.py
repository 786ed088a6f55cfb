"""ResNet-18 inference (224x224, NHWC, batch norm folded into scale and shift as at
inference), flowjit jit vs JAX jit and, where installed, onnxruntime on the same number of
threads; interleaved medians after warm-up, at batch 1 and 8.

    python -m bench.resnet [--batches 1 8] [--repeats 5]

The model is written once against a backend (flowjit or JAX: `lax`, `nn`, `numpy`), with the
same weights for both (and for the ONNX graph of `bench.resnet_onnx`); the outputs are
compared before timing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import types

import numpy as np

from bench.timing import format_table, interleaved_medians

NHWC = ("NHWC", "HWIO", "NHWC")
# (output channels, first stride) of ResNet-18's four stages of two basic blocks.
STAGES = [(64, 1), (128, 2), (256, 2), (512, 2)]


def backends():
    import jax
    import flowjit
    import flowjit.lax
    import flowjit.nn
    import flowjit.numpy
    return {"flowjit": types.SimpleNamespace(lax=flowjit.lax, nn=flowjit.nn, np=flowjit.numpy,
                                             jit=flowjit.jit),
            "JAX": types.SimpleNamespace(lax=jax.lax, nn=jax.nn, np=jax.numpy, jit=jax.jit)}


def params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def conv(k, cin, cout):
        w = rng.standard_normal((k, k, cin, cout)) * np.sqrt(2 / (k * k * cin))
        return {"w": w.astype(np.float32),
                "scale": (1 + 0.1 * rng.standard_normal(cout)).astype(np.float32),
                "shift": (0.1 * rng.standard_normal(cout)).astype(np.float32)}
    p = {"stem": conv(7, 3, 64), "blocks": []}
    cin = 64
    for cout, stride in STAGES:
        for b in range(2):
            s = stride if b == 0 else 1
            block = {"a": conv(3, cin, cout), "b": conv(3, cout, cout)}
            if s != 1 or cin != cout:
                block["down"] = conv(1, cin, cout)
            p["blocks"].append(block)
            cin = cout
    p["fc"] = (rng.standard_normal((512, 1000)) * 0.02).astype(np.float32)
    return p


def forward(b, p, x):
    def conv_bn(x, c, stride, relu=True):
        y = b.lax.conv_general_dilated(x, c["w"], (stride, stride), "SAME",
                                       dimension_numbers=NHWC)
        y = y * c["scale"] + c["shift"]
        return b.nn.relu(y) if relu else y
    x = conv_bn(x, p["stem"], 2)
    x = b.lax.reduce_window(x, -np.inf, b.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
    strides = [stride if b == 0 else 1 for _, stride in STAGES for b in range(2)]
    for block, stride in zip(p["blocks"], strides):
        y = conv_bn(conv_bn(x, block["a"], stride), block["b"], 1, relu=False)
        shortcut = conv_bn(x, block["down"], stride, relu=False) if "down" in block else x
        x = b.nn.relu(y + shortcut)
    return x.mean(axis=(1, 2)) @ p["fc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("FLOWJIT_CACHE_DIR", tempfile.mkdtemp(prefix="flowjit-resnet-"))
    import jax
    from bench import resnet_onnx
    from flowjit.codegen.parallel import thread_count
    both = backends()
    p = params()
    ort = resnet_onnx.session(p, thread_count()) if resnet_onnx.available() else None
    rows = []
    for batch in args.batches:
        x = np.random.default_rng(batch).standard_normal((batch, 224, 224, 3)).astype(
            np.float32)
        fns = {name: b.jit(lambda p, x, b=b: forward(b, p, x)) for name, b in both.items()}
        ours, theirs = np.asarray(fns["flowjit"](p, x)), np.asarray(fns["JAX"](p, x))
        error = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        runs = {"flowjit": lambda f=fns["flowjit"]: f(p, x),
                "JAX": lambda f=fns["JAX"]: jax.block_until_ready(f(p, x))}
        if ort is not None:
            (ort_out,) = ort.run(None, {"x": x})
            error = max(error, float(np.abs(ort_out - theirs).max() / np.abs(theirs).max()))
            runs["onnxruntime"] = lambda: ort.run(None, {"x": x})
        times = interleaved_medians(runs, args.repeats)
        row = [str(batch), f"{times['flowjit'] * 1e3:.1f}", f"{times['JAX'] * 1e3:.1f}",
               f"{times['flowjit'] / times['JAX']:.2f}"]
        if ort is not None:
            row += [f"{times['onnxruntime'] * 1e3:.1f}",
                    f"{times['flowjit'] / times['onnxruntime']:.2f}"]
        rows.append(row + [f"{error:.1e}"])
    header = ["batch", "flowjit ms", "JAX ms", "flowjit/JAX"]
    if ort is not None:
        header += ["onnxruntime ms", "flowjit/onnxruntime"]
    print(f"threads: {thread_count()}" + ("" if ort is not None else
          "  (onnxruntime column: pip install onnxruntime onnx)"))
    print(format_table(header + ["max |diff| / max |ref|"], rows))


if __name__ == "__main__":
    main()
