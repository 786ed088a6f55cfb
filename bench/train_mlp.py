"""MLP training step (batch 128, 784-512-512-10, softmax cross-entropy, SGD), side by side:
flowjit jit vs numpy by hand vs JAX jit (when installed), interleaved medians after warm-up.

    python -m bench.train_mlp
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

import flowjit
import flowjit.nn as nn
from bench.timing import format_table, interleaved_medians

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
    grads = flowjit.grad(flowjit_loss)(params, x, y)
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


def jax_step_and_params(params):
    """The same step in JAX, freshly jitted, and `params` on JAX's device; None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None

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
    return jax_step, [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]


def main() -> None:
    params, x, y = make()
    # A new disk cache, so the first call really compiles.
    os.environ["FLOWJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="flowjit-bench-cache-")
    start = time.perf_counter()
    step = flowjit.jit(flowjit_step)
    step(params, x, y)
    first = {"flowjit": time.perf_counter() - start}
    fns = {"flowjit": lambda: step(params, x, y),
           "numpy by hand": lambda: numpy_step(params, x, y)}
    jax_version = jax_step_and_params(params)
    if jax_version is not None:
        import jax
        jax_step, jparams = jax_version
        start = time.perf_counter()
        jax.block_until_ready(jax_step(jparams, x, y))
        first["JAX jit"] = time.perf_counter() - start
        fns["JAX jit"] = lambda: jax_step(jparams, x, y)
    else:
        print("JAX is not installed: its row is skipped")
    times = interleaved_medians(fns, repeats=30)
    got, want = step(params, x, y), numpy_step(params, x, y)
    error = max(float(np.max(np.abs(np.asarray(g) - w))) for gp, wp in zip(got, want)
                for g, w in zip(gp, wp))
    if "JAX jit" in times:
        print(f"flowjit / JAX step time: {times['flowjit'] / times['JAX jit']:.2f}  "
              f"first call: {first['flowjit'] / first['JAX jit']:.2f}")
    rows = [[name, f"{t * 1e3:.2f}", f"{t / times['flowjit']:.2f}",
             f"{first[name] * 1e3:.0f}" if name in first else "-"] for name, t in times.items()]
    print(format_table(["", "step ms (median, interleaved)", "time / flowjit",
                        "first call ms"], rows))
    print(f"max |flowjit - numpy| over the updated parameters: {error:.2e}")


if __name__ == "__main__":
    main()
