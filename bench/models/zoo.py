"""Models written once against a backend (flowjit or JAX): `b.np` is flowjit.numpy or
jax.numpy, `b.nn` flowjit.nn or jax.nn, `b.scan` the loop, `b.grad` / `b.jit` the
transformations. Each model is a `Workload`: parameters and inputs made with numpy (the
same values for both backends) and the function to time."""
from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Callable

import numpy as np


def flowjit_backend() -> types.SimpleNamespace:
    import flowjit
    import flowjit.nn
    import flowjit.numpy
    return types.SimpleNamespace(name="flowjit", np=flowjit.numpy, nn=flowjit.nn,
                                 scan=flowjit.scan, grad=flowjit.grad, jit=flowjit.jit,
                                 value_and_grad=flowjit.value_and_grad)


def jax_backend() -> types.SimpleNamespace:
    import jax
    import jax.numpy as jnp
    return types.SimpleNamespace(name="JAX", np=jnp, nn=jax.nn, scan=jax.lax.scan,
                                 grad=jax.grad, jit=jax.jit, value_and_grad=jax.value_and_grad)


def _normal(rng, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# --- transformer ------------------------------------------------------------------------

def layer_norm(b, x, gain, bias):
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(-1, keepdims=True)
    return centered / b.np.sqrt(var + 1e-5) * gain + bias


def attention(b, p, x, heads: int):
    batch, time, width = x.shape
    head = width // heads

    def split(t):   # (B, T, D) -> (B, H, T, Dh)
        return t.reshape(batch, time, heads, head).transpose(0, 2, 1, 3)
    q, k, v = split(x @ p["wq"]), split(x @ p["wk"]), split(x @ p["wv"])
    scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(head))
    causal = b.np.arange(time)[:, None] >= b.np.arange(time)[None, :]
    scores = b.np.where(causal, scores, -1e9)
    mixed = b.nn.softmax(scores, axis=-1) @ v
    return mixed.transpose(0, 2, 1, 3).reshape(batch, time, width) @ p["wo"]


def block(b, p, x, heads: int):
    """A pre-norm transformer block: causal self-attention and a gelu MLP."""
    x = x + attention(b, p, layer_norm(b, x, p["ln1_g"], p["ln1_b"]), heads)
    hidden = b.nn.gelu(layer_norm(b, x, p["ln2_g"], p["ln2_b"]) @ p["w1"] + p["b1"])
    return x + hidden @ p["w2"] + p["b2"]


def block_params(rng, width: int) -> dict:
    s = 1 / math.sqrt(width)
    return {"wq": _normal(rng, (width, width), s), "wk": _normal(rng, (width, width), s),
            "wv": _normal(rng, (width, width), s), "wo": _normal(rng, (width, width), s),
            "ln1_g": np.ones(width, np.float32), "ln1_b": np.zeros(width, np.float32),
            "ln2_g": np.ones(width, np.float32), "ln2_b": np.zeros(width, np.float32),
            "w1": _normal(rng, (width, 4 * width), s),
            "b1": np.zeros(4 * width, np.float32),
            "w2": _normal(rng, (4 * width, width), 1 / math.sqrt(4 * width)),
            "b2": np.zeros(width, np.float32)}


def decoder_loss(b, p, tokens, targets, heads: int):
    """A GPT-2-style decoder: embeddings, blocks, final norm, tied unembedding, mean
    cross-entropy of the next tokens."""
    time = tokens.shape[1]
    x = p["wte"][tokens] + p["wpe"][:time]
    for layer in p["blocks"]:
        x = block(b, layer, x, heads)
    x = layer_norm(b, x, p["lnf_g"], p["lnf_b"])
    logits = x @ p["wte"].T
    logp = b.nn.log_softmax(logits, axis=-1)
    return -(b.nn.one_hot(targets, p["wte"].shape[0]) * logp).sum(-1).mean()


# --- recurrent --------------------------------------------------------------------------

def lstm_loss(b, p, xs, h0, c0):
    """An LSTM over the sequence xs (T, B, I) with scan; the loss sums the hidden states."""
    def step(carry, x):
        h, c = carry
        gates = x @ p["wx"] + h @ p["wh"] + p["b"]
        i, f, g, o = (gates[:, k * h.shape[1]:(k + 1) * h.shape[1]] for k in range(4))
        c = b.nn.sigmoid(f) * c + b.nn.sigmoid(i) * b.np.tanh(g)
        h = b.nn.sigmoid(o) * b.np.tanh(c)
        return (h, c), h
    _, hs = b.scan(step, (h0, c0), xs)
    return (hs * hs).sum()


def gru_loss(b, p, xs, h0):
    """A GRU over the sequence xs (T, B, I) with scan; the loss sums the hidden states."""
    def step(h, x):
        width = h.shape[1]
        gx, gh = x @ p["wx"] + p["b"], h @ p["wh"]
        r = b.nn.sigmoid(gx[:, :width] + gh[:, :width])
        z = b.nn.sigmoid(gx[:, width:2 * width] + gh[:, width:2 * width])
        n = b.np.tanh(gx[:, 2 * width:] + r * gh[:, 2 * width:])
        h = (1 - z) * n + z * h
        return h, h
    _, hs = b.scan(step, h0, xs)
    return (hs * hs).sum()


def recurrent_params(rng, inputs: int, width: int, gates: int) -> dict:
    return {"wx": _normal(rng, (inputs, gates * width), 1 / math.sqrt(inputs)),
            "wh": _normal(rng, (width, gates * width), 1 / math.sqrt(width)),
            "b": np.zeros(gates * width, np.float32)}


# --- the workloads ----------------------------------------------------------------------

@dataclass
class Workload:
    """A named model function and its arguments (numpy arrays, shared by the backends)."""

    name: str
    make_fn: Callable      # backend -> the function to jit
    args: tuple


def _sgd(b, loss, lr: float = 1e-3):
    def step(p, *args):
        value, grads = b.value_and_grad(loss)(p, *args)
        return value, _tree_sgd(p, grads, lr)
    return step


def _tree_sgd(p, g, lr):
    if isinstance(p, dict):
        return {k: _tree_sgd(p[k], g[k], lr) for k in p}
    if isinstance(p, (list, tuple)):
        return type(p)(_tree_sgd(a, c, lr) for a, c in zip(p, g))
    return p - lr * g


def workloads(scale: float = 1.0) -> list[Workload]:
    """The zoo at the sizes of the performance issue (`scale` < 1 shrinks every size, for
    tests)."""
    rng = np.random.default_rng(0)

    def n(size: int) -> int:
        return max(2, int(size * scale))
    batch, time, width, heads = n(8), n(128), n(256) // 4 * 4, 4
    x = _normal(rng, (batch, time, width), 1.0)
    bp = block_params(rng, width)
    gpt_width, gpt_heads, vocab, gpt_time, gpt_batch = n(768) // 12 * 12, 12, n(8192), \
        n(128), n(4)
    gpt = {"wte": _normal(rng, (vocab, gpt_width), 0.02),
           "wpe": _normal(rng, (gpt_time, gpt_width), 0.01),
           "blocks": [block_params(rng, gpt_width) for _ in range(2)],
           "lnf_g": np.ones(gpt_width, np.float32), "lnf_b": np.zeros(gpt_width, np.float32)}
    tokens = rng.integers(0, vocab, (gpt_batch, gpt_time)).astype(np.int32)
    targets = np.roll(tokens, -1, axis=1)
    steps, rbatch, inputs, hidden = n(32), n(32), n(128), n(256)
    xs = _normal(rng, (steps, rbatch, inputs), 1.0)
    h0 = np.zeros((rbatch, hidden), np.float32)
    lstm = recurrent_params(rng, inputs, hidden, 4)
    gru = recurrent_params(rng, inputs, hidden, 3)

    def block_loss(b, p, x):
        out = block(b, p, x, heads)
        return (out * out).mean()
    return [
        Workload("transformer block forward",
                 lambda b: lambda p, x: block(b, p, x, heads), (bp, x)),
        Workload("transformer block gradient",
                 lambda b: b.grad(lambda p, x: block_loss(b, p, x)), (bp, x)),
        Workload("GPT-2-small width, 2 layers: forward loss",
                 lambda b: lambda p, t, y: decoder_loss(b, p, t, y, gpt_heads),
                 (gpt, tokens, targets)),
        Workload("GPT-2-small width, 2 layers: training step",
                 lambda b: _sgd(b, lambda p, t, y: decoder_loss(b, p, t, y, gpt_heads)),
                 (gpt, tokens, targets)),
        Workload("LSTM scan forward", lambda b: lambda p, xs, h, c: lstm_loss(b, p, xs, h, c),
                 (lstm, xs, h0, h0)),
        Workload("LSTM scan gradient",
                 lambda b: b.grad(lambda p, xs, h, c: lstm_loss(b, p, xs, h, c)),
                 (lstm, xs, h0, h0)),
        Workload("GRU scan forward", lambda b: lambda p, xs, h: gru_loss(b, p, xs, h),
                 (gru, xs, h0)),
        Workload("GRU scan gradient",
                 lambda b: b.grad(lambda p, xs, h: gru_loss(b, p, xs, h)), (gru, xs, h0)),
    ]
