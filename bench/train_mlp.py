"""MLP training step (batch 128, 784-512-512-10, softmax cross-entropy, SGD), side by side:
flowjit jit vs numpy by hand vs JAX jit (when installed), medians after warm-up, one run.

    python -m bench.train_mlp
"""
from __future__ import annotations

import time

import numpy as np

import compiler
import compiler.nn as nn
from bench.timing import format_table, median_time

SIZES = [784, 512, 512, 10]
BATCH = 128
LR = 0.01


def make(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2 / a)),
               np.zeros(b, np.float32)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH).astype(np.int32)
    return params, x, y


def flowjit_loss(params, x, y):
    for w, b in params[:-1]:
        x = nn.relu(x @ w + b)
    w, b = params[-1]
    return nn.softmax_cross_entropy(x @ w + b, y)


def flowjit_step(params, x, y):
    grads = compiler.grad(flowjit_loss)(params, x, y)
    return [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(params, grads)]


def numpy_step(params, x, y):
    """Forward and backward written out by hand."""
    activations, pre = [x], []
    for w, b in params[:-1]:
        z = activations[-1] @ w + b
        pre.append(z)
        activations.append(np.maximum(z, 0))
    w, b = params[-1]
    logits = activations[-1] @ w + b
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    grad = probs
    grad[np.arange(len(y)), y] -= 1
    grad /= len(y)
    new = []
    for layer in reversed(range(len(params))):
        w, b = params[layer]
        gw = activations[layer].T @ grad
        gb = grad.sum(axis=0)
        new.append((w - LR * gw, b - LR * gb))
        if layer:
            grad = (grad @ w.T) * (pre[layer - 1] > 0)
    return new[::-1]


def main() -> None:
    params, x, y = make()
    rows = []
    start = time.perf_counter()
    step = compiler.jit(flowjit_step)
    step(params, x, y)
    flowjit_first = time.perf_counter() - start
    flowjit = median_time(lambda: step(params, x, y), repeats=20)
    numpy_time = median_time(lambda: numpy_step(params, x, y), repeats=20)
    got = step(params, x, y)
    want = numpy_step(params, x, y)
    error = max(float(np.max(np.abs(np.asarray(g) - w))) for gp, wp in zip(got, want)
                for g, w in zip(gp, wp))
    rows.append(["flowjit jit", f"{flowjit * 1e3:.2f}", "1.00", f"{flowjit_first * 1e3:.0f}"])
    rows.append(["numpy by hand", f"{numpy_time * 1e3:.2f}", f"{numpy_time / flowjit:.2f}",
                 "-"])
    try:
        import jax
        import jax.numpy as jnp

        def jax_loss(params, x, y):
            for w, b in params[:-1]:
                x = jax.nn.relu(x @ w + b)
            w, b = params[-1]
            logp = jax.nn.log_softmax(x @ w + b)
            return -jnp.mean(logp[jnp.arange(x.shape[0]), y])

        @jax.jit
        def jax_step(params, x, y):
            grads = jax.grad(jax_loss)(params, x, y)
            return [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(params, grads)]
        jparams = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
        start = time.perf_counter()
        jax.block_until_ready(jax_step(jparams, x, y))
        jax_first = time.perf_counter() - start
        jax_time = median_time(lambda: jax_step(jparams, x, y), repeats=20)
        rows.append(["JAX jit", f"{jax_time * 1e3:.2f}", f"{jax_time / flowjit:.2f}",
                     f"{jax_first * 1e3:.0f}"])
        print(f"flowjit / JAX step time: {flowjit / jax_time:.2f}  "
              f"first call: {flowjit_first / jax_first:.2f}")
    except ImportError:
        print("JAX is not installed: its column is skipped")
    print(format_table(["", "step ms (median)", "time / flowjit", "first call ms"], rows))
    print(f"max |flowjit - numpy| over the updated parameters: {error:.2e}")


if __name__ == "__main__":
    main()
