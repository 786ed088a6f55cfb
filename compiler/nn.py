"""Neural-network helpers with JAX's names (`jax.nn`): activations, softmax, losses."""
from __future__ import annotations

import math

import numpy as np

import flowjit.numpy as fnp
from flowjit import lax
from flowjit.numpy._promote import dtype_of, inexact_dtype, promote, wrap


def _float(x):
    (x,) = promote(x, dtype=inexact_dtype(x))
    return x


def relu(x):
    """max(x, 0), with JAX's gradient: 1 where x > 0, else 0 (0 at the kink, too)."""
    from flowjit.ad import stop_gradient
    return fnp.where(x > 0, x, stop_gradient(fnp.maximum(x, 0)))


def relu6(x):
    """min(max(x, 0), 6), with JAX's gradient: 1 strictly inside (0, 6), else 0."""
    from flowjit.ad import stop_gradient
    return fnp.where((x > 0) & (x < 6), x, stop_gradient(fnp.minimum(fnp.maximum(x, 0), 6)))


def leaky_relu(x, negative_slope: float = 0.01):
    """x where x >= 0, negative_slope * x elsewhere."""
    x = _float(x)
    return fnp.where(x >= 0, x, negative_slope * x)


def elu(x, alpha: float = 1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    x = _float(x)
    # As JAX: expm1 of 0 where x > 0 keeps that branch finite, and elu'(0) = alpha.
    safe = fnp.where(x > 0, 0.0, x)
    return fnp.where(x > 0, x, alpha * fnp.expm1(safe))


def sigmoid(x):
    return wrap(lax.logistic(_float(x)))


def softplus(x):
    """log(1 + exp(x)), computed without overflow."""
    # logaddexp(x, 0), as JAX: its gradient is sigmoid(x), 0.5 at 0 (max/min split ties).
    return fnp.logaddexp(_float(x), 0)


def gelu(x, approximate: bool = True):
    x = _float(x)
    if approximate:
        c = math.sqrt(2 / math.pi)
        return 0.5 * x * (1 + fnp.tanh(c * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + wrap(lax.erf(x * (1 / math.sqrt(2)))))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), without overflow."""
    return -softplus(-_float(x))


def silu(x):
    return x * sigmoid(x)


# --- more of jax.nn's activations (issue 15) ------------------------------------------------

def selu(x):
    """scale * elu(x, alpha) with the self-normalizing constants."""
    return 1.0507009873554804934193349852946 * elu(x, 1.6732632423543772848170429916717)


def celu(x, alpha=1.0):
    """max(x, 0) + alpha * expm1(min(x, 0) / alpha)."""
    x = _float(x)
    return fnp.maximum(x, 0.0) + alpha * fnp.expm1(fnp.minimum(x, 0.0) / alpha)


def hard_tanh(x):
    """x clipped to [-1, 1] (gradient 1 inside, 0 outside)."""
    return fnp.where(x > 1, 1, fnp.where(x < -1, -1, x))


def mish(x):
    """x * tanh(softplus(x))."""
    return x * fnp.tanh(softplus(x))


def glu(x, axis: int = -1):
    """First half of `axis` gated by the sigmoid of the second half."""
    first, second = fnp.split(x, 2, axis)
    return first * sigmoid(second)


def standardize(x, axis=-1, mean=None, variance=None, epsilon=1e-5, where=None, *,
                algorithm: str = "fast"):
    """(x - mean) / sqrt(variance + epsilon) over `axis` ("fast": E[x^2] - E[x]^2, clipped
    at 0; "stable": E[(x - mean)^2])."""
    if where is not None:
        raise NotImplementedError("standardize: where= is not supported")
    x = _float(x)
    if mean is None:
        mean = fnp.mean(x, axis, keepdims=True)
    if variance is None:
        if algorithm == "stable":
            variance = fnp.mean(fnp.square(x - mean), axis, keepdims=True)
        elif algorithm == "fast":
            variance = fnp.clip(fnp.mean(fnp.square(x), axis, keepdims=True)
                                - fnp.square(mean), 0)
        else:
            raise ValueError(f"Unknown algorithm '{algorithm}'. Expected 'fast' or 'stable'.")
    return (x - mean) * wrap(lax.rsqrt(variance + epsilon))


def hard_sigmoid(x):
    """relu6(x + 3) / 6."""
    return relu6(x + 3.0) / 6.0


def hard_silu(x):
    """x * hard_sigmoid(x)."""
    return x * hard_sigmoid(x)


hard_swish = hard_silu
swish = silu


def soft_sign(x):
    """x / (|x| + 1)."""
    return x / (fnp.abs(x) + 1)


def dot_product_attention(query, key, value, bias=None, mask=None, *, scale=None,
                          is_causal: bool = False, query_seq_lengths=None,
                          key_value_seq_lengths=None, local_window_size=None,
                          implementation=None, return_residual: bool = False):
    """softmax(q k^T * scale + bias, masked) v over [batch, seq, heads, head_dim] arrays
    (or without the batch dim); key/value may have fewer heads that query heads share."""
    from flowjit.attention import attention
    return attention(query, key, value, bias, mask, scale, is_causal, query_seq_lengths,
                     key_value_seq_lengths, local_window_size, implementation,
                     return_residual)


def logsumexp(x, axis=None, keepdims: bool = False):
    x = _float(x)
    peak = fnp.max(x, axis=axis, keepdims=True)
    peak = fnp.where(fnp.isfinite(peak), peak, 0)
    out = fnp.log(fnp.sum(fnp.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else fnp.squeeze(out, axis=axis)


def softmax(x, axis=-1):
    x = _float(x)
    e = fnp.exp(x - fnp.max(x, axis=axis, keepdims=True))
    return e / fnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x = _float(x)
    shifted = x - fnp.max(x, axis=axis, keepdims=True)
    return shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))


def one_hot(labels, num_classes: int, dtype=np.float32):
    """labels[..., None] == arange(num_classes), as `dtype`."""
    classes = fnp.arange(num_classes)
    return fnp.astype(fnp.expand_dims(labels, -1) == classes, dtype)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of integer `labels` under `logits` (stable: via log_softmax)."""
    logp = log_softmax(logits, axis=-1)
    picked = fnp.sum(logp * one_hot(labels, logits.shape[-1], dtype_of(logp)), axis=-1)
    return -fnp.mean(picked)


# --- pooling, with flax.linen's names, signatures and defaults ----------------------------

def pool(inputs, init, reduce_fn, window_shape, strides, padding):
    """`reduce_fn` over windows of the spatial dims of (batch..., spatial..., features)
    `inputs` (flax.linen.pool); unbatched inputs get a batch dim for the call only."""
    window_shape = tuple(window_shape)
    strides = tuple(strides) if strides is not None else (1,) * len(window_shape)
    if len(strides) != len(window_shape):
        raise ValueError(f"pool: strides {strides} must match window_shape {window_shape}")
    x = fnp.asarray(inputs) if not hasattr(inputs, "shape") else inputs
    batch_dims = x.ndim - (len(window_shape) + 1)
    single = batch_dims == 0
    if single:
        x = fnp.expand_dims(x, 0)
        batch_dims = 1
    if batch_dims < 0:
        raise ValueError(f"pool: inputs of shape {tuple(x.shape)} have fewer dims than the "
                         f"window {window_shape} plus a feature dim")
    dims = (1,) * batch_dims + window_shape + (1,)
    full_strides = (1,) * batch_dims + strides + (1,)
    if not isinstance(padding, str):
        padding = tuple(tuple(p) for p in padding)
        if len(padding) != len(window_shape) or any(len(p) != 2 for p in padding):
            raise ValueError(f"pool: padding {padding} needs one (low, high) pair per window "
                             f"dim ({len(window_shape)})")
        padding = ((0, 0),) * batch_dims + padding + ((0, 0),)
    y = lax.reduce_window(x, init, reduce_fn, dims, full_strides, padding)
    return fnp.squeeze(y, axis=0) if single else y


def max_pool(inputs, window_shape, strides=None, padding="VALID"):
    """Max over windows of the spatial dims (flax.linen.max_pool)."""
    return pool(inputs, -np.inf, lax.max, window_shape, strides, padding)


def min_pool(inputs, window_shape, strides=None, padding="VALID"):
    """Min over windows of the spatial dims (flax.linen.min_pool)."""
    return pool(inputs, np.inf, lax.min, window_shape, strides, padding)


def avg_pool(inputs, window_shape, strides=None, padding="VALID", count_include_pad=True):
    """Mean over windows of the spatial dims (flax.linen.avg_pool); with
    count_include_pad=False a window at the border divides by the elements it covers."""
    y = pool(inputs, 0.0, lax.add, window_shape, strides, padding)
    if count_include_pad:
        return y / math.prod(window_shape)
    shape = tuple(inputs.shape[:-1]) + (1,)
    if len(shape) - 2 == len(window_shape):
        shape = (1,) + shape[1:]
    dtype = y.dtype
    return y / pool(np.ones(shape, dtype), 0.0, lax.add, window_shape, strides, padding)
