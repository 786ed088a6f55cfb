"""Sorting with jax.numpy's names, signatures and results: `sort`, `argsort`, `lexsort`,
`partition`, `argpartition`, `searchsorted`, `unique` (with a static `size`).

Each is `flowjit.lax.sort` / `top_k` as jax.numpy writes it, so ties, NaNs (last) and
-0.0 (equal to 0.0) come out as JAX's do."""
from __future__ import annotations

from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.config import canonicalize_dtype
from flowjit.numpy._promote import dtype_of, is_float_dtype, shape_of, wrap
from flowjit.numpy.reductions import normalize_axis
from flowjit.source_info import at_user_line


def _as_array(a):
    from flowjit import numpy as fnp
    return fnp.asarray(a)


def _unsupported(name: str, kind, order) -> None:
    if kind is not None:
        raise TypeError(f"'kind' argument to {name} is not supported. Use stable=True or "
                        f"stable=False to specify sort stability.")
    if order is not None:
        raise TypeError(f"'order' argument to {name} is not supported.")


def _flat_or_axis(arr, axis):
    from flowjit import numpy as fnp
    if axis is None:
        return fnp.ravel(arr), 0
    return arr, normalize_axis(axis, len(shape_of(arr)))


def _default_int():
    return canonicalize_dtype(np.int64)


def sort(a, axis: Optional[int] = -1, *, kind=None, order=None, stable: bool = True,
         descending: bool = False):
    """A sorted copy of `a` along `axis` (flattened when None); NaNs last."""
    _unsupported("sort", kind, order)
    arr, axis = _flat_or_axis(_as_array(a), axis)
    result = lax.sort(arr, dimension=axis, is_stable=stable)
    return wrap(lax.rev(result, (axis,)) if descending else result)


def argsort(a, axis: Optional[int] = -1, *, kind=None, order=None, stable: bool = True,
            descending: bool = False, dtype=None):
    """Indices that sort `a` along `axis`; a stable descending sort keeps ties in order."""
    _unsupported("argsort", kind, order)
    arr, axis = _flat_or_axis(_as_array(a), axis)
    index_dtype = canonicalize_dtype(np.dtype(dtype)) if dtype is not None else _default_int()
    iota = lax.broadcasted_iota(index_dtype, tuple(shape_of(arr)), axis)
    if descending and stable:
        arr, iota = lax.rev(arr, (axis,)), lax.rev(iota, (axis,))
    _, indices = lax.sort_key_val(arr, iota, dimension=axis, is_stable=stable)
    return wrap(lax.rev(indices, (axis,)) if descending else indices)


def lexsort(keys, axis: int = -1):
    """Indices sorting by the last key, then the one before it, and so on."""
    keys = [_as_array(k) for k in (keys if isinstance(keys, (list, tuple)) else list(keys))]
    if not keys:
        raise TypeError("need sequence of keys with len > 0 in lexsort")
    if len({tuple(shape_of(k)) for k in keys}) > 1:
        raise ValueError("all keys need to be the same shape")
    shape = tuple(shape_of(keys[0]))
    if not shape:
        return wrap(lax.full((), 0, _default_int()))
    axis = normalize_axis(axis, len(shape))
    iota = lax.broadcasted_iota(_default_int(), shape, axis)
    return wrap(lax.sort((*keys[::-1], iota), dimension=axis, num_keys=len(keys))[-1])


def _negated_for_bottom(arr):
    """-(arr) for the smallest values through top_k (unsigned: -(arr + 1), as JAX)."""
    if dtype_of(arr).kind == "u":
        return lax.neg(lax.add(arr, np.asarray(1, dtype_of(arr))))
    return lax.neg(arr)


def _moved_last(a, axis: int):
    arr = _as_array(a)
    ndim = len(shape_of(arr))
    axis = normalize_axis(axis, ndim)
    from flowjit import numpy as fnp
    return fnp.swapaxes(arr, axis, -1), axis


def partition(a, kth: int, axis: int = -1):
    """The kth smallest along `axis` at position kth, smaller ones before it (JAX's order:
    the kth+1 smallest from the largest of them down, then the rest from the largest)."""
    from flowjit import numpy as fnp
    arr, axis = _moved_last(a, axis)
    n = shape_of(arr)[-1]
    kth = normalize_axis(kth, n)
    bottom = lax.neg(lax.top_k(_negated_for_bottom(arr), kth + 1)[0])
    if dtype_of(arr).kind == "u":
        bottom = lax.sub(bottom, np.asarray(1, dtype_of(arr)))
    top = lax.top_k(arr, n - kth - 1)[0]
    out = lax.concatenate([bottom, top], len(shape_of(arr)) - 1)
    return wrap(fnp.swapaxes(out, axis, -1))


def argpartition(a, kth: int, axis: int = -1):
    """Indices that partition `a` as `partition` does (the others in increasing order)."""
    from flowjit import numpy as fnp
    arr, axis = _moved_last(a, axis)
    dims = tuple(shape_of(arr))
    n = dims[-1]
    kth = normalize_axis(kth, n)
    bottom = lax.top_k(_negated_for_bottom(arr), kth + 1)[1]
    # The positions not among the bottom ones, in order: top_k of a 0/1 proxy.
    positions = lax.broadcasted_iota(np.int32, dims[:-1] + (kth + 1, n), len(dims))
    hit = fnp.any(fnp.equal(fnp.expand_dims(bottom, -1), positions), axis=-2)
    proxy = fnp.where(hit, np.float32(0), np.float32(1))
    top = lax.top_k(proxy, n - kth - 1)[1]
    out = lax.concatenate([bottom, top], len(dims) - 1)
    return wrap(fnp.swapaxes(out, axis, -1))


def _sort_less(x, y, or_equal: bool):
    """x < y (x <= y) in the sort's order: -0.0 equals 0.0, NaN above everything."""
    from flowjit import numpy as fnp
    if not is_float_dtype(dtype_of(x)):
        return lax.le(x, y) if or_equal else lax.lt(x, y)
    x_nan, y_nan = fnp.isnan(x), fnp.isnan(y)
    ordered = lax.le(x, y) if or_equal else lax.lt(x, y)
    if or_equal:
        return fnp.logical_or(fnp.logical_and(ordered, fnp.logical_not(x_nan)), y_nan)
    return fnp.logical_or(ordered, fnp.logical_and(y_nan, fnp.logical_not(x_nan)))


_SEARCH_METHODS = ("scan", "scan_unrolled", "sort", "compare_all")


def searchsorted(a, v, side: str = "left", sorter=None, *, method: str = "scan"):
    """Where `v`'s elements would go in the sorted 1-D `a` to keep it sorted: the count of
    `a`'s elements below each (side='left') or not above it (side='right'). Every `method`
    gives JAX's result; all compare each value with every element of `a` here."""
    from flowjit import numpy as fnp
    from flowjit.numpy._promote import result_type
    if side not in ("left", "right"):
        raise ValueError(f"{side!r} is an invalid value for keyword 'side'. "
                         f"Expected one of ['left', 'right'].")
    if method not in _SEARCH_METHODS:
        raise ValueError(f"method={method!r} not recognized; expected one of "
                         f"{list(_SEARCH_METHODS)}")
    a, v = _as_array(a), _as_array(v)
    if len(shape_of(a)) != 1:
        raise ValueError(at_user_line(f"a should be 1-dimensional, got shape "
                                      f"{tuple(shape_of(a))}"))
    if sorter is not None:
        a = fnp.take(a, _as_array(sorter))
    dtype = result_type(a, v)
    a, v = a.astype(dtype), v.astype(dtype)
    n = shape_of(a)[0]
    if n == 0:
        return wrap(fnp.zeros(shape_of(v), np.int32))
    rank = len(shape_of(v))
    wide = tuple(shape_of(v)) + (n,)
    elements = lax.broadcast_in_dim(a, wide, (rank,))
    values = lax.broadcast_in_dim(v, wide, tuple(range(rank)))
    below = _sort_less(elements, values, or_equal=(side == "right"))
    return wrap(fnp.sum(below, axis=-1, dtype=np.int32))


def unique(ar, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis: Optional[int] = None, *, equal_nan: bool = True,
           size: Optional[int] = None, fill_value=None, sorted: bool = True):  # noqa: A002
    """The sorted distinct elements of the flattened `ar`, padded to the static `size`
    with `fill_value` (default: the smallest element), as jax.numpy.unique(size=...)."""
    from flowjit import numpy as fnp
    if size is None:
        raise NotImplementedError("unique without size= has a data-dependent shape: pass a "
                                  "static size (and fill_value) as under jax.jit")
    if return_index or return_inverse or return_counts or axis is not None:
        raise NotImplementedError("unique supports size= alone (no return_index, "
                                  "return_inverse, return_counts or axis)")
    arr = fnp.ravel(_as_array(ar))
    n = shape_of(arr)[0]
    if n == 0:
        raise ValueError("unique with size= of an empty array needs elements to fill with")
    ordered = lax.sort(arr)
    first = fnp.concatenate([fnp.ones((1,), bool), _distinct(ordered, equal_nan)])
    # Distinct elements first (a stable sort by "not first"), then the fill.
    rank = lax.convert_element_type(fnp.logical_not(first), np.int32)
    _, moved = lax.sort_key_val(rank, ordered)
    count = fnp.sum(first, dtype=np.int32)
    fill = ordered[0] if fill_value is None else fnp.asarray(fill_value, dtype_of(arr))
    padded = moved if size <= n else fnp.concatenate(
        [moved, fnp.zeros((size - n,), dtype_of(arr))])
    keep = lax.lt(lax.iota(np.int32, size), count)
    return wrap(fnp.where(keep, padded[:size], fill))


def _distinct(ordered, equal_nan: bool):
    """Whether each sorted element after the first differs from the one before it."""
    from flowjit import numpy as fnp
    after, before = ordered[1:], ordered[:-1]
    differs = fnp.not_equal(after, before)
    if equal_nan and is_float_dtype(dtype_of(ordered)):
        both_nan = fnp.logical_and(fnp.isnan(after), fnp.isnan(before))
        differs = fnp.logical_and(differs, fnp.logical_not(both_nan))
    return differs
