"""Batched gather/scatter programs, flowjit vs JAX (and numpy), timed in turns in one run.

    python -m bench.gather_ops            # batch 1024, 1000 classes
    python -m bench.gather_ops --small

Rows: take_along_axis (one gather with a batching dim), integer-label cross-entropy and its
gradient (gather forward, scatter-add with a batching dim backward), put_along_axis.
"""
from __future__ import annotations

import argparse

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench.timing import format_table, interleaved_medians


def programs(lib, nn):
    def take(x, i):
        return lib.take_along_axis(x, i, axis=1)

    def loss(logits, labels):
        return -lib.take_along_axis(nn.log_softmax(logits), labels[:, None], axis=-1).mean()

    def put(x, i, v):
        return lib.put_along_axis(x, i, v, axis=1, inplace=False)
    return {"take_along_axis": take, "cross_entropy": loss, "put_along_axis": put}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    batch, classes, picks = (64, 100, 8) if args.small else (1024, 1000, 32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, classes)).astype(np.float32)
    idx = rng.integers(0, classes, (batch, picks)).astype(np.int32)
    labels = rng.integers(0, classes, batch).astype(np.int32)
    values = rng.standard_normal((batch, picks)).astype(np.float32)
    inputs = {"take_along_axis": (x, idx), "cross_entropy": (x, labels),
              "cross_entropy grad": (x, labels), "put_along_axis": (x, idx, values)}

    ours = programs(fnp, flowjit.nn)
    ours["cross_entropy grad"] = flowjit.grad(ours["cross_entropy"])
    ours = {k: flowjit.jit(f) for k, f in ours.items()}
    import jax
    import jax.numpy as jnp
    theirs = programs(jnp, jax.nn)
    theirs["cross_entropy grad"] = jax.grad(theirs["cross_entropy"])
    theirs = {k: jax.jit(f) for k, f in theirs.items()}
    numpy_take = {"take_along_axis": lambda a, i: np.take_along_axis(a, i, axis=1)}

    rows = []
    for name, arguments in inputs.items():
        fns = {"flowjit": lambda f=ours[name], a=arguments: f(*a),
               "jax": lambda f=theirs[name], a=arguments: f(*a)}
        if name in numpy_take:
            fns["numpy"] = lambda f=numpy_take[name], a=arguments: f(*a)
        times = interleaved_medians(fns)
        rows.append([name, f"{times['flowjit'] * 1e6:.0f}", f"{times['jax'] * 1e6:.0f}",
                     f"{times['flowjit'] / times['jax']:.2f}",
                     f"{times['numpy'] * 1e6:.0f}" if "numpy" in times else "-"])
    print(f"batch {batch}, {classes} classes, {picks} picks per row")
    print(format_table(["program", "flowjit us", "jax us", "flowjit/jax", "numpy us"], rows))


if __name__ == "__main__":
    main()
