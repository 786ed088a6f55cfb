"""Batching rules of the windowed ops: reduce-window, select-and-scatter, convolution.

A windowed op's batch dimension becomes a leading dimension with a window of one; a
convolution folds the batch into its own batch dimension (batched input), its output
features (batched kernel) or its feature groups (both), as JAX's `_conv_general_dilated_
batch_rule` does, so the batched convolution is still one convolution.
"""
from __future__ import annotations

from flowjit.ir.attributes import ConvDimensionLabels, WindowDim
from flowjit.passes.batching import Batcher, BatchingError, batched_shape

_ONE = WindowDim(1)


def reduce_window_rule(b: Batcher, inst, operands, bdims):
    n = len(operands) // 2
    if any(d is not None for d in bdims[n:]):
        raise BatchingError("a reduce-window whose init value depends on the mapped inputs "
                            "is not supported")
    inputs = [b.to_front(x, d) for x, d in zip(operands[:n], bdims[:n])]
    window = (_ONE,) + tuple(inst.attrs["window"])
    out = 0 if n == 1 else (0,) * n
    return b.op("reduce-window", *inputs, *operands[n:], shape=batched_shape(
        inst.shape, out, b.size), window=window, calls=dict(inst.calls)), out


def select_and_scatter_rule(b: Batcher, inst, operands, bdims):
    (operand, source, init), (ob, sb, ib) = operands, bdims
    if ib is not None:
        raise BatchingError("a select-and-scatter whose init value depends on the mapped "
                            "inputs is not supported")
    window = (_ONE,) + tuple(inst.attrs["window"])
    return b.op("select-and-scatter", b.to_front(operand, ob), b.to_front(source, sb), init,
                window=window, calls=dict(inst.calls)), 0


def _merge_into(b: Batcher, x, bdim: int, target: int):
    """`x` (batched at `bdim`) with the batch folded into dimension `target` of the
    unbatched array, the batch outermost: [.., B*N, ..]. Returns the array."""
    x = b.to_front(x, bdim)                         # [B, d0, d1, ...]
    rank = x.shape.rank
    order = [0, target + 1] + [d for d in range(1, rank) if d != target + 1]
    x = b.transpose(x, order)                       # [B, N, rest...]
    merged = (x.shape.dims[0] * x.shape.dims[1],) + x.shape.dims[2:]
    x = b.reshape(x, merged)                        # [B*N, rest...]
    back = [d for d in range(1, rank - 1)]
    back.insert(target, 0)
    return b.transpose(x, back)                     # rest with B*N at `target`


def _split_out(b: Batcher, y, target: int, outer: int):
    """`y` with dimension `target` split into (outer, rest): the batch becomes dimension
    `target` of the result."""
    dims = y.shape.dims
    split = dims[:target] + (outer, dims[target] // outer) + dims[target + 1:]
    return b.reshape(y, split)


def convolution_rule(b: Batcher, inst, operands, bdims):
    (lhs, rhs), (lb, rb) = operands, bdims
    labels: ConvDimensionLabels = inst.attrs["dim_labels"]
    groups = inst.attrs.get("feature_group_count", 1)
    if inst.attrs.get("batch_group_count", 1) != 1:
        raise BatchingError("a convolution with batch_group_count > 1 (a weight gradient) "
                            "is not batched yet")
    attrs = dict(inst.attrs)
    lhs_batch, lhs_feature = labels.lhs[0], labels.lhs[1]
    rhs_out = labels.rhs[0]
    out_batch, out_feature = labels.out[0], labels.out[1]
    if rb is None:
        # The batch joins the images: one convolution over B*N images.
        lhs = _merge_into(b, lhs, lb, lhs_batch)
        y = b.op("convolution", lhs, rhs, shape=_conv_shape(inst, lhs, rhs, attrs), **attrs)
        return _split_out(b, y, out_batch, b.size), out_batch
    if lb is None:
        # The batch joins the output features, inside each feature group.
        rhs = b.to_front(rhs, rb)                     # [B, ...]
        rhs = _group_major(b, rhs, rhs_out + 1, groups)
        y = b.op("convolution", lhs, rhs, shape=_conv_shape(inst, lhs, rhs, attrs), **attrs)
        return _ungroup(b, y, out_feature, groups), out_feature
    # Both batched: B feature groups of the images' features and the kernel's outputs.
    lhs = _merge_into(b, lhs, lb, lhs_feature)
    rhs = _merge_into(b, rhs, rb, rhs_out)
    attrs["feature_group_count"] = groups * b.size
    y = b.op("convolution", lhs, rhs, shape=_conv_shape(inst, lhs, rhs, attrs), **attrs)
    return _split_out(b, y, out_feature, b.size), out_feature


def _conv_shape(inst, lhs, rhs, attrs):
    from flowjit.ir.ops import infer_shape
    result = infer_shape("convolution", [lhs.shape, rhs.shape], attrs, {})
    return result.with_dtype(inst.shape.dtype)


def _group_major(b: Batcher, rhs, out_dim: int, groups: int):
    """Kernel [B, ..., O, ...] (O at `out_dim`) to [..., G*B*(O/G), ...]: each feature
    group's output features are its B copies', so the groups still line up."""
    dims = rhs.shape.dims
    rank = rhs.shape.rank
    order = [out_dim, 0] + [d for d in range(1, rank) if d != out_dim]
    x = b.transpose(rhs, order)                      # [O, B, rest...]
    o = dims[out_dim]
    x = b.reshape(x, (groups, o // groups, b.size) + x.shape.dims[2:])
    x = b.transpose(x, (0, 2, 1) + tuple(range(3, x.shape.rank)))  # [G, B, O/G, rest]
    x = b.reshape(x, (groups * b.size * (o // groups),) + x.shape.dims[3:])
    back = list(range(1, rank - 1))
    back.insert(out_dim - 1, 0)
    return b.transpose(x, back)


def _ungroup(b: Batcher, y, feature: int, groups: int):
    """Output features G*B*(O/G) at `feature` to [.., B, O, ..] with B at `feature`."""
    dims = y.shape.dims
    per = dims[feature] // (groups * b.size)
    y = b.reshape(y, dims[:feature] + (groups, b.size, per) + dims[feature + 1:])
    rank = y.shape.rank
    order = list(range(rank))
    order[feature], order[feature + 1] = feature + 1, feature      # [.., B, G, O/G, ..]
    y = b.transpose(y, order)
    return b.reshape(y, dims[:feature] + (b.size, groups * per) + dims[feature + 1:])
