"""Reductions with numpy's `axis` / `keepdims` / dtype rules."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import builtins

import numpy as np

from flowjit import lax
from flowjit.config import canonicalize_dtype
from flowjit.core import bind
from flowjit.numpy._promote import (dtype_of, inexact_dtype, is_float_dtype, promote,
                                    shape_of, wrap)
from flowjit.source_info import at_user_line
from flowjit.ir import dtypes
from flowjit.ir.errors import ShapeError

Axis = Optional[Union[int, Sequence[int]]]


def normalize_axis(axis: int, ndim: int) -> int:
    """`axis` in [0, ndim); ShapeError naming the axis and rank otherwise."""
    if not -ndim <= axis < builtins.max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ShapeError(at_user_line(f"axis {axis} is out of bounds for an array of "
                                      f"dimension {ndim}"))
    return axis % ndim if ndim else 0


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = tuple(sorted(normalize_axis(int(a), ndim) for a in axes))
    if len(set(out)) != len(out):
        raise ShapeError(at_user_line(f"repeated axis in {axis}"))
    return out


def _keep(x, axes: tuple[int, ...], keepdims: bool, in_shape):
    if not keepdims:
        return x
    return lax.reshape(x, [1 if i in axes else d for i, d in enumerate(in_shape)])


def _reduce(x, axis: Axis, keepdims: bool, opcode: str, init, dtype=None):
    (x,) = promote(x, dtype=dtype) if dtype is not None else (x,)
    shape = shape_of(x)
    axes = normalize_axes(axis, len(shape))
    init_value = np.asarray(init, dtype=dtype_of(x))
    out = lax.reduce(x, init_value, opcode, axes)
    return wrap(_keep(out, axes, keepdims, shape))


def _sum_dtype(x, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    dt = dtype_of(x)
    if dt.kind == "b" or (dt.kind == "i" and dt.itemsize < 8):
        return np.dtype(np.int64)
    if dt.kind == "u" and dt.itemsize < 8:
        return np.dtype(np.uint64)
    return dt


def sum(a, axis: Axis = None, dtype=None, keepdims: bool = False):  # noqa: A001
    return _reduce(a, axis, keepdims, "add", 0, _sum_dtype(a, dtype))


def prod(a, axis: Axis = None, dtype=None, keepdims: bool = False):
    return _reduce(a, axis, keepdims, "multiply", 1, _sum_dtype(a, dtype))


def _identity_for(op: str, dt: np.dtype):
    if is_float_dtype(dt):
        return -np.inf if op == "maximum" else np.inf
    if dt.kind == "b":
        return op == "minimum"
    info = np.iinfo(dt)
    return info.min if op == "maximum" else info.max


def _extreme(op: str, a, axis, keepdims):
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape))
    if builtins.any(shape[i] == 0 for i in axes):
        raise ShapeError(at_user_line(f"zero-size array to reduction operation {op} which has "
                                      f"no identity (shape {tuple(shape)})"))
    return _reduce(a, axis, keepdims, op, _identity_for(op, dtype_of(a)))


def max(a, axis: Axis = None, keepdims: bool = False):  # noqa: A001
    return _extreme("maximum", a, axis, keepdims)


def min(a, axis: Axis = None, keepdims: bool = False):  # noqa: A001
    return _extreme("minimum", a, axis, keepdims)


amax, amin = max, min


def any(a, axis: Axis = None, keepdims: bool = False):  # noqa: A001
    return _reduce(a, axis, keepdims, "or", False, np.bool_)


def all(a, axis: Axis = None, keepdims: bool = False):  # noqa: A001
    return _reduce(a, axis, keepdims, "and", True, np.bool_)


def _count(shape, axes) -> int:
    return int(np.prod([shape[i] for i in axes], dtype=np.int64))


def _mean_types(a, dtype) -> tuple[np.dtype, np.dtype]:
    """(result dtype, dtype computed in): ints become the default float (float32; float64
    with x64), f16/bf16 are computed in f32, as JAX does."""
    dt = canonicalize_dtype(dtype) if dtype is not None else inexact_dtype(a)
    wide = np.dtype(np.float32) if dt.itemsize < 4 and is_float_dtype(dt) else dt
    return dt, wide


def mean(a, axis: Axis = None, dtype=None, keepdims: bool = False):
    dt, wide = _mean_types(a, dtype)
    shape = shape_of(a)
    total = sum(a, axis, wide, keepdims)
    n = _count(shape, normalize_axes(axis, len(shape)))
    return wrap(lax.convert_element_type(lax.div(total, np.asarray(n, wide)), dt))


def var(a, axis: Axis = None, dtype=None, ddof: int = 0, keepdims: bool = False):
    dt, wide = _mean_types(a, dtype)
    (a,) = promote(a, dtype=wide)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape))
    centered = lax.sub(a, _broadcast_back(mean(a, axes, wide, True), shape))
    n = _count(shape, axes) - ddof
    squares = sum(lax.mul(centered, centered), axes, wide, keepdims)
    return wrap(lax.convert_element_type(lax.div(squares, np.asarray(n, wide)), dt))


def std(a, axis: Axis = None, dtype=None, ddof: int = 0, keepdims: bool = False):
    return wrap(lax.sqrt(var(a, axis, dtype, ddof, keepdims)))


def _broadcast_back(x, shape):
    return lax.broadcast_in_dim(x, shape, list(range(len(shape))))


def _arg_extreme(a, axis: Optional[int], keepdims: bool, direction: str):
    """argmax/argmin as one variadic reduce over (value, index), first index on ties."""
    if axis is None:
        from flowjit.numpy.shape_ops import ravel
        a, axis = ravel(a), 0
    shape = shape_of(a)
    axis = normalize_axis(axis, len(shape))
    if shape[axis] == 0:
        raise ShapeError(at_user_line("attempt to get argmax/argmin of an empty sequence"))
    dt = dtype_of(a)
    index_dtype = canonicalize_dtype(np.int64)   # int32 unless x64 is enabled, as JAX
    indices = lax.broadcasted_iota(index_dtype, shape, axis)
    comp = _arg_reducer(dtypes.from_numpy(dt), direction, [a, indices])
    init_value = np.asarray(_identity_for("maximum" if direction == "GT" else "minimum", dt),
                            dt)
    value_out, index_out = bind("reduce", [a, indices, init_value, np.asarray(0, index_dtype)],
                                {"dimensions": (axis,)}, {"to_apply": comp})
    return wrap(_keep(index_out, (axis,), keepdims, shape))


def _arg_reducer(dtype: dtypes.DType, direction: str, operands):
    """(v0, i0, v1, i1) -> the pair with the larger (GT) / smaller (LT) value; NaN wins;
    on ties the smaller index wins, as numpy's argmax does."""
    from flowjit.core import _innermost
    from flowjit.ir.builder import Builder, NameTable
    from flowjit.ir.shapes import ArrayShape
    trace = _innermost(operands)
    names = trace.names if trace is not None else NameTable()
    b = Builder(f"arg{'max' if direction == 'GT' else 'min'}_reducer", names)
    index_type = dtypes.from_numpy(canonicalize_dtype(np.int64))
    vs, is_ = ArrayShape(dtype, ()), ArrayShape(index_type, ())
    v0, i0 = b.parameter(0, vs, "value_acc"), b.parameter(1, is_, "index_acc")
    v1, i1 = b.parameter(2, vs, "value"), b.parameter(3, is_, "index")
    better = b.add("compare", [v0, v1], {"direction": direction})
    equal = b.add("compare", [v0, v1], {"direction": "EQ"})
    if dtype.is_float:
        nan0 = b.add("compare", [v0, v0], {"direction": "NE"})
        nan1 = b.add("compare", [v1, v1], {"direction": "NE"})
        better = b.add("or", [better, nan0])
        not_nan0 = b.add("not", [nan0])
        equal = b.add("or", [equal, b.add("and", [nan0, nan1])])
        take1 = b.add("and", [nan1, not_nan0])
    lower = b.add("compare", [i0, i1], {"direction": "LT"})
    keep0 = b.add("or", [better, b.add("and", [equal, lower])])
    if dtype.is_float:
        keep0 = b.add("and", [keep0, b.add("not", [take1])])
    value = b.add("select", [keep0, v0, v1])
    index = b.add("select", [keep0, i0, i1])
    comp = b.finish(b.add("tuple", [value, index]))
    if trace is not None:
        trace.add_computation(comp)
    return comp


def argmax(a, axis: Optional[int] = None, keepdims: bool = False):
    return _arg_extreme(a, axis, keepdims, "GT")


def argmin(a, axis: Optional[int] = None, keepdims: bool = False):
    return _arg_extreme(a, axis, keepdims, "LT")
