"""Order statistics with jax.numpy's names, signatures and results: `quantile`,
`percentile`, `median` and their NaN-ignoring forms.

As in JAX: the reduced axes are sorted (NaNs last) and each q picks the elements at
floor and ceil of q * (n - 1) (n: the count of non-NaN elements for the nan* forms),
combined by `method`; without nan*, a NaN anywhere in a reduced row makes its result NaN.
"""
from __future__ import annotations

import math
import numpy as np

from flowjit import lax
from flowjit.numpy._promote import dtype_of, inexact_dtype, result_type, shape_of, wrap
from flowjit.numpy.reductions import normalize_axis

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _rows_last(a, axis):
    """(a with the reduced axes flattened into its last dim, the kept dims' shape for a
    keepdims result)."""
    from flowjit import numpy as fnp
    dims = tuple(shape_of(a))
    if axis is None:
        return fnp.ravel(a)[None, :], (1,) * len(dims), ()
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(normalize_axis(x, len(dims)) for x in axes)
    if len(set(axes)) != len(axes):
        raise ValueError("repeated axis")
    kept = [d for d in range(len(dims)) if d not in axes]
    moved = fnp.transpose(a, kept + list(axes))
    kept_dims = tuple(dims[d] for d in kept)
    keep_shape = tuple(1 if d in axes else dims[d] for d in range(len(dims)))
    return (fnp.reshape(moved, (math.prod(kept_dims), math.prod(dims[d] for d in axes))),
            keep_shape, kept_dims)


def _quantile(name: str, a, q, axis, method: str, keepdims: bool, ignore_nan: bool,
              weights=None, out=None, overwrite_input: bool = False):
    from flowjit import numpy as fnp
    if out is not None:
        raise NotImplementedError(f"The 'out' argument to {name} is not supported.")
    if weights is not None:
        raise NotImplementedError(f"{name} with weights (method 'inverted_cdf') is not "
                                  f"supported")
    if method not in _METHODS:
        raise ValueError(f"method can only be {', '.join(map(repr, _METHODS))}")
    a = fnp.asarray(a)
    a = a.astype(inexact_dtype(a))
    q = fnp.asarray(q)
    if len(shape_of(q)) > 1:
        raise ValueError(f"q must be have rank <= 1, got shape {tuple(shape_of(q))}")
    q = q.astype(result_type(q, np.float32) if dtype_of(q).kind in "iub" else dtype_of(q))
    rows, keep_shape, kept_dims = _rows_last(a, axis)
    n = shape_of(rows)[-1]
    if ignore_nan:
        rows = fnp.where(fnp.isnan(rows), np.asarray(np.nan, dtype_of(rows)), rows)
        ordered = lax.sort(rows, dimension=1)
        counts = fnp.sum(fnp.logical_not(fnp.isnan(ordered)), axis=1).astype(dtype_of(q))
    else:
        poisoned = fnp.any(fnp.isnan(rows), axis=1, keepdims=True)
        rows = fnp.where(poisoned, np.asarray(np.nan, dtype_of(rows)), rows)
        ordered = lax.sort(rows, dimension=1)
        counts = fnp.full((shape_of(rows)[0],), n, dtype_of(q))
    qs = fnp.reshape(q, (-1,))                                 # [m]
    position = qs[None, :] * (counts[:, None] - 1)             # [rows, m]
    low, high = fnp.floor(position), fnp.ceil(position)
    high_weight = position - low
    low_weight = 1 - high_weight
    last = counts[:, None] - 1
    low = fnp.maximum(0, fnp.minimum(low, last)).astype(np.int32)
    high = fnp.maximum(0, fnp.minimum(high, last)).astype(np.int32)
    low_value = fnp.take_along_axis(ordered, low, axis=1)
    high_value = fnp.take_along_axis(ordered, high, axis=1)
    if method == "linear":
        result = (low_value.astype(dtype_of(q)) * low_weight
                  + high_value.astype(dtype_of(q)) * high_weight)
    elif method == "lower":
        result = low_value
    elif method == "higher":
        result = high_value
    elif method == "nearest":
        result = fnp.where(high_weight <= 0.5, low_value, high_value)
    else:
        result = (low_value + high_value) * np.asarray(0.5, dtype_of(low_value))
    # [rows, m] -> q's shape + the kept (or keepdims) shape.
    out_rest = keep_shape if keepdims else kept_dims
    result = fnp.transpose(result, (1, 0))
    return wrap(fnp.reshape(result, tuple(shape_of(q)) + tuple(out_rest)))


def quantile(a, q, axis=None, out=None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights=None):
    """The q-th quantiles (q in [0, 1]) of `a` over `axis`."""
    return _quantile("quantile", a, q, axis, method, keepdims, False, weights, out)


def nanquantile(a, q, axis=None, out=None, overwrite_input: bool = False,
                method: str = "linear", keepdims: bool = False, *, weights=None):
    """quantile, ignoring NaNs (all-NaN rows give NaN)."""
    return _quantile("nanquantile", a, q, axis, method, keepdims, True, weights, out)


def _percent(q):
    from flowjit import numpy as fnp
    q = fnp.asarray(q)
    return q / np.asarray(100, dtype_of(q) if dtype_of(q).kind == "f" else np.float32)


def percentile(a, q, axis=None, out=None, overwrite_input: bool = False,
               method: str = "linear", keepdims: bool = False, *, weights=None,
               out_sharding=None):
    """The q-th percentiles (q in [0, 100]) of `a` over `axis`."""
    return _quantile("percentile", a, _percent(q), axis, method, keepdims, False, weights,
                     out)


def nanpercentile(a, q, axis=None, out=None, overwrite_input: bool = False,
                  method: str = "linear", keepdims: bool = False, *, weights=None):
    """percentile, ignoring NaNs."""
    return _quantile("nanpercentile", a, _percent(q), axis, method, keepdims, True,
                     weights, out)


def median(a, axis=None, out=None, overwrite_input: bool = False, keepdims: bool = False):
    """The median of `a` over `axis` (the mean of the two middle elements when even)."""
    return _quantile("median", a, 0.5, axis, "midpoint", keepdims, False, None, out)


def nanmedian(a, axis=None, out=None, overwrite_input: bool = False,
              keepdims: bool = False):
    """median, ignoring NaNs."""
    return _quantile("nanmedian", a, 0.5, axis, "midpoint", keepdims, True, None, out)
