"""numpy indexing (`x[idx]`) and JAX's functional updates (`x.at[idx].set/add/...`).

Basic indices (ints, slices, None, ...) become `slice`, `reverse`, `dynamic-slice` and
`reshape`; integer-array indices become one `gather`. Updates reuse the same path: the
flat positions `x[idx]` reads are computed from an iota, then one 1-D `scatter` writes them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from flowjit import lax
from flowjit.core import Tracer, as_array
from flowjit.numpy._promote import broadcast_arrays, dtype_of, promote, shape_of, wrap
from flowjit.source_info import at_user_line


def _is_int_scalar(i: Any) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def _is_index_array(i: Any) -> bool:
    if isinstance(i, Tracer):
        return True
    return isinstance(i, (list, np.ndarray)) and not _is_int_scalar(i)


def _expand(idx: Any, ndim: int) -> list:
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, np.ndarray) and i.dtype == np.bool_:
            out.extend(np.nonzero(i))  # concrete masks only: the shape depends on the data
        elif isinstance(i, Tracer) and i.dtype == np.bool_:
            raise IndexError(at_user_line(
                "boolean mask indexing on a traced array has a data-dependent shape; use "
                "flowjit.numpy.where(mask, x, y) instead"))
        elif isinstance(i, list):
            out.append(np.asarray(i))
        else:
            out.append(i)
    used = sum(1 for i in out if i is not None and i is not Ellipsis)
    ellipses = [k for k, i in enumerate(out) if i is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError(at_user_line("an index can only have a single ellipsis ('...')"))
    if used > ndim:
        raise IndexError(at_user_line(f"too many indices for array: array is {ndim}-"
                                      f"dimensional, but {used} were indexed"))
    if ellipses:
        k = ellipses[0]
        out[k:k + 1] = [slice(None)] * (ndim - used)
    out += [slice(None)] * (ndim - sum(1 for i in out if i is not None))
    return out


def _check_static(i: int, n: int, axis: int) -> int:
    if not -n <= i < n:
        raise IndexError(at_user_line(f"index {i} is out of bounds for axis {axis} with "
                                      f"size {n}"))
    return i % n


def _normalize_array(index, n: int, axis: int):
    """Negative entries wrapped; concrete indices bounds-checked (eager mode raises)."""
    if not isinstance(index, Tracer):
        index = np.asarray(index)
        if index.dtype.kind not in "iu":
            raise IndexError(at_user_line(f"arrays used as indices must be of integer type, "
                                          f"got {index.dtype}"))
        if index.size and (index.min() < -n or index.max() >= n):
            bad = index[(index < -n) | (index >= n)].flat[0]
            raise IndexError(at_user_line(f"index {bad} is out of bounds for axis {axis} with "
                                          f"size {n}"))
        return np.where(index < 0, index + n, index).astype(np.int64)
    if index.dtype.kind not in "iu":
        raise IndexError(at_user_line(f"arrays used as indices must be of integer type, got "
                                      f"{index.dtype}"))
    (index,) = promote(index, dtype=np.int64)
    zero = np.zeros((), np.int64)
    return lax.select(lax.compare(index, lax.broadcast_in_dim(zero, index.shape, []), "LT"),
                      lax.add(index, lax.broadcast_in_dim(np.asarray(n, np.int64),
                                                          index.shape, [])), index)


def getitem(x: Any, idx: Any) -> Any:
    """x[idx] with numpy's semantics (out-of-range traced indices are clamped, as in JAX)."""
    shape = tuple(shape_of(x))
    entries = _expand(idx, len(shape))
    has_arrays = any(_is_index_array(i) and not (isinstance(i, Tracer) and i.ndim == 0)
                     for i in entries)
    new_axes = [k for k, i in enumerate(entries) if i is None]
    entries = [i for i in entries if i is not None]
    if new_axes and has_arrays:
        raise NotImplementedError("mixing None with integer-array indices is not supported")

    starts, limits, strides, reversed_dims = [], [], [], []
    dynamic: dict[int, Any] = {}
    dropped: list[int] = []
    advanced: dict[int, Any] = {}
    for axis, (i, n) in enumerate(zip(entries, shape)):
        start, limit, stride = 0, n, 1
        if isinstance(i, slice):
            begin, end, step = i.indices(n)
            count = len(range(begin, end, step))
            if step < 0:
                reversed_dims.append(axis)
                begin, step = n - 1 - begin, -step
            start, stride = begin, step
            limit = begin + (count - 1) * step + 1 if count else begin
        elif _is_int_scalar(i) and not has_arrays:
            start = _check_static(int(i), n, axis)
            limit = start + 1
            dropped.append(axis)
        elif isinstance(i, Tracer) and i.ndim == 0 and not has_arrays:
            dynamic[axis] = _normalize_array(i, n, axis)
            dropped.append(axis)
        elif _is_int_scalar(i) or _is_index_array(i):
            if _is_int_scalar(i):
                _check_static(int(i), n, axis)
            advanced[axis] = _normalize_array(i, n, axis)
        else:
            raise IndexError(at_user_line(f"invalid index {i!r} (only integers, slices, None, "
                                          "'...' and integer arrays are valid indices)"))
        starts.append(start)
        limits.append(limit)
        strides.append(stride)
    y = lax.rev(x, reversed_dims)
    if (starts, limits, strides) != ([0] * len(shape), list(shape), [1] * len(shape)):
        y = lax.slice(y, starts, limits, strides)
    if dynamic:
        sizes = list(shape_of(y))
        index_starts = [dynamic.get(a, np.zeros((), np.int64)) for a in range(len(sizes))]
        for a in dynamic:
            sizes[a] = 1
        y = lax.dynamic_slice(y, index_starts, sizes, allow_negative_indices=False)
    if dropped:
        y = lax.reshape(y, [d for a, d in enumerate(shape_of(y)) if a not in dropped])
    if advanced:
        y = _gather(y, advanced)
    if new_axes:
        out_shape = list(shape_of(y))
        for k in new_axes:
            out_shape.insert(k, 1)
        y = lax.reshape(y, out_shape)
    return wrap(y)


def _gather(y, advanced: dict[int, Any]):
    axes = sorted(advanced)
    arrays = broadcast_arrays(*[advanced[a] for a in axes])
    batch = tuple(shape_of(arrays[0]))
    stacked = [lax.reshape(a, batch + (1,)) for a in arrays]
    indices = lax.concatenate(stacked, len(batch)) if len(stacked) > 1 else stacked[0]
    shape = tuple(shape_of(y))
    rest = [a for a in range(len(shape)) if a not in advanced]
    consecutive = axes == list(range(axes[0], axes[0] + len(axes)))
    position = axes[0] if consecutive else 0
    offset_dims = [k if k < position else k + len(batch) for k in range(len(rest))]
    numbers = lax.GatherDimensionNumbers(offset_dims=tuple(offset_dims),
                                         collapsed_slice_dims=tuple(axes),
                                         start_index_map=tuple(axes))
    # The indices are in range (checked eagerly, clamped by XLA's gather when traced).
    return lax.gather(y, indices, numbers,
                      [1 if a in advanced else shape[a] for a in range(len(shape))],
                      mode="promise_in_bounds")


def _index_entries(x: Any, index: Any) -> list:
    """The entries of `index` for x, one per axis (None and '...' expanded)."""
    return _expand(index, len(shape_of(x)))


def _clip_entry(i: Any, n: int) -> Any:
    """An int or integer-array index wrapped like Python's, then clamped into [0, n)."""
    if _is_int_scalar(i):
        return min(max(int(i) + n if i < 0 else int(i), 0), n - 1)
    index = _normalize_unchecked(i, n)
    if isinstance(index, Tracer):
        return lax.clamp(0, index, n - 1)
    return np.clip(index, 0, n - 1)


def _shift_entry(i: Any, n: int) -> Any:
    """The index into the axis padded by one slot each side: in-range entries (negative ones
    wrapped like Python's) move up by one, out-of-range ones land on a pad slot."""
    if _is_int_scalar(i):
        i = int(i)
        return (i % n) + 1 if -n <= i < n else 0
    index = _normalize_unchecked(i, n)
    if isinstance(index, Tracer):
        return lax.add(lax.clamp(-1, index, n), 1)
    return np.clip(index, -1, n) + 1


def _normalize_unchecked(i: Any, n: int) -> Any:
    """An integer index array with negative entries wrapped (index + n), not bounds-checked."""
    if isinstance(i, Tracer):
        if i.dtype.kind not in "iu":
            raise IndexError(at_user_line(f"arrays used as indices must be of integer type, "
                                          f"got {i.dtype}"))
        zero = lax.full(i.shape, 0, i.dtype)
        return lax.select(lax.lt(i, zero), lax.add(i, lax.full(i.shape, n, i.dtype)), i)
    index = np.asarray(i)
    if index.dtype.kind not in "iu":
        raise IndexError(at_user_line(f"arrays used as indices must be of integer type, got "
                                      f"{index.dtype}"))
    index = index.astype(np.int64)
    return np.where(index < 0, index + n, index)


def _is_point_index(i: Any) -> bool:
    return _is_int_scalar(i) or _is_index_array(i)


def _padded_take(x: Any, index: Any, fill: Any) -> Any:
    """x[index] where out-of-range integer indices read `fill`: every axis indexed by an
    integer is padded with `fill` on both sides, and the index shifted onto the padding."""
    entries = _index_entries(x, index)
    shape = tuple(shape_of(x))
    axes = [a for a, i in enumerate([e for e in entries if e is not None]) if _is_point_index(i)]
    config = [(1, 1, 0) if a in axes else (0, 0, 0) for a in range(len(shape))]
    padded = lax.pad(x, np.asarray(fill, dtype_of(x)), config) if axes else x
    return getitem(padded, _map_point_entries(entries, shape, _shift_entry))


def _map_point_entries(entries: list, shape: tuple, fn) -> tuple:
    """`entries` with fn(entry, size of its axis) applied to each integer (point) entry."""
    out, axis = [], 0
    for i in entries:
        if i is None:       # a new axis: it indexes no axis of x
            out.append(i)
            continue
        out.append(fn(i, shape[axis]) if _is_point_index(i) else i)
        axis += 1
    return tuple(out)


def _clipped_index(x: Any, index: Any) -> tuple:
    """`index` with its integer entries clamped into range (JAX's mode='clip')."""
    return _map_point_entries(_index_entries(x, index), tuple(shape_of(x)), _clip_entry)


def _fill_value(dtype: np.dtype, fill_value: Any) -> np.ndarray:
    if fill_value is not None:
        return np.asarray(fill_value, dtype)
    return lax._fill_default(np.dtype(dtype))


class _IndexedRef:
    """`x.at[index]`: JAX's functional reads and updates of the elements x[index] names.

    Out-of-range integer indices: updates drop them (mode None, 'drop', 'fill' or
    'promise_in_bounds') or clamp them into range (mode='clip'); `get` clamps them (mode
    None, 'clip', 'promise_in_bounds') or reads `fill_value` (mode 'fill' or 'drop'; NaN,
    the integer minimum or True by default). Negative indices count from the end, as in
    Python."""

    def __init__(self, array: Any, index: Any):
        self.array = array
        self.index = index

    def get(self, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode=None, fill_value=None):
        """x[index], out-of-range indices handled by `mode` (default: clamped)."""
        if _gather_mode(mode) == lax.GatherScatterMode.FILL_OR_DROP:
            return _padded_take(self.array, self.index,
                                _fill_value(dtype_of(self.array), fill_value))
        return getitem(self.array, _clipped_index(self.array, self.index))

    def _scatter(self, values: Any, combiner, mode):
        x = self.array
        shape = tuple(shape_of(x))
        size = int(np.prod(shape, dtype=np.int64))
        iota = lax.reshape(lax.iota(np.int64, size), shape)
        if lax.GatherScatterMode.from_any(mode) == lax.GatherScatterMode.CLIP:
            positions = getitem(iota, _clipped_index(x, self.index))
        else:
            # Out-of-range indices read position `size`, which the scatter drops.
            positions = _padded_take(iota, self.index, size)
        pshape = tuple(shape_of(positions))
        (values,) = promote(values, dtype=dtype_of(x))
        from flowjit.numpy._promote import broadcast_to
        values = broadcast_to(values, pshape)
        count = int(np.prod(pshape, dtype=np.int64))
        numbers = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                              scatter_dims_to_operand_dims=(0,))
        flat = lax._scatter(lax.reshape(x, (size,)), lax.reshape(positions, (count, 1)),
                            lax.reshape(values, (count,)), numbers, combiner,
                            "promise_in_bounds")
        return wrap(lax.reshape(flat, shape))

    def set(self, values, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode=None):
        """x with x[index] = values (out-of-range indices dropped, or clamped: mode='clip')."""
        return self._scatter(values, None, mode)

    def add(self, values, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode=None):
        """x with x[index] += values (repeated indices accumulate)."""
        return self._scatter(values, "add", mode)

    def subtract(self, values, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode=None):
        """x with x[index] -= values."""
        from flowjit.numpy import negative
        return self._scatter(negative(values), "add", mode)

    def multiply(self, values, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode=None):
        """x with x[index] *= values."""
        return self._scatter(values, "multiply", mode)

    mul = multiply

    def min(self, values, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode=None):
        """x with x[index] = minimum(x[index], values)."""
        return self._scatter(values, "minimum", mode)

    def max(self, values, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode=None):
        """x with x[index] = maximum(x[index], values)."""
        return self._scatter(values, "maximum", mode)


def _gather_mode(mode) -> lax.GatherScatterMode:
    """`get`'s mode: None clamps (as jnp indexing does); 'fill' and 'drop' fill."""
    if mode is None:
        return lax.GatherScatterMode.PROMISE_IN_BOUNDS
    return lax.GatherScatterMode.from_any(mode)


class IndexUpdateHelper:
    """`x.at[idx]`: functional updates that return a new array, as in JAX."""

    def __init__(self, array: Any):
        self.array = array

    def __getitem__(self, index: Any) -> _IndexedRef:
        return _IndexedRef(self.array, index)


__all__ = ["getitem", "IndexUpdateHelper", "as_array"]
