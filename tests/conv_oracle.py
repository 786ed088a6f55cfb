"""A convolution written from its definition, in float64, as a test oracle independent of
flowjit's reference (which pads and dilates the input and slices it per tap) and of its
lowering (im2col and a dot).

Output position `o` and window tap `t` of a spatial dimension meet the padded, dilated
input at `o * stride + t * rhs_dilation`; that is input element `i` when
`o * stride + t * rhs_dilation - padding_low == i * lhs_dilation`, and zero otherwise.
Specs are JAX's ConvDimensionNumbers: lhs/out (batch, feature, spatial...), rhs
(out feature, in feature, spatial...).
"""
from __future__ import annotations

import itertools

import numpy as np


def _input_index(o, t, size, stride, low, lhs_dilation, rhs_dilation):
    position = o * stride + t * rhs_dilation - low
    if position < 0 or position % lhs_dilation:
        return None
    i = position // lhs_dilation
    return i if i < size else None


def _out_size(size, kernel, stride, low, high, lhs_dilation, rhs_dilation):
    base = (size - 1) * lhs_dilation + 1 + low + high if size else low + high
    window = (kernel - 1) * rhs_dilation + 1
    return 0 if base < window else (base - window) // stride + 1


def _pairs(lhs_shape, rhs_shape, strides, padding, lhs_dilation, rhs_dilation):
    """(output spatial index, kernel tap, input spatial index) triples that meet."""
    n = len(strides)
    outs = [_out_size(lhs_shape[2 + k], rhs_shape[2 + k], strides[k], *padding[k],
                      lhs_dilation[k], rhs_dilation[k]) for k in range(n)]
    triples = []
    for o in itertools.product(*map(range, outs)):
        for t in itertools.product(*(range(rhs_shape[2 + k]) for k in range(n))):
            i = [_input_index(o[k], t[k], lhs_shape[2 + k], strides[k], padding[k][0],
                              lhs_dilation[k], rhs_dilation[k]) for k in range(n)]
            if all(v is not None for v in i):
                triples.append((o, t, tuple(i)))
    return outs, triples


def conv(lhs, rhs, strides, padding, lhs_dilation=None, rhs_dilation=None, specs=None,
         feature_groups=1, batch_groups=1):
    """conv_general_dilated by its definition (float64)."""
    n = lhs.ndim - 2
    specs = specs or (tuple(range(n + 2)),) * 3
    lhs_dilation = lhs_dilation or (1,) * n
    rhs_dilation = rhs_dilation or (1,) * n
    x = np.transpose(np.asarray(lhs, np.float64), specs[0])
    w = np.transpose(np.asarray(rhs, np.float64), specs[1])
    batch, features = x.shape[:2]
    out_features, kernel_in = w.shape[:2]
    groups = max(feature_groups, batch_groups)
    outs, triples = _pairs(x.shape, w.shape, strides, padding, lhs_dilation, rhs_dilation)
    out_batch = batch // batch_groups
    out = np.zeros((out_batch, out_features) + tuple(outs))
    per_group = out_features // groups
    for f in range(out_features):
        g = f // per_group
        for b in range(out_batch):
            source = g * out_batch + b if batch_groups > 1 else b
            first = g * kernel_in if feature_groups > 1 else 0
            for o, t, i in triples:
                out[(b, f) + o] += x[(source, slice(first, first + kernel_in)) + i] @ \
                    w[(f, slice(None)) + t]
    return np.transpose(out, np.argsort(specs[2]))


def conv_vjp(lhs, rhs, g, strides, padding, lhs_dilation=None, rhs_dilation=None,
             specs=None):
    """(d lhs, d rhs) of sum(g * conv(lhs, rhs)), no groups: each term of the sum above,
    differentiated (float64)."""
    n = lhs.ndim - 2
    specs = specs or (tuple(range(n + 2)),) * 3
    lhs_dilation = lhs_dilation or (1,) * n
    rhs_dilation = rhs_dilation or (1,) * n
    x = np.transpose(np.asarray(lhs, np.float64), specs[0])
    w = np.transpose(np.asarray(rhs, np.float64), specs[1])
    gc = np.transpose(np.asarray(g, np.float64), specs[2])
    _, triples = _pairs(x.shape, w.shape, strides, padding, lhs_dilation, rhs_dilation)
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for o, t, i in triples:
        go = gc[(slice(None), slice(None)) + o]             # [N, O]
        dx[(slice(None), slice(None)) + i] += go @ w[(slice(None), slice(None)) + t]
        dw[(slice(None), slice(None)) + t] += go.T @ x[(slice(None), slice(None)) + i]
    return np.transpose(dx, np.argsort(specs[0])), np.transpose(dw, np.argsort(specs[1]))


def same_padding(size, kernel, stride):
    """TensorFlow's SAME padding of one dimension (the extra one at the end)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
