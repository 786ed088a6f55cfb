"""Sorting primitives with jax.lax's names and signatures: `sort` (several operands, the
first `num_keys` of them keys), `sort_key_val` and `top_k` (re-exported by `flowjit.lax`).

The comparator is JAX's `_sort_lt_comparator`: floats are canonicalized (-0.0 becomes 0.0,
every NaN the positive quiet NaN) and compared with type=TOTALORDER, so NaNs sort last and
equal keys keep their order; several keys compare lexicographically.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from flowjit.core import _innermost, bind, shape_of
from flowjit.ir.builder import Builder, NameTable
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError
from flowjit.ir.module import Computation
from flowjit.ir.shapes import ArrayShape
from flowjit.source_info import at_user_line


def _canonical_key(b: Builder, x):
    """JAX's _canonicalize_float_for_sort: -0.0 -> 0.0 and NaN -> +NaN (floats only)."""
    if not x.shape.dtype.is_float:
        return x
    zero = b.constant(0, x.shape.dtype)
    nan = b.constant(np.nan, x.shape.dtype)
    unsigned_zero = b.add("select", [b.add("compare", [x, zero], {"direction": "EQ"}),
                                     zero, x])
    is_nan = b.add("compare", [x, x], {"direction": "NE"})
    return b.add("select", [is_nan, nan, unsigned_zero])


def _total_compare(b: Builder, x, y, direction: str):
    attrs = {"direction": direction}
    if x.shape.dtype.is_float:
        attrs["type"] = "TOTALORDER"
    return b.add("compare", [x, y], attrs)


def lt_comparator(element_types: Sequence[DType], num_keys: int,
                  names: NameTable) -> Computation:
    """(lhs_0, rhs_0, lhs_1, rhs_1, ...) -> pred: the first `num_keys` operands compared
    lexicographically, by the total order of canonical floats."""
    b = Builder("sort_comparator", names)
    params = [b.parameter(k, ArrayShape(dtype, ()), "lhs" if k % 2 == 0 else "rhs")
              for k, dtype in enumerate(t for t in element_types for _ in range(2))]
    keys = [(_canonical_key(b, params[2 * k]), _canonical_key(b, params[2 * k + 1]))
            for k in range(num_keys)]
    less = None
    for x, y in reversed(keys):
        lt = _total_compare(b, x, y, "LT")
        if less is not None:
            tie = b.add("and", [_total_compare(b, x, y, "EQ"), less])
            lt = b.add("or", [lt, tie])
        less = lt
    return b.finish(less)


def _comparator_for(operands: Sequence[Any], num_keys: int) -> Computation:
    trace = _innermost(operands)
    names = trace.names if trace is not None else NameTable()
    return lt_comparator([shape_of(o).dtype for o in operands], num_keys, names)


def sort(operand, dimension: int = -1, is_stable: bool = True, num_keys: int = 1):
    """Sort `operand` (an array, or a sequence of equally shaped arrays sorted together by
    their first `num_keys`) along `dimension`."""
    single = not isinstance(operand, (tuple, list))
    operands = [operand] if single else list(operand)
    if not operands:
        raise TypeError("sort requires at least one operand")
    if not 1 <= num_keys <= len(operands):
        raise ValueError(f"num_keys={num_keys} must be between 1 and the number of "
                         f"operands ({len(operands)})")
    shape = shape_of(operands[0])
    if shape.rank == 0:
        raise ShapeError(at_user_line("sort of a rank-0 array: it needs a dimension"))
    if not -shape.rank <= dimension < shape.rank:
        raise ShapeError(at_user_line(f"sort dimension {dimension} is out of range for "
                                      f"shape {list(shape.dims)}"))
    comparator = _comparator_for(operands, num_keys)
    result = bind("sort", operands, {"dimensions": (dimension % shape.rank,),
                                     "is_stable": bool(is_stable)},
                  {"to_apply": comparator})
    if single:
        return result
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def sort_key_val(keys, values, dimension: int = -1, is_stable: bool = True):
    """(keys, values) sorted along `dimension` by `keys`."""
    sorted_keys, sorted_values = sort((keys, values), dimension=dimension,
                                      is_stable=is_stable, num_keys=1)
    return sorted_keys, sorted_values


def top_k(operand, k: int, *, axis: int = -1):
    """The `k` largest elements along `axis` (the last by default), from the largest, and
    their int32 indices; ties go to the lower index, NaN counts as the largest."""
    from flowjit import lax
    shape = shape_of(operand)
    if shape.rank == 0:
        raise ShapeError(at_user_line("top_k of a rank-0 array: it needs a dimension"))
    if not -shape.rank <= axis < shape.rank:
        raise ShapeError(at_user_line(f"top_k axis {axis} is out of range for shape "
                                      f"{list(shape.dims)}"))
    k = int(k)
    axis = axis % shape.rank
    if not 0 <= k <= shape.dims[axis]:
        raise ValueError(at_user_line(f"top_k: k={k} must be between 0 and the size "
                                      f"{shape.dims[axis]} of axis {axis}"))
    last = shape.rank - 1
    if axis != last:
        order = list(range(shape.rank))
        order[axis], order[last] = last, axis
        values, indices = top_k(lax.transpose(operand, order), k)
        return lax.transpose(values, order), lax.transpose(indices, order)
    values, indices = bind("topk", [operand], {"k": k, "largest": True})
    return values, indices
