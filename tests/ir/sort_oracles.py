"""Independent numpy versions of the JAX-printed sorting fixtures (tests/fixtures: sort,
argsort, lax_sort_multi, top_k, median, searchsorted, sort_grad), for tests/ir/test_jax_hlo.py.

numpy sorts NaNs last and treats -0.0 as equal to 0.0, as JAX's comparator does; stable
sorts (kind="stable") keep ties in order, which JAX's is_stable=true sort does too."""
from __future__ import annotations

import numpy as np


def _stable_descending_order(x, axis):
    """JAX's stable descending argsort: reversed, sorted stably, indices mapped back."""
    n = x.shape[axis]
    order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - order, axis)


def np_sort(x, ints):
    return [np.sort(x, axis=-1), np.flip(np.sort(x, axis=0), 0), np.sort(ints, axis=None),
            np.sort(ints, axis=0)]


def np_argsort(x, ints):
    return [np.argsort(x, axis=-1, kind="stable"), _stable_descending_order(x, -1),
            np.argsort(ints, axis=0, kind="stable"), _stable_descending_order(ints, 1)]


def np_lax_sort_multi(keys, second, values):
    ties = np.round(second)
    order = np.stack([np.lexsort((t, k)) for k, t in zip(keys, ties)])
    return [np.take_along_axis(a, order, axis=1) for a in (keys, ties, values)]


def _top_k(x, k):
    """The k largest of each row, NaN above all (the inputs hold no signed zeros)."""
    key = np.where(np.isnan(x), np.inf, x.astype(np.float64))
    order = np.argsort(-key, axis=-1, kind="stable")[..., :k]
    return [np.take_along_axis(x, order, axis=-1), order.astype(np.int32)]


def np_top_k(scores, ints):
    return _top_k(scores, 4) + _top_k(ints, 3)


def np_median(x):
    x = x.astype(np.float64)
    return [np.median(x, axis=1), np.median(x[:4]), np.quantile(x, 0.3, axis=0),
            np.percentile(x[:4], [10.0, 50.0, 95.0], axis=1)]


def np_searchsorted(table, queries):
    return [np.searchsorted(table, queries, side="left"),
            np.searchsorted(table, queries, side="right")]


def np_sort_grad(x, w, u):
    """d/dx [sum(sort(x) * w) + sum(tanh(top3(x)) * u)]: each cotangent goes back to the
    element that landed there (the inputs have no ties)."""
    x, w, u = (a.astype(np.float64) for a in (x, w, u))
    grad = np.zeros_like(x)
    order = np.argsort(x, axis=1)
    np.put_along_axis(grad, order, w, axis=1)
    top = np.argsort(-x, axis=1)[:, :3]
    values = np.take_along_axis(x, top, axis=1)
    for row in range(x.shape[0]):
        grad[row, top[row]] += (1 - np.tanh(values[row]) ** 2) * u[row]
    return [grad]


SORT_ORACLES = {
    "sort": np_sort, "argsort": np_argsort, "lax_sort_multi": np_lax_sort_multi,
    "top_k": np_top_k, "median": np_median, "searchsorted": np_searchsorted,
    "sort_grad": np_sort_grad,
}
SORT_TOLERANCE = {"median": dict(rtol=2e-6, atol=2e-6), "sort_grad": dict(rtol=1e-5,
                                                                           atol=1e-6)}
