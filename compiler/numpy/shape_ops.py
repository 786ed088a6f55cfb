"""Shape manipulation with numpy's names: reshape, transpose, concatenate, stack, ..."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from flowjit import lax
from flowjit.numpy._promote import broadcast_to as _broadcast_to
from flowjit.numpy._promote import dtype_of, promote, shape_of, wrap
from flowjit.numpy.reductions import normalize_axes, normalize_axis
from flowjit.source_info import at_user_line
from flowjit.ir.errors import ShapeError


def reshape(a, newshape, order: str = "C"):
    if order != "C":
        raise NotImplementedError("only C order reshapes are supported")
    shape = tuple(shape_of(a))
    newshape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    size = int(np.prod(shape, dtype=np.int64))
    if newshape.count(-1) > 1:
        raise ShapeError(at_user_line("can only specify one unknown dimension"))
    if -1 in newshape:
        known = int(np.prod([d for d in newshape if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ShapeError(at_user_line(f"cannot reshape array of shape {shape} into shape "
                                          f"{newshape}"))
        newshape = tuple(size // known if d == -1 else d for d in newshape)
    if int(np.prod(newshape, dtype=np.int64)) != size:
        raise ShapeError(at_user_line(f"cannot reshape array of size {size} (shape {shape}) "
                                      f"into shape {newshape}"))
    return wrap(lax.reshape(a, newshape))


def ravel(a):
    return reshape(a, (-1,))


def transpose(a, axes: Optional[Sequence[int]] = None):
    ndim = len(shape_of(a))
    if axes is None:
        axes = tuple(reversed(range(ndim)))
    axes = tuple(normalize_axis(int(x), ndim) for x in axes)
    if sorted(axes) != list(range(ndim)):
        raise ShapeError(at_user_line(f"axes {axes} don't match array of dimension {ndim}"))
    return wrap(lax.transpose(a, axes))


def swapaxes(a, axis1: int, axis2: int):
    ndim = len(shape_of(a))
    perm = list(range(ndim))
    i, j = normalize_axis(axis1, ndim), normalize_axis(axis2, ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return wrap(lax.transpose(a, perm))


def moveaxis(a, source: int, destination: int):
    ndim = len(shape_of(a))
    src, dst = normalize_axis(source, ndim), normalize_axis(destination, ndim)
    perm = [d for d in range(ndim) if d != src]
    perm.insert(dst, src)
    return wrap(lax.transpose(a, perm))


def expand_dims(a, axis):
    shape = list(shape_of(a))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = len(shape) + len(axes)
    axes = sorted(normalize_axis(x, out_ndim) for x in axes)
    for x in axes:
        shape.insert(x, 1)
    return wrap(lax.reshape(a, shape))


def squeeze(a, axis=None):
    shape = shape_of(a)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = normalize_axes(axis, len(shape))
        bad = [i for i in axes if shape[i] != 1]
        if bad:
            raise ShapeError(at_user_line(f"cannot select an axis to squeeze out which has "
                                          f"size not equal to one (shape {tuple(shape)})"))
    return wrap(lax.reshape(a, [d for i, d in enumerate(shape) if i not in axes]))


def broadcast_to(a, shape):
    return wrap(_broadcast_to(a, tuple(shape)))


def concatenate(arrays: Sequence[Any], axis: Optional[int] = 0):
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    arrays = promote(*arrays)
    shapes = [tuple(shape_of(a)) for a in arrays]
    ndim = len(shapes[0])
    if ndim == 0:
        raise ShapeError(at_user_line("zero-dimensional arrays cannot be concatenated"))
    axis = normalize_axis(axis, ndim)
    for s in shapes:
        if len(s) != ndim or any(x != y for i, (x, y) in enumerate(zip(s, shapes[0]))
                                 if i != axis):
            raise ShapeError(at_user_line(
                f"all the input array dimensions except for the concatenation axis must match "
                f"exactly (shapes {', '.join(map(str, shapes))}, axis {axis})"))
    return wrap(lax.concatenate(arrays, axis))


def stack(arrays: Sequence[Any], axis: int = 0):
    shapes = {tuple(shape_of(a)) for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(at_user_line(f"all input arrays must have the same shape, got "
                                      f"{sorted(shapes)}"))
    ndim = len(shapes.pop()) + 1
    axis = normalize_axis(axis, ndim)
    return concatenate([expand_dims(a, axis) for a in arrays], axis)


def hstack(arrays):
    return concatenate(arrays, axis=0 if len(shape_of(arrays[0])) == 1 else 1)


def vstack(arrays):
    return concatenate([a if len(shape_of(a)) > 1 else reshape(a, (1, -1)) for a in arrays], 0)


def flip(a, axis=None):
    return wrap(lax.rev(a, normalize_axes(axis, len(shape_of(a)))))


def pad(array, pad_width, mode: str = "constant", constant_values=0):
    if mode != "constant":
        raise NotImplementedError(f"pad mode {mode!r} (only 'constant')")
    ndim = len(shape_of(array))
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2))
    value = np.asarray(constant_values, dtype=dtype_of(array))
    return wrap(lax.pad(array, value, [(int(lo), int(hi), 0) for lo, hi in widths]))


def tile(a, reps):
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    shape = tuple(shape_of(a))
    shape = (1,) * (len(reps) - len(shape)) + shape
    reps = (1,) * (len(shape) - len(reps)) + reps
    a = lax.reshape(a, shape)
    expanded = [x for pair in zip(reps, shape) for x in pair]
    b = lax.broadcast_in_dim(a, expanded, [2 * i + 1 for i in range(len(shape))])
    return wrap(lax.reshape(b, [r * s for r, s in zip(reps, shape)]))


def repeat(a, repeats: int, axis: Optional[int] = None):
    if axis is None:
        a, axis = ravel(a), 0
    shape = list(shape_of(a))
    axis = normalize_axis(axis, len(shape))
    expanded = shape[:axis + 1] + [repeats] + shape[axis + 1:]
    b = lax.broadcast_in_dim(a, expanded, [d if d <= axis else d + 1 for d in range(len(shape))])
    shape[axis] *= repeats
    return wrap(lax.reshape(b, shape))


def astype(a, dtype):
    return wrap(lax.convert_element_type(a, np.dtype(dtype)))
