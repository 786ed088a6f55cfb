"""take_along_axis / put_along_axis: one gather or scatter whose non-axis dims are batching
dims (`operand_batching_dims`), as JAX writes them, so the gradient of one is the other."""
from __future__ import annotations

from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.numpy._promote import (broadcast_shapes, broadcast_to, dtype_of, shape_of,
                                    wrap)
from flowjit.numpy.reductions import normalize_axis
from flowjit.numpy.shape_ops import ravel
from flowjit.source_info import at_user_line
from flowjit.ir.errors import ShapeError


def _aligned(arr, indices, axis: Optional[int], name: str):
    """(arr, integer indices, axis) with every dim but `axis` broadcast to one shape."""
    if axis is None:
        arr = ravel(arr)
        if len(shape_of(indices)) != 1:
            raise ShapeError(at_user_line(f"{name} with axis=None needs 1-D indices, got "
                                          f"shape {tuple(shape_of(indices))}"))
        axis = 0
    arr_shape, index_shape = tuple(shape_of(arr)), tuple(shape_of(indices))
    if len(arr_shape) != len(index_shape):
        raise ShapeError(at_user_line(f"{name}: indices of shape {index_shape} must have the "
                                      f"rank of the array's shape {arr_shape}"))
    if dtype_of(indices).kind not in "iu":
        raise ShapeError(at_user_line(f"{name}: indices must be integers, got "
                                      f"{dtype_of(indices)}"))
    axis = normalize_axis(axis, len(arr_shape))
    others = lambda shape: shape[:axis] + shape[axis + 1:]   # noqa: E731
    try:
        batch = broadcast_shapes(others(arr_shape), others(index_shape))
    except (ValueError, ShapeError):
        raise ShapeError(at_user_line(f"{name}: the array's shape {arr_shape} and the "
                                      f"indices' shape {index_shape} do not broadcast "
                                      f"outside axis {axis}")) from None
    with_axis = lambda size: batch[:axis] + (size,) + batch[axis:]  # noqa: E731
    arr = broadcast_to(arr, with_axis(arr_shape[axis]))
    indices = broadcast_to(indices, with_axis(index_shape[axis]))
    return arr, indices, axis


def _wrapped(indices, size: int):
    """Negative indices count from the end (once, as numpy's do)."""
    if dtype_of(indices).kind == "u":
        return indices
    shape = tuple(shape_of(indices))
    full = lambda v: lax.broadcast_in_dim(np.asarray(v, dtype_of(indices)), shape, [])  # noqa
    return lax.select(lax.lt(indices, full(0)), lax.add(indices, full(size)), indices)


def _dimension_numbers(rank: int, axis: int):
    batching = tuple(d for d in range(rank) if d != axis)
    return batching, (axis,)


def take_along_axis(arr, indices, axis: Optional[int] = -1, mode=None, fill_value=None, *,
                    wrap_negative_indices: Optional[bool] = None):
    """jax.numpy.take_along_axis: out-of-range indices give `fill_value` (NaN for floats)
    unless `mode` is "clip" or "promise_in_bounds"."""
    arr, indices, axis = _aligned(arr, indices, axis, "take_along_axis")
    shape = tuple(shape_of(arr))
    if wrap_negative_indices is None or wrap_negative_indices:
        indices = _wrapped(indices, shape[axis])
    rank = len(shape)
    batching, mapped = _dimension_numbers(rank, axis)
    numbers = lax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=mapped,
                                         start_index_map=mapped,
                                         operand_batching_dims=batching,
                                         start_indices_batching_dims=batching)
    index_shape = tuple(shape_of(indices))
    gathered = lax.gather(arr, lax.reshape(indices, index_shape + (1,)), numbers, (1,) * rank,
                          mode="fill" if mode is None else mode, fill_value=fill_value)
    return wrap(gathered)


def put_along_axis(arr, indices, values, axis: Optional[int], inplace: bool = True, *,
                   mode=None):
    """jax.numpy.put_along_axis (which needs inplace=False: arrays are immutable); indices
    out of range are dropped unless `mode` is "clip"."""
    if inplace:
        raise ValueError("put_along_axis: flowjit arrays are immutable; pass inplace=False "
                         "and use the returned array")
    original_shape = tuple(shape_of(arr))
    target_shape = original_shape if axis is not None else (int(np.prod(original_shape)),)
    arr, indices, axis = _aligned(arr, indices, axis, "put_along_axis")
    shape = tuple(shape_of(arr))
    if shape != target_shape:   # the indices may broadcast, the array may not
        raise ShapeError(at_user_line(f"put_along_axis: indices of shape "
                                      f"{tuple(shape_of(indices))} do not fit the array of "
                                      f"shape {original_shape}"))
    indices = _wrapped(indices, shape[axis])
    index_shape = tuple(shape_of(indices))
    values = lax.convert_element_type(values, dtype_of(arr)) \
        if dtype_of(values) != dtype_of(arr) else values
    values = broadcast_to(values, index_shape)
    batching, mapped = _dimension_numbers(len(shape), axis)
    numbers = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=mapped,
                                          scatter_dims_to_operand_dims=mapped,
                                          operand_batching_dims=batching,
                                          scatter_indices_batching_dims=batching)
    out = lax.scatter(arr, lax.reshape(indices, index_shape + (1,)), values, numbers,
                      mode=mode)
    return wrap(lax.reshape(out, original_shape))
