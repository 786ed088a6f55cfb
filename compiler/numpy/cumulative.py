"""Cumulative reductions with jax.numpy's names, signatures and dtype rules: `cumsum`,
`cumprod`, `nancumsum`, `nancumprod`, `cumulative_sum`, `cumulative_prod`.

Each is one `flowjit.lax` cumulative op (a prefix reduce-window, run in one pass) between
jax.numpy's dtype conversions."""
from __future__ import annotations

from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.config import canonicalize_dtype
from flowjit.numpy._promote import dtype_of, wrap
from flowjit.numpy.reductions import normalize_axis
from flowjit.source_info import at_user_line


def _promoted_integer(dtype: np.dtype) -> np.dtype:
    """bool and small integers widen to the default integer of their signedness."""
    if dtype == np.bool_ or (dtype.kind == "i" and dtype.itemsize < 8):
        return canonicalize_dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return canonicalize_dtype(np.uint64)
    return dtype


def _cumulative(name: str, reduction, a, axis: Optional[int], dtype, out=None,
                fill_nan: bool = False, fill_value=0, promote_integers: bool = False):
    """jax.numpy's `_cumulative_reduction`: flatten when axis is None, fill NaNs if asked,
    compute in the requested (or promoted) dtype."""
    if out is not None:
        raise NotImplementedError(f"The 'out' argument to {name} is not supported")
    from flowjit import numpy as fnp
    a = fnp.asarray(a)
    if axis is None or a.ndim == 0:
        a = fnp.ravel(a)
    axis = normalize_axis(0 if axis is None else axis, a.ndim)
    if fill_nan:
        a = fnp.where(fnp.isnan(a), np.asarray(fill_value, dtype_of(a)), a)
    current = dtype_of(a)
    if dtype is None:
        result = (_promoted_integer(current) if promote_integers or current == np.bool_
                  else current)
        compute = result
    elif np.dtype(dtype) == np.bool_:
        result = np.dtype(np.bool_)
        if current != np.bool_:
            a = fnp.not_equal(a, 0)
        compute = _promoted_integer(result)
    else:
        result = compute = canonicalize_dtype(np.dtype(dtype))
    a = lax.convert_element_type(a, compute)
    return wrap(lax.convert_element_type(reduction(a, axis), result))


def cumsum(a, axis: Optional[int] = None, dtype=None, out=None):
    """Cumulative sum of elements along an axis (flattened when axis is None)."""
    return _cumulative("cumsum", lax.cumsum, a, axis, dtype, out)


def cumprod(a, axis: Optional[int] = None, dtype=None, out=None):
    """Cumulative product of elements along an axis (flattened when axis is None)."""
    return _cumulative("cumprod", lax.cumprod, a, axis, dtype, out)


def nancumsum(a, axis: Optional[int] = None, dtype=None, out=None):
    """Cumulative sum, NaNs counted as zero."""
    return _cumulative("nancumsum", lax.cumsum, a, axis, dtype, out, fill_nan=True,
                       fill_value=0)


def nancumprod(a, axis: Optional[int] = None, dtype=None, out=None):
    """Cumulative product, NaNs counted as one."""
    return _cumulative("nancumprod", lax.cumprod, a, axis, dtype, out, fill_nan=True,
                       fill_value=1)


def _array_api_cumulative(name: str, reduction, identity, x, axis, dtype,
                          include_initial: bool):
    from flowjit import numpy as fnp
    x = fnp.asarray(x)
    if x.ndim == 0:
        raise ValueError(at_user_line(f"{name} does not support scalars"))
    if axis is None:
        if x.ndim > 1:
            raise ValueError(at_user_line(
                f"The input array has rank {x.ndim}, however axis was not set to an explicit "
                "value. The axis argument is only optional for one-dimensional arrays."))
        axis = 0
    axis = normalize_axis(axis, x.ndim)
    out = _cumulative(name, reduction, x, axis, dtype, promote_integers=True)
    if include_initial:
        shape = list(out.shape)
        shape[axis] = 1
        first = fnp.full(shape, identity, dtype=out.dtype)
        out = fnp.concatenate([first, out], axis=axis)
    return out


def cumulative_sum(x, /, *, axis: Optional[int] = None, dtype=None,
                   include_initial: bool = False):
    """Cumulative sum (the array API's): axis is required above rank 1; include_initial
    puts a zero first."""
    return _array_api_cumulative("cumulative_sum", lax.cumsum, 0, x, axis, dtype,
                                 include_initial)


def cumulative_prod(x, /, *, axis: Optional[int] = None, dtype=None,
                    include_initial: bool = False):
    """Cumulative product (the array API's): include_initial puts a one first."""
    return _array_api_cumulative("cumulative_prod", lax.cumprod, 1, x, axis, dtype,
                                 include_initial)
