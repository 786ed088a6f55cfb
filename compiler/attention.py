"""jax.nn.dot_product_attention's XLA path, composed of einsum, masks and softmax (so it
fuses and differentiates like any other flowjit program)."""
from __future__ import annotations

import math

import numpy as np

import flowjit.numpy as fnp
from flowjit.ir.errors import ShapeError
from flowjit.numpy._promote import dtype_of, shape_of
from flowjit.source_info import at_user_line


def _mask(T: int, S: int, mask, is_causal, q_lengths, kv_lengths, window):
    """The combined boolean mask, broadcastable to [B, N, T, S] (None: nothing masked)."""
    combined = None

    def both(a, b):
        return b if a is None else fnp.logical_and(a, b)
    if mask is not None:
        combined = fnp.asarray(mask).astype(bool)
    rows = fnp.arange(T)[:, None]
    cols = fnp.arange(S)[None, :]
    if is_causal:
        combined = both(combined, (cols <= rows)[None, None])
    if window is not None:
        left, right = window
        combined = both(combined, ((rows <= cols + left) & (rows >= cols - right))[None, None])
    if q_lengths is not None or kv_lengths is not None:
        pad = None
        if q_lengths is not None:
            pad = fnp.arange(T)[None, :, None] < fnp.asarray(q_lengths)[:, None, None]
        if kv_lengths is not None:
            kv = fnp.arange(S)[None, None, :] < fnp.asarray(kv_lengths)[:, None, None]
            pad = kv if pad is None else fnp.logical_and(pad, kv)
        combined = both(combined, pad[:, None])
    return combined


def attention(query, key, value, bias, mask, scale, is_causal, q_lengths, kv_lengths,
              window, implementation, return_residual):
    if implementation not in (None, "xla"):
        raise NotImplementedError(f"dot_product_attention: implementation={implementation!r}"
                                  " (flowjit has the 'xla' one)")
    rank = len(shape_of(query))
    if rank not in (3, 4) or len(shape_of(key)) != rank or len(shape_of(value)) != rank:
        raise ShapeError(at_user_line(
            f"dot_product_attention: query, key and value must all be [B, T, N, H] or "
            f"[T, N, H], got {tuple(shape_of(query))}, {tuple(shape_of(key))} and "
            f"{tuple(shape_of(value))}"))
    query, key, value = (fnp.asarray(t) if rank == 4 else fnp.asarray(t)[None]
                         for t in (query, key, value))
    bias = None if bias is None else fnp.asarray(bias)
    mask = None if mask is None else fnp.asarray(mask)
    if rank == 3:   # [N, T, S] masks and biases gain the batch dim too
        bias = bias if bias is None or bias.ndim == 4 else bias[None]
        mask = mask if mask is None or mask.ndim == 4 else mask[None]
    B, T, N, H = shape_of(query)
    _, S, K, _ = shape_of(key)
    if N % K or shape_of(value)[2] != K:
        raise ShapeError(at_user_line(f"dot_product_attention: {N} query heads cannot share "
                                      f"{K} key/value heads"))
    if scale is None:
        scale = 1.0 / math.sqrt(H)
    groups = N // K
    if groups > 1:   # each key/value head serves `groups` query heads
        key = fnp.repeat(key, groups, axis=2)
        value = fnp.repeat(value, groups, axis=2)
    logits_dtype = np.promote_types(dtype_of(query), np.float32)
    logits = fnp.einsum("btnh,bsnh->bnts", query, key).astype(logits_dtype)
    logits = logits * np.asarray(scale, logits_dtype)
    if bias is not None:
        logits = (logits + bias).astype(logits_dtype)
    combined = _mask(T, S, mask, is_causal, q_lengths, kv_lengths, window)
    if combined is not None:
        negative = -0.7 * min(float(np.finfo(logits_dtype).max), float(np.finfo(np.float32).max))
        logits = fnp.where(combined, logits, np.asarray(negative, logits_dtype))
    logits = logits.astype(np.float32)
    from flowjit.nn import softmax
    probs = softmax(logits, axis=-1).astype(dtype_of(key))
    encoded = fnp.einsum("bnts,bsnh->btnh", probs, value)
    if q_lengths is not None:
        keep = fnp.arange(T)[None, :] < fnp.asarray(q_lengths)[:, None]
        encoded = encoded * keep[:, :, None, None].astype(dtype_of(encoded))
    if rank == 3:
        encoded = encoded[0]
    if return_residual:
        raise NotImplementedError("dot_product_attention: return_residual=True")
    return encoded
