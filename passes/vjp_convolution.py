"""The VJP of `convolution`: each operand's cotangent is itself a convolution (the op is
bilinear), so second and higher derivatives come from the same rule.

As JAX's `_conv_general_dilated_transpose_lhs/rhs`: the input's cotangent convolves the
result's cotangent with the spatially reversed kernel, strides and lhs dilation trading
places; the kernel's cotangent convolves the input with the result's cotangent, strides
and rhs dilation trading places, feature groups becoming batch groups and back.
"""
from __future__ import annotations

from flowjit.ir.attributes import ConvDimensionLabels, window
from flowjit.ir.shape_rules import dilated_size
from flowjit.ir.module import Instruction


def _swap_first_two(spec: tuple[int, ...]) -> tuple[int, ...]:
    return (spec[1], spec[0]) + tuple(spec[2:])


def _split_axis(e, x, axis: int, groups: int):
    """x with dim `axis` split into (groups, size / groups), the groups major."""
    dims = list(x.shape.dims)
    dims[axis:axis + 1] = [groups, dims[axis] // groups]
    return e.reshape(x, dims)


def _merge_axis_into(e, x, source: int, target: int):
    """x with dim `source` merged into dim `target` (numbered without `source`) as its
    major part (JAX's _reshape_axis_into)."""
    order = [d for d in range(x.shape.rank) if d != source]
    order.insert(target, source)
    dims = [x.shape.dims[d] for d in range(x.shape.rank) if d != source]
    dims[target] *= x.shape.dims[source]
    return e.reshape(e.transpose(x, order), dims)


def _convolve(e, lhs, rhs, labels: ConvDimensionLabels, strides, padding, lhs_dilation,
              rhs_dilation, feature_groups: int = 1, batch_groups: int = 1):
    kernel = [rhs.shape.dims[d] for d in labels.rhs[2:]]
    attrs = {"window": window(kernel, strides, padding, rhs_dilation, lhs_dilation),
             "dim_labels": labels}
    if feature_groups != 1:
        attrs["feature_group_count"] = feature_groups
    if batch_groups != 1:
        attrs["batch_group_count"] = batch_groups
    return e.op("convolution", lhs, rhs, **attrs)


def _spatial(x, spec) -> list[int]:
    return [x.shape.dims[d] for d in spec[2:]]


def _lhs_cotangent(e, inst, g, rhs):
    labels = inst.attrs["dim_labels"]
    dims = inst.attrs.get("window", ())
    feature_groups = inst.attrs.get("feature_group_count", 1)
    batch_groups = inst.attrs.get("batch_group_count", 1)
    lhs = inst.operands[0]
    groups = max(feature_groups, batch_groups)
    if groups > 1:   # the groups move from the kernel's output to its input features
        rhs = _merge_axis_into(e, _split_axis(e, rhs, labels.rhs[0], groups), labels.rhs[0],
                               labels.rhs[1])
    strides = [d.stride for d in dims]
    lhs_dilation = [d.base_dilation for d in dims]
    rhs_dilation = [d.window_dilation for d in dims]
    padding = []
    for size, kernel, out, d in zip(_spatial(lhs, labels.lhs), _spatial(rhs, labels.rhs),
                                    _spatial(g, labels.out), dims):
        low = dilated_size(kernel, d.window_dilation) - d.padding_low - 1
        high = (dilated_size(size, d.base_dilation) + dilated_size(kernel, d.window_dilation)
                - 1 - dilated_size(out, d.stride) - low)
        padding.append((low, high))
    reversed_kernel = e.op("reverse", rhs, dimensions=tuple(labels.rhs[2:]))
    transposed = ConvDimensionLabels(labels.out, _swap_first_two(labels.rhs), labels.lhs)
    out = _convolve(e, g, reversed_kernel, transposed, lhs_dilation, padding, strides,
                    rhs_dilation, feature_groups=groups)
    if batch_groups > 1:   # the groups' batches were computed as features
        out = _merge_axis_into(e, _split_axis(e, out, labels.lhs[1], batch_groups),
                               labels.lhs[1], labels.lhs[0])
    return out


def _rhs_cotangent(e, inst, g):
    labels = inst.attrs["dim_labels"]
    dims = inst.attrs.get("window", ())
    feature_groups = inst.attrs.get("feature_group_count", 1)
    batch_groups = inst.attrs.get("batch_group_count", 1)
    lhs, rhs = inst.operands
    padding = []
    for size, kernel, out, d in zip(_spatial(lhs, labels.lhs), _spatial(rhs, labels.rhs),
                                    _spatial(g, labels.out), dims):
        from_lhs = dilated_size(out, d.stride) - dilated_size(size, d.base_dilation)
        from_rhs = dilated_size(kernel, d.window_dilation) - d.padding_low - 1
        padding.append((d.padding_low, from_lhs + from_rhs))
    transposed = ConvDimensionLabels(_swap_first_two(labels.lhs), _swap_first_two(labels.out),
                                     _swap_first_two(labels.rhs))
    return _convolve(e, lhs, g, transposed, [d.window_dilation for d in dims], padding,
                     [d.base_dilation for d in dims], [d.stride for d in dims],
                     feature_groups=batch_groups, batch_groups=feature_groups)


def convolution_rule(e, inst, g):
    """Cotangents of both operands, each one convolution (with reshapes for groups)."""
    lhs, rhs = inst.operands
    if g.shape.size == 0:
        return [e.zeros(lhs), e.zeros(rhs)]
    labels = inst.attrs["dim_labels"]
    dims = inst.attrs.get("window", ())
    g = e.convert(g, lhs.shape.dtype)   # a wider result type (preferred_element_type)
    flipped = tuple(labels.rhs[2 + k] for k, d in enumerate(dims) if d.reversal)
    if flipped:   # reversal is the kernel reversed first: differentiate that
        plain = window([d.size for d in dims], [d.stride for d in dims],
                       [(d.padding_low, d.padding_high) for d in dims],
                       [d.window_dilation for d in dims], [d.base_dilation for d in dims])
        kernel = e.op("reverse", rhs, dimensions=flipped)
        forward = Instruction(inst.name, inst.opcode, inst.shape, [lhs, kernel],
                              {**inst.attrs, "window": plain})
        d_lhs, d_kernel = convolution_rule(e, forward, g)
        return [d_lhs, e.op("reverse", d_kernel, dimensions=flipped)]
    return [_lhs_cotangent(e, inst, g, rhs), _rhs_cotangent(e, inst, g)]
