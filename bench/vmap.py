"""Per-example gradients of the MLP (batch 128, 784-512-512-10, as bench.train_mlp) by
`vmap` of a jitted per-example gradient, against the same gradients computed directly by
batched code written by hand (and JAX's vmap, when installed), measured side by side.

    python -m bench.vmap [--repeats 15]

Rows (medians of interleaved runs after warm-up; outputs compared first):
  * per-example gradients, [128, ...] per parameter: flowjit.vmap(jit(grad(loss))) vs the
    hand-batched backward pass (the target: vmap within 1.2x of it), vs jax.vmap;
  * their mean: mean of vmap(grad) vs grad of the mean loss (what a training step needs).
"""
from __future__ import annotations

import argparse

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench.timing import format_table, interleaved_medians
from bench.train_mlp import make


def example_loss(params, x, y):
    """The softmax cross-entropy of one example (x: [784], y: an int label)."""
    for w, b in params[:-1]:
        x = fnp.maximum(x @ w + b, 0)
    w, b = params[-1]
    logits = x @ w + b
    shifted = logits - logits.max()
    return fnp.log(fnp.exp(shifted).sum()) - shifted[y]


def batched_by_hand(params, x, y):
    """Every example's gradient at once, the backward pass written for the batch."""
    acts, pre = [x], []
    for w, b in params[:-1]:
        z = acts[-1] @ w + b
        pre.append(z)
        acts.append(fnp.maximum(z, 0))
    w, b = params[-1]
    logits = acts[-1] @ w + b
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = fnp.exp(shifted) / fnp.exp(shifted).sum(axis=1, keepdims=True)
    grad = probs - (y[:, None] == fnp.arange(logits.shape[1])[None, :]).astype(probs.dtype)
    grads = []
    for layer in reversed(range(len(params))):
        w, _ = params[layer]
        grads.append((fnp.einsum("bi,bj->bij", acts[layer], grad), grad))
        if layer:
            grad = (grad @ w.T) * (pre[layer - 1] > 0)
    return grads[::-1]


def mean_loss(params, x, y):
    return flowjit.vmap(example_loss, in_axes=(None, 0, 0))(params, x, y).mean()


def _max_difference(a, b) -> float:
    leaves_a = [np.asarray(v) for v in flowjit.tree.flatten(a)[0]]
    leaves_b = [np.asarray(v) for v in flowjit.tree.flatten(b)[0]]
    return max(float(np.max(np.abs(p - q))) for p, q in zip(leaves_a, leaves_b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    params, x, y = make()
    per_example = flowjit.vmap(flowjit.jit(flowjit.grad(example_loss)), in_axes=(None, 0, 0))
    by_hand = flowjit.jit(batched_by_hand)
    vmap_mean = flowjit.jit(lambda p, x, y: flowjit.tree_map(
        lambda g: g.mean(axis=0), flowjit.vmap(flowjit.grad(example_loss),
                                                in_axes=(None, 0, 0))(p, x, y)))
    grad_of_mean = flowjit.jit(flowjit.grad(mean_loss))
    error = _max_difference(per_example(params, x, y), by_hand(params, x, y))
    mean_error = _max_difference(vmap_mean(params, x, y), grad_of_mean(params, x, y))
    print(f"largest difference: per-example {error:.2e}, mean {mean_error:.2e}")
    fns = {"flowjit vmap(jit(grad)) per example": lambda: per_example(params, x, y),
           "flowjit hand-batched per example": lambda: by_hand(params, x, y)}
    try:
        import jax
        import jax.numpy as jnp

        def jax_loss(p, x, y):
            for w, b in p[:-1]:
                x = jnp.maximum(x @ w + b, 0)
            w, b = p[-1]
            return jax.nn.logsumexp(x @ w + b) - (x @ w + b)[y]
        jax_per_example = jax.jit(jax.vmap(jax.grad(jax_loss), in_axes=(None, 0, 0)))
        jparams = jax.tree_util.tree_map(jnp.asarray, params)
        jax_error = _max_difference(by_hand(params, x, y), jax.device_get(
            jax_per_example(jparams, x, y)))
        print(f"largest difference from JAX: {jax_error:.2e}")
        fns["jax jit(vmap(grad)) per example"] = lambda: jax.block_until_ready(
            jax_per_example(jparams, x, y))
    except ImportError:
        print("JAX is not installed: its row is skipped")
    fns["flowjit mean of vmap(grad)"] = lambda: vmap_mean(params, x, y)
    fns["flowjit grad of mean loss"] = lambda: grad_of_mean(params, x, y)
    times = interleaved_medians(fns, repeats=args.repeats)
    base = times["flowjit hand-batched per example"]
    rows = [[name, f"{t * 1e3:.2f}", f"{t / base:.2f}"] for name, t in times.items()]
    print(format_table(["", "ms", "/ hand-batched"], rows))
    ratio = times["flowjit vmap(jit(grad)) per example"] / base
    mean_ratio = times["flowjit mean of vmap(grad)"] / times["flowjit grad of mean loss"]
    print(f"vmap / hand-batched per-example gradients: {ratio:.2f} (target <= 1.2)")
    print(f"mean of vmap(grad) / grad of mean loss: {mean_ratio:.2f}")


if __name__ == "__main__":
    main()
