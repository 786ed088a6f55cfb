"""Primitives one-to-one with IR ops, in the spirit of `jax.lax`: no implicit broadcasting
or type promotion (flowjit.numpy adds those). Each works traced and eagerly."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from flowjit.core import bind, reducer, shape_of
from flowjit.ir import dtypes
from flowjit.ir.shapes import ArrayShape


def _unary(opcode: str):
    def fn(x):
        return bind(opcode, [x], weak_type=getattr(x, "weak_type", False))
    fn.__name__ = opcode.replace("-", "_")
    fn.__doc__ = f"Elementwise `{opcode}`."
    return fn


def _expand_scalars(*operands):
    """Rank-0 operands broadcast to the others' shape (a convenience jax.lax lacks)."""
    shapes = [shape_of(o) for o in operands]
    full = next((s for s in shapes if s.rank), None)
    if full is None:
        return list(operands)
    return [broadcast_in_dim(o, full.dims, []) if s.rank == 0 else o
            for o, s in zip(operands, shapes)]


def _binary(opcode: str):
    def fn(x, y):
        return bind(opcode, _expand_scalars(x, y))
    fn.__name__ = opcode.replace("-", "_")
    fn.__doc__ = f"Elementwise `{opcode}` of two operands of equal shape and dtype."
    return fn


neg = _unary("negate")
abs = _unary("abs")  # noqa: A001 - mirrors jax.lax
sign = _unary("sign")
exp = _unary("exponential")
expm1 = _unary("exponential-minus-one")
log = _unary("log")
log1p = _unary("log-plus-one")
sqrt = _unary("sqrt")
rsqrt = _unary("rsqrt")
cbrt = _unary("cbrt")
tanh = _unary("tanh")
logistic = _unary("logistic")
sin = _unary("sine")
cos = _unary("cosine")
tan = _unary("tan")
erf = _unary("erf")
floor = _unary("floor")
ceil = _unary("ceil")
round_even = _unary("round-nearest-even")
bitwise_not = _unary("not")
population_count = _unary("popcnt")
clz = _unary("clz")
is_finite = _unary("is-finite")

add = _binary("add")
sub = _binary("subtract")
mul = _binary("multiply")
div = _binary("divide")
rem = _binary("remainder")
pow = _binary("power")  # noqa: A001
max = _binary("maximum")  # noqa: A001
min = _binary("minimum")  # noqa: A001
atan2 = _binary("atan2")
bitwise_and = _binary("and")
bitwise_or = _binary("or")
bitwise_xor = _binary("xor")
shift_left = _binary("shift-left")
shift_right_arithmetic = _binary("shift-right-arithmetic")
shift_right_logical = _binary("shift-right-logical")


def compare(x, y, direction: str):
    """Elementwise comparison; `direction` is EQ, NE, LT, LE, GT or GE."""
    return bind("compare", _expand_scalars(x, y), {"direction": direction})


def select(pred, on_true, on_false):
    return bind("select", _expand_scalars(pred, on_true, on_false))


def clamp(lo, x, hi):
    return bind("clamp", [lo, x, hi])


def convert_element_type(x, dtype) -> Any:
    """`x` converted to `dtype` (a numpy dtype or flowjit DType)."""
    target = dtype if isinstance(dtype, dtypes.DType) else dtypes.from_numpy(dtype)
    shape = shape_of(x)
    if shape.dtype == target:
        return x
    return bind("convert", [x], shape=ArrayShape(target, shape.dims))


def broadcast_in_dim(x, shape: Sequence[int], broadcast_dimensions: Sequence[int]):
    """`x` placed into `shape`, operand dim i going to result dim broadcast_dimensions[i]."""
    src = shape_of(x)
    target = ArrayShape(src.dtype, tuple(shape))
    if src == target and tuple(broadcast_dimensions) == tuple(range(src.rank)):
        return x
    # numpy-style size-1 dims are dropped with a reshape first, as XLA's broadcast needs
    # exact sizes.
    keep = [i for i, d in enumerate(src.dims) if d == target.dims[broadcast_dimensions[i]]]
    if len(keep) != src.rank:
        x = reshape(x, [src.dims[i] for i in keep])
        broadcast_dimensions = [broadcast_dimensions[i] for i in keep]
    return bind("broadcast", [x], {"dimensions": tuple(broadcast_dimensions)}, shape=target,
                weak_type=getattr(x, "weak_type", False))


def reshape(x, new_sizes: Sequence[int]):
    src = shape_of(x)
    if src.dims == tuple(new_sizes):
        return x
    return bind("reshape", [x], shape=ArrayShape(src.dtype, tuple(new_sizes)),
                weak_type=getattr(x, "weak_type", False))


def transpose(x, permutation: Sequence[int]):
    if tuple(permutation) == tuple(range(len(permutation))):
        return x
    return bind("transpose", [x], {"dimensions": tuple(permutation)})


def slice(x, start: Sequence[int], limit: Sequence[int],  # noqa: A001
          strides: Optional[Sequence[int]] = None):
    strides = strides or [1] * len(start)
    return bind("slice", [x], {"slice": tuple(zip(start, limit, strides))})


def dynamic_slice(x, start_indices: Sequence[Any], slice_sizes: Sequence[int]):
    return bind("dynamic-slice", [x, *start_indices],
                {"dynamic_slice_sizes": tuple(slice_sizes)})


def dynamic_update_slice(x, update, start_indices: Sequence[Any]):
    return bind("dynamic-update-slice", [x, update, *start_indices])


def concatenate(operands: Sequence[Any], dimension: int):
    if len(operands) == 1:
        return operands[0]
    return bind("concatenate", list(operands), {"dimensions": (dimension,)})


def pad(x, padding_value, padding_config: Sequence[tuple[int, int, int]]):
    return bind("pad", [x, padding_value], {"padding": tuple(map(tuple, padding_config))})


def rev(x, dimensions: Sequence[int]):
    if not dimensions:
        return x
    return bind("reverse", [x], {"dimensions": tuple(dimensions)})


def iota(dtype, shape: Sequence[int], dimension: int = 0):
    target = dtypes.from_numpy(dtype) if not isinstance(dtype, dtypes.DType) else dtype
    return bind("iota", [], {"iota_dimension": dimension},
                shape=ArrayShape(target, tuple(shape)))


def reduce(x, init, opcode: str, dimensions: Sequence[int]):
    """Reduce `x` over `dimensions` with the scalar op `opcode` (add, maximum, ...)."""
    dtype = shape_of(x).dtype
    comp = reducer(opcode, dtype, [x, init])
    return bind("reduce", [x, init], {"dimensions": tuple(dimensions)}, {"to_apply": comp})


def dot_general(lhs, rhs, contracting: tuple[Sequence[int], Sequence[int]],
                batch: tuple[Sequence[int], Sequence[int]] = ((), ()),
                preferred_element_type=None):
    attrs = {"lhs_batch_dims": tuple(batch[0]), "rhs_batch_dims": tuple(batch[1]),
             "lhs_contracting_dims": tuple(contracting[0]),
             "rhs_contracting_dims": tuple(contracting[1])}
    attrs = {k: v for k, v in attrs.items() if v}
    shape = None
    if preferred_element_type is not None:
        shape = ArrayShape(dtypes.from_numpy(preferred_element_type), ())
    return bind("dot", [lhs, rhs], attrs, shape=shape)


def gather(operand, indices, *, offset_dims, collapsed_slice_dims, start_index_map,
           index_vector_dim, slice_sizes):
    attrs = {"offset_dims": tuple(offset_dims), "collapsed_slice_dims":
             tuple(collapsed_slice_dims), "start_index_map": tuple(start_index_map),
             "index_vector_dim": index_vector_dim, "slice_sizes": tuple(slice_sizes)}
    return bind("gather", [operand, indices], attrs)


def scatter(operand, indices, updates, combiner, *, update_window_dims, inserted_window_dims,
            scatter_dims_to_operand_dims, index_vector_dim):
    """XLA scatter; `combiner` is an opcode (add, multiply, maximum, minimum) or None (set)."""
    from flowjit.core import current_trace  # noqa: F401  (combiner lives with the trace)
    dtype = shape_of(operand).dtype
    if combiner is None:
        comp = _set_combiner(dtype, [operand, indices, updates])
    else:
        comp = reducer(combiner, dtype, [operand, indices, updates])
    attrs = {"update_window_dims": tuple(update_window_dims),
             "inserted_window_dims": tuple(inserted_window_dims),
             "scatter_dims_to_operand_dims": tuple(scatter_dims_to_operand_dims),
             "index_vector_dim": index_vector_dim}
    return bind("scatter", [operand, indices, updates], attrs, {"to_apply": comp})


def _set_combiner(dtype: dtypes.DType, operands):
    """`ROOT p1` over (p0, p1): scatter that overwrites."""
    from flowjit.core import _innermost
    from flowjit.ir.builder import Builder, NameTable
    trace = _innermost(operands)
    names = trace.names if trace is not None else NameTable()
    b = Builder("set_combiner", names)
    shape = ArrayShape(dtype, ())
    b.parameter(0, shape, "old")
    new = b.parameter(1, shape, "new")
    comp = b.finish(new)
    if trace is not None:
        trace.add_computation(comp)
    return comp


def full(shape: Sequence[int], value, dtype) -> np.ndarray:
    """A concrete array (becomes a broadcast constant when it meets a traced value)."""
    return np.full(tuple(shape), value, dtype=dtype)


def bitcast_convert(x, dtype):
    """The bits of x reinterpreted as `dtype` (same width)."""
    target = dtypes.from_numpy(dtype)
    return bind("bitcast-convert", [x], shape=ArrayShape(target, shape_of(x).dims))
