"""Convolutions with jax.lax's names, signatures and defaults: `conv_general_dilated` and
its wrappers (`conv`, `conv_with_general_padding`, `conv_transpose`), the dimension-number
helpers, and the padding rules ("SAME", "SAME_LOWER", "VALID"). Each binds one IR
`convolution`; flowjit.lax re-exports them."""
from __future__ import annotations

import operator
from typing import NamedTuple, Optional, Sequence

import numpy as np

from flowjit.core import Tracer, bind, shape_of
from flowjit.ir.attributes import ConvDimensionLabels, window
from flowjit.ir.errors import ShapeError
from flowjit.ir.shape_rules import dilated_size
from flowjit.source_info import at_user_line


class ConvDimensionNumbers(NamedTuple):
    """jax.lax.ConvDimensionNumbers: for lhs and out (batch, feature, spatial...), for rhs
    (output feature, input feature, spatial...), each a tuple of dimension numbers."""

    lhs_spec: Sequence[int]
    rhs_spec: Sequence[int]
    out_spec: Sequence[int]


def _spec_permutations(specs: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """("NHWC", "HWIO", "NHWC") -> the three permutations (spatial dims ordered as they
    appear in the kernel's string, as in JAX)."""
    pairs = (("N", "C"), ("O", "I"), ("N", "C"))
    for i, ((a, b), spec) in enumerate(zip(pairs, specs)):
        if not spec.count(a) == spec.count(b) == 1:
            raise TypeError(f"convolution dimension_numbers[{i}] must contain the characters "
                            f"'{a}' and '{b}' exactly once, got {spec}.")
        if len(spec) != len(set(spec)):
            raise TypeError(f"convolution dimension_numbers[{i}] cannot have duplicate "
                            f"characters, got {spec}.")
    spatial = [set(spec) - set(pair) for spec, pair in zip(specs, pairs)]
    if not spatial[0] == spatial[1] == spatial[2]:
        raise TypeError("convolution dimension_numbers elements must each have the same set "
                        f"of spatial characters, got {tuple(specs)}.")
    kernel = specs[1]

    def permutation(spec, pair):
        dims = sorted((i for i, c in enumerate(spec) if c not in pair),
                      key=lambda i: kernel.index(spec[i]))
        return (spec.index(pair[0]), spec.index(pair[1])) + tuple(dims)
    return tuple(permutation(spec, pair) for spec, pair in zip(specs, pairs))


def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers) -> ConvDimensionNumbers:
    """`dimension_numbers` (None, three strings or ConvDimensionNumbers) in canonical form."""
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    if len(lhs_shape) != len(rhs_shape):
        raise TypeError("convolution requires lhs and rhs ndim to be equal, got "
                        f"{len(lhs_shape)} and {len(rhs_shape)}.")
    if dimension_numbers is None:
        iota = tuple(range(len(lhs_shape)))
        return ConvDimensionNumbers(iota, iota, iota)
    if not isinstance(dimension_numbers, (list, tuple)):
        raise TypeError("convolution dimension_numbers must be tuple/list or None, got "
                        f"{type(dimension_numbers)}.")
    if len(dimension_numbers) != 3:
        raise TypeError("convolution dimension_numbers list/tuple must be length 3, got "
                        f"{len(dimension_numbers)}.")
    if not all(isinstance(spec, str) for spec in dimension_numbers):
        raise TypeError("convolution dimension_numbers elements must be strings, got "
                        f"{tuple(map(type, dimension_numbers))}.")
    for i, spec in enumerate(dimension_numbers):
        if len(spec) != len(lhs_shape):
            raise TypeError(f"convolution dimension_numbers[{i}] must have len equal to the "
                            f"ndim of lhs and rhs, got {len(spec)} for lhs and rhs shapes "
                            f"{tuple(lhs_shape)} and {tuple(rhs_shape)}.")
    return ConvDimensionNumbers(*_spec_permutations(dimension_numbers))


def padtype_to_pads(in_shape, window_shape, window_strides, padding) -> list[tuple[int, int]]:
    """(low, high) per spatial dim for "SAME" (extra at the end), "SAME_LOWER" (extra at
    the start) or "VALID" (none), as jax.lax.padtype_to_pads."""
    kind = padding.upper() if isinstance(padding, str) else getattr(padding, "name", padding)
    if kind == "VALID":
        return [(0, 0)] * len(in_shape)
    if kind not in ("SAME", "SAME_LOWER"):
        raise RuntimeError("Unrecognized padding type: expected 'VALID', 'SAME', or "
                           f"'SAME_LOWER', got {padding}.")
    pads = []
    for size, window_size, stride in zip(in_shape, window_shape, window_strides):
        out = -(-int(size) // int(stride))
        total = max((out - 1) * int(stride) + int(window_size) - int(size), 0)
        small, large = total // 2, total - total // 2
        pads.append((small, large) if kind == "SAME" else (large, small))
    return pads


def _labels(dnums: ConvDimensionNumbers) -> ConvDimensionLabels:
    return ConvDimensionLabels(*(tuple(int(d) for d in spec) for spec in dnums))


def _check_rank(name: str, values, count: int, lhs, rhs) -> tuple[int, ...]:
    values = tuple(int(v) for v in values)
    if len(values) != count:
        raise ShapeError(at_user_line(
            f"convolution: {name}={list(values)} needs {count} entries (one per spatial "
            f"dimension of lhs {lhs} and rhs {rhs})"))
    return values


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding,
                         lhs_dilation: Optional[Sequence[int]] = None,
                         rhs_dilation: Optional[Sequence[int]] = None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision=None,
                         preferred_element_type=None, out_sharding=None):
    """XLA's convolution, as jax.lax.conv_general_dilated: strides, padding ("SAME",
    "SAME_LOWER", "VALID" or (low, high) pairs), lhs (transposed) and rhs (atrous)
    dilation, any layout, feature and batch groups. `precision` is accepted and ignored
    (one precision on the CPU)."""
    lhs_shape, rhs_shape = shape_of(lhs), shape_of(rhs)
    dnums = conv_dimension_numbers(lhs_shape.dims, rhs_shape.dims, dimension_numbers)
    spatial = len(lhs_shape.dims) - 2
    strides = _check_rank("window_strides", window_strides, spatial, lhs_shape, rhs_shape)
    lhs_dilation = _check_rank("lhs_dilation", lhs_dilation or (1,) * spatial, spatial,
                               lhs_shape, rhs_shape)
    rhs_dilation = _check_rank("rhs_dilation", rhs_dilation or (1,) * spatial, spatial,
                               lhs_shape, rhs_shape)
    kernel = [rhs_shape.dims[d] for d in dnums.rhs_spec[2:]]
    if isinstance(padding, str):
        if any(d != 1 for d in lhs_dilation):
            raise ValueError("String padding is not implemented for transposed convolution "
                             "using this op. Please either exactly specify the required "
                             "padding or use conv_transpose.")
        padding = padtype_to_pads([lhs_shape.dims[d] for d in dnums.lhs_spec[2:]],
                                  [dilated_size(k, r) for k, r in zip(kernel, rhs_dilation)],
                                  strides, padding)
    else:
        try:
            padding = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
        except (ValueError, TypeError) as e:
            raise ValueError("padding argument to conv_general_dilated should be a string or "
                             f"a sequence of (low, high) pairs, got {padding}") from e
    if len(padding) != spatial:
        raise ShapeError(at_user_line(
            f"convolution: padding={list(padding)} needs {spatial} (low, high) pairs for lhs "
            f"{lhs_shape} and rhs {rhs_shape}"))
    attrs = {"window": window(kernel, strides, padding, rhs_dilation, lhs_dilation),
             "dim_labels": _labels(dnums)}
    if feature_group_count != 1:
        attrs["feature_group_count"] = int(feature_group_count)
    if batch_group_count != 1:
        attrs["batch_group_count"] = int(batch_group_count)
    if preferred_element_type is not None:
        # Exact for the types it widens to (bf16 products fit f32, s8 products s32): the
        # operands convert first, and the convolution runs in the wider type.
        from flowjit.lax import convert_element_type
        lhs = convert_element_type(lhs, preferred_element_type)
        rhs = convert_element_type(rhs, preferred_element_type)
    return bind("convolution", [lhs, rhs], attrs)


def conv(lhs, rhs, window_strides: Sequence[int], padding: str, precision=None,
         preferred_element_type=None):
    """conv_general_dilated with NCHW/OIHW layouts and no dilation."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides: Sequence[int], padding,
                              lhs_dilation: Optional[Sequence[int]],
                              rhs_dilation: Optional[Sequence[int]], precision=None,
                              preferred_element_type=None):
    """conv_general_dilated with NCHW/OIHW layouts."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                rhs_dilation=rhs_dilation, precision=precision,
                                preferred_element_type=preferred_element_type)


def _conv_transpose_padding(kernel: int, stride: int, padding) -> tuple[int, int]:
    """(low, high) padding of the fractionally strided convolution that undoes a forward
    convolution padded by `padding` ("SAME", "VALID" or a (low, high) pair)."""
    if padding == "SAME":
        total = kernel + stride - 2
        low = kernel - 1 if stride > kernel - 1 else -(-total // 2)
    elif padding == "VALID":
        total = kernel + stride - 2 + max(kernel - stride, 0)
        low = kernel - 1
    elif isinstance(padding, tuple):
        pads = tuple(kernel - p - 1 for p in padding)
        low, total = pads[0], sum(pads)
    else:
        raise ValueError(f"Invalid padding mode: {padding}")
    return low, total - low


_DEFAULT_TRANSPOSE_LAYOUTS = {2: ("NC", "IO", "NC"), 3: ("NHC", "HIO", "NHC"),
                              4: ("NHWC", "HWIO", "NHWC"), 5: ("NHWDC", "HWDIO", "NHWDC")}


def conv_transpose(lhs, rhs, strides: Sequence[int], padding,
                   rhs_dilation: Optional[Sequence[int]] = None, dimension_numbers=None,
                   transpose_kernel: bool = False, precision=None,
                   preferred_element_type=None, use_consistent_padding: bool = False):
    """jax.lax.conv_transpose: a convolution with lhs dilation `strides` (TensorFlow's
    layouts by default); string padding (or any, with use_consistent_padding) names the
    forward convolution's."""
    lhs_dims, rhs_dims = shape_of(lhs).dims, shape_of(rhs).dims
    ndim = len(lhs_dims)
    if dimension_numbers is None:
        if ndim not in _DEFAULT_TRANSPOSE_LAYOUTS:
            raise ValueError("No 4+ dimensional dimension_number defaults.")
        dimension_numbers = _DEFAULT_TRANSPOSE_LAYOUTS[ndim]
    dnums = conv_dimension_numbers(lhs_dims, rhs_dims, dimension_numbers)
    kernel = [rhs_dims[d] for d in dnums.rhs_spec[2:]]
    rhs_dilation = tuple(rhs_dilation or (1,) * (ndim - 2))
    if use_consistent_padding or (isinstance(padding, str) and padding in ("SAME", "VALID")):
        per_dim = [padding] * len(strides) if isinstance(padding, str) else list(padding)
        padding = tuple(_conv_transpose_padding(dilated_size(k, r), s,
                                                p if isinstance(p, str) else tuple(p))
                        for k, r, s, p in zip(kernel, rhs_dilation, strides, per_dim))
    if transpose_kernel:
        from flowjit.lax import rev, transpose
        rhs = rev(rhs, tuple(dnums.rhs_spec[2:]))
        order = list(range(ndim))
        order[dnums.rhs_spec[0]], order[dnums.rhs_spec[1]] = (dnums.rhs_spec[1],
                                                              dnums.rhs_spec[0])
        rhs = transpose(rhs, order)
    return conv_general_dilated(lhs, rhs, (1,) * (ndim - 2), padding, strides, rhs_dilation,
                                dnums, precision=precision,
                                preferred_element_type=preferred_element_type)


def convolve(a, v, mode: str = "full", *, precision=None, preferred_element_type=None):
    """numpy.convolve (as jax.numpy.convolve): 1-D arrays, mode "full", "same" or
    "valid"; integer inputs convolve in the default float type."""
    from flowjit.lax import reshape, rev
    from flowjit.numpy._promote import inexact_dtype, promote, result_type
    if len(_dims(a)) != 1 or len(_dims(v)) != 1:
        raise ValueError("convolve() only support 1-dimensional inputs.")
    dtype = inexact_dtype(a, v) if preferred_element_type is None else result_type(a, v)
    a, v = promote(a, v, dtype=dtype)
    if not _dims(a)[0] or not _dims(v)[0]:
        raise ValueError(f"convolve: inputs cannot be empty, got shapes {_dims(a)} and "
                         f"{_dims(v)}.")
    if _dims(a)[0] < _dims(v)[0]:
        a, v = v, a
    n = _dims(v)[0]
    padding = {"valid": [(0, 0)], "same": [(n // 2, n - n // 2 - 1)],
               "full": [(n - 1, n - 1)]}.get(mode)
    if padding is None:
        raise ValueError("mode must be one of ['full', 'same', 'valid']")
    # numpy's convolution flips the kernel; the op correlates.
    out = conv_general_dilated(reshape(a, (1, 1, _dims(a)[0])), reshape(rev(v, (0,)), (1, 1, n)),
                               (1,), padding, precision=precision,
                               preferred_element_type=preferred_element_type)
    return reshape(out, (_dims(out)[2],))


def _dims(x) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, Tracer) else tuple(np.shape(x))
