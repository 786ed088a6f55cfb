"""Primitives one-to-one with IR ops, with `jax.lax`'s names and signatures: no implicit
broadcasting or type promotion (flowjit.numpy adds those), except that Python scalars are
weakly typed (they take the other operands' dtype) and scalar operands of elementwise ops
broadcast. Each works traced and eagerly. tests/compiler/test_lax_api.py holds every
signature to jax.lax's."""
from __future__ import annotations

import enum
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from flowjit.config import canonicalize_dtype
from flowjit.core import Tracer, bind, reducer, shape_of
from flowjit.ir import dtypes
from flowjit.ir.shapes import ArrayShape


def _ir_dtype(dtype) -> dtypes.DType:
    """The IR type of a requested dtype, canonicalized (64-bit only with x64 enabled)."""
    if isinstance(dtype, dtypes.DType):
        dtype = dtype.to_numpy()
    return dtypes.from_numpy(canonicalize_dtype(dtype))


def _is_python_scalar(x: Any) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _weak_operands(*operands):
    """Python scalars converted to the dtype of the other operands (JAX's weak typing)."""
    typed = next((o for o in operands if not _is_python_scalar(o)), None)
    if typed is None:
        return list(operands)
    dtype = shape_of(typed).dtype.to_numpy()
    return [np.asarray(o, dtype) if _is_python_scalar(o) else o for o in operands]


def _unary(opcode: str, accuracy: bool = False):
    def fn(x):
        return bind(opcode, [x], weak_type=getattr(x, "weak_type", False))

    def fn_with_accuracy(x, *, accuracy=None):
        # `accuracy` is a hint in JAX too; flowjit's lowerings have one accuracy.
        return fn(x)
    out = fn_with_accuracy if accuracy else fn
    out.__name__ = opcode.replace("-", "_")
    out.__doc__ = f"Elementwise `{opcode}`."
    return out


def _expand_scalars(*operands):
    """Python scalars take the others' dtype; rank-0 operands broadcast to the others'
    shape (as jax.lax does for scalars)."""
    operands = _weak_operands(*operands)
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
exp = _unary("exponential", accuracy=True)
expm1 = _unary("exponential-minus-one", accuracy=True)
log = _unary("log", accuracy=True)
log1p = _unary("log-plus-one", accuracy=True)
sqrt = _unary("sqrt", accuracy=True)
rsqrt = _unary("rsqrt", accuracy=True)
cbrt = _unary("cbrt", accuracy=True)
tanh = _unary("tanh", accuracy=True)
logistic = _unary("logistic", accuracy=True)
sin = _unary("sine", accuracy=True)
cos = _unary("cosine", accuracy=True)
tan = _unary("tan", accuracy=True)
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




_multiply = _binary("multiply")


def _mul(x, y, *, out_dtype=None):
    out = _multiply(x, y)
    return out if out_dtype is None else convert_element_type(out, out_dtype)


_mul.__name__, _mul.__doc__ = "mul", "Elementwise product (then converted to `out_dtype`)."
mul = _mul


def compare(x, y, direction: str):
    """Elementwise comparison; `direction` is EQ, NE, LT, LE, GT or GE."""
    return bind("compare", _expand_scalars(x, y), {"direction": direction})


def _comparison(direction: str):
    def fn(x, y):
        return compare(x, y, direction)
    fn.__name__ = direction.lower()
    fn.__doc__ = f"Elementwise x {direction} y (booleans)."
    return fn


eq, ne, lt, le, gt, ge = (_comparison(d) for d in ("EQ", "NE", "LT", "LE", "GT", "GE"))


def select(pred, on_true, on_false):
    """on_true where pred, else on_false (a scalar pred picks one whole operand)."""
    on_true, on_false = _weak_operands(on_true, on_false)
    return bind("select", _expand_scalars(pred, on_true, on_false))


def clamp(min, x, max):  # noqa: A002 - jax.lax's names
    """x limited to [min, max]; min and max may be scalars (Python ones take x's dtype)."""
    x_shape = shape_of(x)
    lo, x, hi = _weak_operands(min, x, max)
    lo, hi = (broadcast_in_dim(b, x_shape.dims, []) if shape_of(b).rank == 0 and x_shape.rank
              else b for b in (lo, hi))
    return bind("clamp", [lo, x, hi])


class RoundingMethod(enum.IntEnum):
    """jax.lax.RoundingMethod: ties away from zero, or to even."""

    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def round(x, rounding_method=RoundingMethod.AWAY_FROM_ZERO):  # noqa: A001
    """x rounded to an integer value, ties away from zero (default) or to even."""
    if RoundingMethod(rounding_method) == RoundingMethod.TO_NEAREST_EVEN:
        return round_even(x)
    return bind("round-nearest-afz", [x], weak_type=getattr(x, "weak_type", False))


def convert_element_type(operand, new_dtype) -> Any:
    """`operand` converted to `new_dtype` (canonicalized: 64-bit only with x64 enabled)."""
    target = _ir_dtype(new_dtype)
    shape = shape_of(operand)
    if shape.dtype == target:
        return operand
    return bind("convert", [operand], shape=ArrayShape(target, shape.dims))


def broadcast_in_dim(operand, shape: Sequence[int], broadcast_dimensions: Sequence[int], *,
                     out_sharding=None):
    """`operand` placed into `shape`, operand dim i going to result dim
    broadcast_dimensions[i]."""
    x = operand
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


def reshape(operand, new_sizes: Sequence[int], dimensions: Optional[Sequence[int]] = None, *,
            out_sharding=None):
    """`operand` (first transposed by `dimensions`, if given) in row-major order, reshaped."""
    if dimensions is not None:
        operand = transpose(operand, dimensions)
    src = shape_of(operand)
    if src.dims == tuple(new_sizes):
        return operand
    return bind("reshape", [operand], shape=ArrayShape(src.dtype, tuple(new_sizes)),
                weak_type=getattr(operand, "weak_type", False))


def transpose(operand, permutation: Sequence[int]):
    if tuple(permutation) == tuple(range(len(permutation))):
        return operand
    return bind("transpose", [operand], {"dimensions": tuple(permutation)})


def slice(operand, start_indices: Sequence[int], limit_indices: Sequence[int],  # noqa: A001
          strides: Optional[Sequence[int]] = None):
    strides = strides or [1] * len(start_indices)
    return bind("slice", [operand], {"slice": tuple(zip(start_indices, limit_indices, strides))})


def _index_scalar(index):
    """A start index as a rank-0 array (Python ints become int32, as in JAX)."""
    if _is_python_scalar(index):
        return np.asarray(index, np.int32)
    return index


def _wrap_negative(index, size: int):
    """index + size where index < 0 (JAX's allow_negative_indices)."""
    if not isinstance(index, Tracer):
        value = np.asarray(index)
        return np.asarray(value + size if value < 0 else value, value.dtype)
    dtype = index.dtype
    return select(lt(index, np.zeros((), dtype)), add(index, np.asarray(size, dtype)), index)


def _start_indices(start_indices, dims, allow_negative_indices):
    starts = [_index_scalar(i) for i in start_indices]
    if isinstance(allow_negative_indices, bool):
        allow_negative_indices = [allow_negative_indices] * len(starts)
    return [_wrap_negative(i, d) if allow else i
            for i, d, allow in zip(starts, dims, allow_negative_indices)]


def dynamic_slice(operand, start_indices: Sequence[Any], slice_sizes: Sequence[int], *,
                  allow_negative_indices=True):
    """A `slice_sizes` window of operand at `start_indices` (negative ones count from the
    end when allowed; the window is then clamped to fit, as XLA does)."""
    starts = _start_indices(start_indices, shape_of(operand).dims, allow_negative_indices)
    return bind("dynamic-slice", [operand, *starts],
                {"dynamic_slice_sizes": tuple(slice_sizes)})


def dynamic_update_slice(operand, update, start_indices: Sequence[Any], *,
                         allow_negative_indices=True):
    """operand with `update` written at `start_indices` (clamped to fit, as XLA does)."""
    starts = _start_indices(start_indices, shape_of(operand).dims, allow_negative_indices)
    return bind("dynamic-update-slice", [operand, update, *starts])


def concatenate(operands: Sequence[Any], dimension: int):
    if len(operands) == 1:
        return operands[0]
    return bind("concatenate", list(operands), {"dimensions": (dimension,)})


def pad(operand, padding_value, padding_config: Sequence[tuple[int, int, int]]):
    """operand padded with `padding_value` (a scalar; a Python one takes operand's dtype):
    (low, high, interior) per dimension, negative low/high cutting."""
    operand, padding_value = _weak_operands(operand, padding_value)
    return bind("pad", [operand, padding_value],
                {"padding": tuple(tuple(int(v) for v in c) for c in padding_config)})


def rev(operand, dimensions: Sequence[int]):
    if not dimensions:
        return operand
    return bind("reverse", [operand], {"dimensions": tuple(dimensions)})


def iota(dtype, size: int):
    """[0, 1, ..., size - 1] as `dtype`."""
    return broadcasted_iota(dtype, (int(size),), 0)


def broadcasted_iota(dtype, shape: Sequence[int], dimension: int, *, out_sharding=None):
    """An array of `shape` whose value is the position along `dimension`."""
    return bind("iota", [], {"iota_dimension": dimension},
                shape=ArrayShape(_ir_dtype(dtype), tuple(int(d) for d in shape)))


# JAX's monoid computations, recognized when passed to `reduce`, and their opcodes.
def _reducer_opcode(computation) -> str:
    if isinstance(computation, str):
        return computation
    opcode = {add: "add", mul: "multiply", max: "maximum", min: "minimum",
              bitwise_and: "and", bitwise_or: "or", bitwise_xor: "xor"}.get(computation)
    if opcode is None:
        raise NotImplementedError(
            f"reduce with computation {getattr(computation, '__name__', computation)!r}: "
            "flowjit.lax.reduce takes lax.add, mul, max, min, bitwise_and/or/xor (or their "
            "opcode names)")
    return opcode


def reduce(operands, init_values, computation, dimensions: Sequence[int], out_sharding=None):
    """Reduce `operands` over `dimensions` with a monoid: lax.add, lax.max, ... (or the
    opcode name: "add", "maximum", ...)."""
    opcode = _reducer_opcode(computation)
    operands, init_values = _weak_operands(operands, init_values)
    dtype = shape_of(operands).dtype
    comp = reducer(opcode, dtype, [operands, init_values])
    return bind("reduce", [operands, init_values], {"dimensions": tuple(dimensions)},
                {"to_apply": comp})


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, *,
                out_sharding=None):
    """XLA's dot: dimension_numbers = ((lhs_contracting, rhs_contracting),
    (lhs_batch, rhs_batch)), as in jax.lax."""
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    attrs = {"lhs_batch_dims": tuple(lhs_batch), "rhs_batch_dims": tuple(rhs_batch),
             "lhs_contracting_dims": tuple(lhs_contract),
             "rhs_contracting_dims": tuple(rhs_contract)}
    attrs = {k: v for k, v in attrs.items() if v}
    shape = None
    if preferred_element_type is not None:
        shape = ArrayShape(_ir_dtype(preferred_element_type), ())
    return bind("dot", [lhs, rhs], attrs, shape=shape)


class GatherDimensionNumbers(NamedTuple):
    """jax.lax.GatherDimensionNumbers (the index vector is the last dim of the indices)."""

    offset_dims: tuple
    collapsed_slice_dims: tuple
    start_index_map: tuple
    operand_batching_dims: tuple = ()
    start_indices_batching_dims: tuple = ()


class ScatterDimensionNumbers(NamedTuple):
    """jax.lax.ScatterDimensionNumbers (the index vector is the last dim of the indices)."""

    update_window_dims: tuple
    inserted_window_dims: tuple
    scatter_dims_to_operand_dims: tuple
    operand_batching_dims: tuple = ()
    scatter_indices_batching_dims: tuple = ()


class GatherScatterMode(enum.Enum):
    """What gather and scatter do with out-of-bounds indices (jax.lax's modes).

    CLIP clamps the indices into range; FILL_OR_DROP gathers `fill_value` and drops scatter
    updates (scatter's default); PROMISE_IN_BOUNDS does what XLA does: gather clamps (its
    default, as in JAX), scatter drops."""

    CLIP = 1
    FILL_OR_DROP = 2
    PROMISE_IN_BOUNDS = 3

    @staticmethod
    def from_any(mode) -> "GatherScatterMode":
        if isinstance(mode, GatherScatterMode):
            return mode
        if mode is None:
            return GatherScatterMode.FILL_OR_DROP
        names = {"clip": "CLIP", "fill": "FILL_OR_DROP", "drop": "FILL_OR_DROP",
                 "promise_in_bounds": "PROMISE_IN_BOUNDS"}
        if mode not in names:
            raise ValueError(f"unknown gather/scatter mode {mode!r} (one of "
                             f"{', '.join(names)})")
        return GatherScatterMode[names[mode]]


def _window_limits(operand_dims, window_sizes, index_map, indices_dtype) -> np.ndarray:
    """The largest in-bounds start along each mapped dim: operand size - window size."""
    return np.asarray([operand_dims[d] - window_sizes[d] for d in index_map], indices_dtype)


def _clip_indices(indices, limits: np.ndarray):
    """indices (index vector last) clamped to [0, limits] component-wise."""
    shape = shape_of(indices)
    dims = [shape.rank - 1]
    zero = broadcast_in_dim(np.zeros_like(limits), shape.dims, dims)
    return clamp(zero, indices, broadcast_in_dim(limits, shape.dims, dims))


def _indices_in_bounds(indices, limits: np.ndarray):
    """Per index vector: True when every component is in [0, limits]."""
    shape = shape_of(indices)
    dims = [shape.rank - 1]
    ok = bitwise_and(ge(indices, broadcast_in_dim(np.zeros_like(limits), shape.dims, dims)),
                     le(indices, broadcast_in_dim(limits, shape.dims, dims)))
    return reduce(ok, np.asarray(True), "and", (shape.rank - 1,))


def _fill_default(dtype: np.dtype):
    """JAX's gather fill: NaN for floats, the minimum for signed ints, max for unsigned."""
    if dtypes.from_numpy(dtype).is_float:
        return np.asarray(np.nan, dtype)
    if dtype.kind == "b":
        return np.asarray(True)
    return np.asarray(np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max, dtype)


def gather(operand, start_indices, dimension_numbers: GatherDimensionNumbers,
           slice_sizes: Sequence[int], *, unique_indices: bool = False,
           indices_are_sorted: bool = False, mode=None, fill_value=None):
    """XLA gather, with jax.lax's dimension numbers and out-of-bounds `mode`."""
    dn = dimension_numbers
    index_shape = shape_of(start_indices)
    if mode is not None and GatherScatterMode.from_any(mode) == GatherScatterMode.CLIP:
        # Clamped here, not only by XLA's gather, so the gradient lands where it read (JAX).
        limits = _window_limits(shape_of(operand).dims, slice_sizes, dn.start_index_map,
                                index_shape.dtype.to_numpy())
        start_indices = _clip_indices(start_indices, limits)
    attrs = {"offset_dims": tuple(dn.offset_dims),
             "collapsed_slice_dims": tuple(dn.collapsed_slice_dims),
             "start_index_map": tuple(dn.start_index_map),
             "index_vector_dim": index_shape.rank - 1, "slice_sizes": tuple(slice_sizes)}
    if dn.operand_batching_dims:
        attrs["operand_batching_dims"] = tuple(dn.operand_batching_dims)
        attrs["start_indices_batching_dims"] = tuple(dn.start_indices_batching_dims)
    out = bind("gather", [operand, start_indices], attrs)
    if mode is None or GatherScatterMode.from_any(mode) != GatherScatterMode.FILL_OR_DROP:
        return out   # XLA's gather clamps the windows into bounds
    operand_shape = shape_of(operand)
    limits = _window_limits(operand_shape.dims, slice_sizes, dn.start_index_map,
                            index_shape.dtype.to_numpy())
    valid = _indices_in_bounds(start_indices, limits)
    out_shape = shape_of(out)
    batch_dims = [d for d in range(out_shape.rank) if d not in dn.offset_dims]
    fill = (_fill_default(operand_shape.dtype.to_numpy()) if fill_value is None
            else np.asarray(fill_value, operand_shape.dtype.to_numpy()))
    return select(broadcast_in_dim(valid, out_shape.dims, batch_dims), out,
                  broadcast_in_dim(fill, out_shape.dims, []))


def _scatter(operand, scatter_indices, updates, dimension_numbers, combiner, mode):
    dn = dimension_numbers
    index_shape = shape_of(scatter_indices)
    operand, updates = _weak_operands(operand, updates)
    if GatherScatterMode.from_any(mode) == GatherScatterMode.CLIP:
        operand_dims = shape_of(operand).dims
        window = [1] * len(operand_dims)
        update_dims = shape_of(updates).dims
        operand_window = [d for d in range(len(operand_dims))
                          if d not in dn.inserted_window_dims
                          and d not in dn.operand_batching_dims]
        for k, d in zip(dn.update_window_dims, operand_window):
            window[d] = update_dims[k]
        limits = _window_limits(operand_dims, window, dn.scatter_dims_to_operand_dims,
                                index_shape.dtype.to_numpy())
        scatter_indices = _clip_indices(scatter_indices, limits)
    # Otherwise XLA's scatter itself skips updates whose window is out of bounds.
    dtype = shape_of(operand).dtype
    if combiner is None:
        comp = _set_combiner(dtype, [operand, scatter_indices, updates])
    else:
        comp = reducer(combiner, dtype, [operand, scatter_indices, updates])
    attrs = {"update_window_dims": tuple(dn.update_window_dims),
             "inserted_window_dims": tuple(dn.inserted_window_dims),
             "scatter_dims_to_operand_dims": tuple(dn.scatter_dims_to_operand_dims),
             "index_vector_dim": index_shape.rank - 1}
    if dn.operand_batching_dims:
        attrs["input_batching_dims"] = tuple(dn.operand_batching_dims)
        attrs["scatter_indices_batching_dims"] = tuple(dn.scatter_indices_batching_dims)
    return bind("scatter", [operand, scatter_indices, updates], attrs, {"to_apply": comp})


def _scatter_function(combiner: Optional[str], name: str, doc: str):
    def fn(operand, scatter_indices, updates, dimension_numbers: ScatterDimensionNumbers, *,
           indices_are_sorted: bool = False, unique_indices: bool = False, mode=None):
        return _scatter(operand, scatter_indices, updates, dimension_numbers, combiner, mode)
    fn.__name__ = name
    fn.__doc__ = doc
    return fn


scatter = _scatter_function(None, "scatter", "XLA scatter that overwrites; out-of-bounds "
                            "updates are dropped (mode='clip' clamps them instead).")
scatter_add = _scatter_function("add", "scatter_add", "XLA scatter that adds.")
scatter_mul = _scatter_function("multiply", "scatter_mul", "XLA scatter that multiplies.")
scatter_min = _scatter_function("minimum", "scatter_min", "XLA scatter that keeps the min.")
scatter_max = _scatter_function("maximum", "scatter_max", "XLA scatter that keeps the max.")


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


def full(shape: Sequence[int], fill_value, dtype=None, *, sharding=None):
    """An array of `shape` filled with `fill_value` (a broadcast of one scalar)."""
    if dtype is None:
        dtype = (shape_of(fill_value).dtype if not _is_python_scalar(fill_value)
                 else canonicalize_dtype(np.asarray(fill_value).dtype))
    value = convert_element_type(fill_value if isinstance(fill_value, Tracer)
                                 else np.asarray(fill_value), dtype)
    return broadcast_in_dim(value, tuple(shape), [])


def bitcast_convert_type(operand, new_dtype):
    """The bits of `operand` reinterpreted as `new_dtype` (same width)."""
    target = _ir_dtype(new_dtype)
    return bind("bitcast-convert", [operand], shape=ArrayShape(target, shape_of(operand).dims))


bitcast_convert = bitcast_convert_type


# What else jax.lax users call there (composed of the above; see lax_more.py).
from flowjit.lax_more import (acos, acosh, argmax, argmin, asin, asinh, atan,  # noqa: E402,F401
                              atanh, batch_matmul, cond, cosh, digamma,
                              dynamic_index_in_dim, dynamic_slice_in_dim,
                              dynamic_update_slice_in_dim, erf_inv, erfc, expand_dims,
                              fori_loop, index_in_dim, integer_pow, lgamma, map, reduce_and,
                              reduce_max, reduce_min, reduce_or, reduce_prod, reduce_sum,
                              scan, sinh, slice_in_dim, square, squeeze, stop_gradient,
                              switch, while_loop)
# Convolutions live in their own module (flowjit.convolution); jax.lax has them here.
from flowjit.convolution import (  # noqa: E402,F401 - re-exported, after lax is defined
    ConvDimensionNumbers, conv, conv_dimension_numbers, conv_general_dilated, conv_transpose,
    conv_with_general_padding, padtype_to_pads)
# Windowed reductions and cumulative ops (compiler/windows.py builds on the names above).
from flowjit.windows import (associative_scan, cumlogsumexp, cummax, cummin,  # noqa: E402,F401
                             cumprod, cumsum, reduce_window)
# Sorting (compiler/sorting.py): sort, sort_key_val, top_k.
from flowjit.sorting import sort, sort_key_val, top_k  # noqa: E402,F401
