"""Everyday array functions with numpy's names (split, tril, diagonal, roll, kron, cross,
diff, ...), composed of existing primitives so they trace, fuse and differentiate."""
from __future__ import annotations

from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.numpy._promote import (broadcast_arrays, broadcast_to, dtype_of, promote,
                                    shape_of, wrap)
from flowjit.numpy.reductions import normalize_axis, sum as _sum
from flowjit.numpy.shape_ops import concatenate, moveaxis, ravel, reshape, stack
from flowjit.source_info import at_user_line
from flowjit.ir.errors import ShapeError


def _slice_along(a, axis: int, start: int, stop: int):
    shape = tuple(shape_of(a))
    starts = [0] * len(shape)
    limits = list(shape)
    starts[axis], limits[axis] = start, stop
    return wrap(lax.slice(a, starts, limits))


def _split_points(size: int, sections, name: str, even: bool) -> list[int]:
    if isinstance(sections, (int, np.integer)):
        count = int(sections)
        if count <= 0:
            raise ValueError(f"{name}: number of sections must be larger than 0")
        if even and size % count:
            raise ValueError(f"{name}: array of size {size} does not split into {count} "
                             f"equal sections")
        small, extra = divmod(size, count)
        points, at = [], 0
        for k in range(count - 1):   # the first `extra` sections get one more (numpy)
            at += small + (k < extra)
            points.append(at)
        return points
    return [int(p) for p in np.asarray(sections).ravel()]


def _split(ary, indices_or_sections, axis: int, name: str, even: bool) -> list:
    shape = tuple(shape_of(ary))
    axis = normalize_axis(axis, len(shape))
    size = shape[axis]
    points = _split_points(size, indices_or_sections, name, even)
    bounds = [0] + [min(max(p + size if p < 0 else p, 0), size) for p in points] + [size]
    return [_slice_along(ary, axis, lo, max(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]


def split(ary, indices_or_sections, axis: int = 0) -> list:
    """numpy.split: equal sections (an error when they are not) or split points."""
    return _split(ary, indices_or_sections, axis, "split", even=True)


def array_split(ary, indices_or_sections, axis: int = 0) -> list:
    """numpy.array_split: like split, but sections may differ in size by one."""
    return _split(ary, indices_or_sections, axis, "array_split", even=False)


def _triangle(m, k: int, keep_lower: bool, name: str):
    shape = tuple(shape_of(m))
    if len(shape) < 2:
        raise ShapeError(at_user_line(f"{name} needs an array of at least 2 dims, got shape "
                                      f"{shape}"))
    rows = lax.broadcasted_iota(np.int32, shape, len(shape) - 2)
    cols = lax.broadcasted_iota(np.int32, shape, len(shape) - 1)
    shifted = lax.add(rows, lax.broadcast_in_dim(np.int32(k), shape, []))
    keep = lax.le(cols, shifted) if keep_lower else lax.ge(cols, shifted)
    zero = lax.broadcast_in_dim(np.zeros((), dtype_of(m)), shape, [])
    return wrap(lax.select(keep, m, zero))


def tril(m, k: int = 0):
    """Lower triangle of the last two dims (j <= i + k); zeros above."""
    return _triangle(m, k, True, "tril")


def triu(m, k: int = 0):
    """Upper triangle of the last two dims (j >= i + k); zeros below."""
    return _triangle(m, k, False, "triu")


def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The `offset` diagonal of dims (axis1, axis2), as a new last dim: a strided slice of
    those two dims flattened (element (i, i + offset) sits at i * (m + 1) + offset)."""
    shape = tuple(shape_of(a))
    if len(shape) < 2:
        raise ShapeError(at_user_line(f"diagonal needs an array of at least 2 dims, got "
                                      f"shape {shape}"))
    ax1, ax2 = normalize_axis(axis1, len(shape)), normalize_axis(axis2, len(shape))
    if ax1 == ax2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    rest = [d for d in range(len(shape)) if d not in (ax1, ax2)]
    x = lax.transpose(a, rest + [ax1, ax2])
    n, m = shape[ax1], shape[ax2]
    batch = tuple(shape[d] for d in rest)
    count = max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))
    if count == 0:
        return wrap(lax.broadcast_in_dim(np.zeros((), dtype_of(a)), batch + (0,), []))
    first = offset if offset >= 0 else -offset * m
    flat = lax.reshape(x, batch + (n * m,))
    out = lax.slice(flat, [0] * len(batch) + [first],
                    list(batch) + [first + (count - 1) * (m + 1) + 1],
                    [1] * len(batch) + [m + 1])
    return wrap(out)


def diag(v, k: int = 0):
    """A 1-D array's values on the k-th diagonal of a square matrix, or a 2-D array's k-th
    diagonal."""
    shape = tuple(shape_of(v))
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ShapeError(at_user_line(f"diag needs a 1-D or 2-D array, got shape {shape}"))
    n = shape[0] + abs(k)
    padded = lax.pad(v, np.zeros((), dtype_of(v)), [(0, abs(k), 0)])
    # element (i, i + k) holds v[i] (k >= 0); (j - k, j) holds v[j] (k < 0)
    values = lax.broadcast_in_dim(padded, (n, n), [0] if k >= 0 else [1])
    rows = lax.broadcasted_iota(np.int32, (n, n), 0)
    cols = lax.broadcasted_iota(np.int32, (n, n), 1)
    on = lax.eq(lax.sub(cols, rows), lax.broadcast_in_dim(np.int32(k), (n, n), []))
    return wrap(lax.select(on, values, lax.broadcast_in_dim(np.zeros((), dtype_of(v)),
                                                            (n, n), [])))


def trace(a, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None, out=None):
    """Sum of the `offset` diagonal of dims (axis1, axis2)."""
    if out is not None:
        raise NotImplementedError("trace: out= is not supported (arrays are immutable)")
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def _roll_one(a, shift, axis: int):
    size = tuple(shape_of(a))[axis]
    if size == 0:
        return a
    if isinstance(shift, (int, np.integer)):
        s = int(shift) % size
        if s == 0:
            return a
        return concatenate([_slice_along(a, axis, size - s, size),
                            _slice_along(a, axis, 0, size - s)], axis)
    # A traced shift: a window of [a, a] starting at (size - shift) mod size.
    shift = lax.convert_element_type(shift, np.int32)
    n = np.int32(size)
    start = lax.rem(lax.sub(n, lax.rem(shift, n)), n)
    start = lax.select(lax.lt(start, np.int32(0)), lax.add(start, n), start)
    doubled = concatenate([a, a], axis)
    starts = [np.int32(0)] * len(shape_of(a))
    starts[axis] = start
    return wrap(lax.dynamic_slice(doubled, starts, tuple(shape_of(a))))


def roll(a, shift, axis=None):
    """numpy.roll: elements shifted along `axis` (the flattened array when None), wrapping
    around; the shift may be traced."""
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), tuple(shape_of(a)))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    shifts = shift if isinstance(shift, (tuple, list)) else [shift] * len(axes)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(axes)} axes")
    ndim = len(shape_of(a))
    for s, ax in zip(shifts, axes):
        a = _roll_one(a, s, normalize_axis(int(ax), ndim))
    return wrap(a)


def meshgrid(*xi, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> list:
    """Coordinate arrays from 1-D vectors ("xy": the first two dims swapped, as numpy)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    vectors = [ravel(x) for x in xi]
    sizes = [shape_of(v)[0] for v in vectors]
    if indexing == "xy" and len(vectors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for k, v in enumerate(vectors):
        dim = k
        if indexing == "xy" and len(vectors) >= 2 and k < 2:
            dim = 1 - k
        if sparse:
            shape = [1] * len(vectors)
            shape[dim] = sizes[dim]
            out.append(wrap(lax.reshape(v, shape)))
        else:
            out.append(wrap(lax.broadcast_in_dim(v, sizes, [dim])))
    return out


def kron(a, b):
    """Kronecker product: block (i, j, ...) is a[i, j, ...] * b."""
    a, b = promote(a, b)
    sa, sb = tuple(shape_of(a)), tuple(shape_of(b))
    rank = max(len(sa), len(sb))
    sa, sb = (1,) * (rank - len(sa)) + sa, (1,) * (rank - len(sb)) + sb
    a = lax.reshape(a, [d for n in sa for d in (n, 1)])
    b = lax.reshape(b, [d for n in sb for d in (1, n)])
    product = lax.mul(*broadcast_arrays(a, b))
    return wrap(lax.reshape(product, [x * y for x, y in zip(sa, sb)]))


def _component(v, k: int):
    return wrap(lax.reshape(_slice_along(v, len(shape_of(v)) - 1, k, k + 1),
                            tuple(shape_of(v))[:-1]))


def cross(a, b, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: Optional[int] = None):
    """Cross product of 2- or 3-vectors along `axisa`/`axisb` (a scalar per pair for
    2-vectors), broadcast over the other dims, the result's vectors along `axisc`."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = promote(a, b)
    a = moveaxis(a, axisa, -1)
    b = moveaxis(b, axisb, -1)
    na, nb = shape_of(a)[-1], shape_of(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ShapeError(at_user_line(f"cross: vectors must have 2 or 3 components, got "
                                      f"{na} and {nb}"))
    a0, a1 = _component(a, 0), _component(a, 1)
    b0, b1 = _component(b, 0), _component(b, 1)
    zero = lambda like: np.zeros((), dtype_of(like))  # noqa: E731
    a2 = _component(a, 2) if na == 3 else zero(a0)
    b2 = _component(b, 2) if nb == 3 else zero(b0)
    if na == nb == 2:
        return a0 * b1 - a1 * b0
    c = [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0]
    c = broadcast_arrays(*c)
    return stack(c, axis=normalize_axis(axisc, len(shape_of(c[0])) + 1))


def diff(a, n: int = 1, axis: int = -1, prepend=None, append=None):
    """n-th discrete difference along `axis` (`!=` for booleans, as numpy)."""
    shape = tuple(shape_of(a))
    axis = normalize_axis(axis, len(shape))
    pieces = []
    for extra in (prepend, None, append):
        if extra is None:
            continue
        extra_shape = tuple(shape_of(extra))
        if len(extra_shape) == 0:
            extra_shape = shape[:axis] + (1,) + shape[axis + 1:]
            extra = broadcast_to(extra, extra_shape)
        pieces.append(extra)
    if pieces:
        parts = ([pieces.pop(0)] if prepend is not None else []) + [a] + pieces
        a = concatenate(parts, axis)
    for _ in range(n):
        size = tuple(shape_of(a))[axis]
        hi, lo = _slice_along(a, axis, 1, size), _slice_along(a, axis, 0, max(size - 1, 0))
        a = wrap(lax.ne(hi, lo)) if dtype_of(a).kind == "b" else hi - lo
    return wrap(a)
