"""An LSTM cell step (seed example) and its gradients, compiled.

    python examples/lstm.py
"""

import numpy as np

import flowjit
import flowjit.nn as nn
import flowjit.numpy as fnp


def lstm_cell(params, x, h, c):
    """One step: gates from [x, h], new cell state and hidden state."""
    w, b = params
    z = fnp.concatenate([x, h], axis=-1) @ w + b
    i, f, o, g = (z[..., k::4] for k in range(4))
    c_new = nn.sigmoid(f) * c + nn.sigmoid(i) * fnp.tanh(g)
    h_new = nn.sigmoid(o) * fnp.tanh(c_new)
    return h_new, c_new


def loss(params, x, h, c):
    h_new, c_new = lstm_cell(params, x, h, c)
    return fnp.sum(h_new ** 2) + fnp.sum(c_new)


def make(batch: int = 4, n_in: int = 3, n_hidden: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_in + n_hidden, 4 * n_hidden)) * 0.3
    b = rng.standard_normal(4 * n_hidden) * 0.1
    x = rng.standard_normal((batch, n_in))
    h = rng.standard_normal((batch, n_hidden))
    c = rng.standard_normal((batch, n_hidden))
    return (w, b), x, h, c


grad_step = flowjit.jit(flowjit.grad(loss, argnums=(0, 2)))


def sequence_loss(params, xs, h, c):
    """The cell run over a sequence xs[t] with flowjit.scan; a loss on all hidden states."""
    def step(carry, x):
        h_new, c_new = lstm_cell(params, x, *carry)
        return (h_new, c_new), h_new
    _, hs = flowjit.scan(step, (h, c), xs)
    return fnp.sum(hs[-1] ** 2) + fnp.mean(hs)


sequence_grad = flowjit.jit(flowjit.grad(sequence_loss))  # back-propagation through time

if __name__ == "__main__":
    params, x, h, c = make()
    (gw, gb), gh = grad_step(params, x, h, c)
    print("dL/dw norm", float(np.linalg.norm(gw)), "dL/db norm", float(np.linalg.norm(gb)),
          "dL/dh norm", float(np.linalg.norm(gh)))
    xs = np.random.default_rng(1).standard_normal((6,) + x.shape)
    gw, gb = sequence_grad(params, xs, h, c)
    print("over 6 steps: dL/dw norm", float(np.linalg.norm(gw)))
