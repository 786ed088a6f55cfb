"""An MLP classifier trained with SGD on a generated two-spirals dataset (> 95% accuracy).

    python examples/mlp_classifier.py
"""

import numpy as np

import flowjit
import flowjit.nn as nn


def spirals(n: int = 256, seed: int = 0):
    """Two interleaved spirals: a classic set no linear model separates."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    arms = [np.stack([t * np.cos(t), t * np.sin(t)], 1),
            np.stack([-t * np.cos(t), -t * np.sin(t)], 1)]
    x = np.concatenate(arms) / 10 + 0.02 * rng.standard_normal((2 * n, 2))
    y = np.concatenate([np.zeros(n, np.int32), np.ones(n, np.int32)])
    return x.astype(np.float32), y


def init(sizes, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((a, b)).astype(np.float32) * np.sqrt(2 / a),
             np.zeros(b, np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]


def logits(params, x):
    for w, b in params[:-1]:
        x = nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def loss(params, x, y):
    return nn.softmax_cross_entropy(logits(params, x), y)


@flowjit.jit
def train_step(params, x, y):
    value, grads = flowjit.value_and_grad(loss)(params, x, y)
    new = [(w - 0.1 * gw, b - 0.1 * gb) for (w, b), (gw, gb) in zip(params, grads)]
    return new, value


def train(steps: int = 1500):
    x, y = spirals()
    params = init([2, 64, 64, 2])
    for _ in range(steps):
        params, value = train_step(params, x, y)
    accuracy = float(np.mean(np.argmax(np.asarray(flowjit.jit(logits)(params, x)), 1) == y))
    return accuracy, float(value)


if __name__ == "__main__":
    accuracy, final_loss = train()
    print(f"training accuracy {accuracy:.1%}, final loss {final_loss:.4f}")
