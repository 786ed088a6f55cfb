"""The op table: every opcode declared once, with its signature and shape rule.

A shape rule takes the operand shapes, the decoded attributes, the called computations and
the declared result shape (None when the caller wants it inferred) and returns the result
shape, or raises ShapeError naming the shapes involved. Other concerns (reference
semantics, VJP rules, lowerings) live in their own tables keyed by the same opcode.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError
from flowjit.ir.shapes import ArrayShape, Shape, TupleShape

ShapeRule = Callable[[list, dict, dict, Optional[Shape]], Shape]


@dataclass(frozen=True)
class OpSpec:
    """Declaration of one opcode."""

    name: str
    arity: Optional[int]          # None: variadic
    shape_rule: ShapeRule
    attrs: tuple[str, ...] = ()   # attributes that must be present
    elementwise: bool = False
    commutative: bool = False
    side_effecting: bool = False
    differentiable: bool = True
    dtypes: str = "any"           # which element types the op accepts: float/int/numeric/logical
    optional_attrs: tuple[str, ...] = field(default=())


def _fail(opcode: str, message: str, shapes) -> ShapeError:
    shown = ", ".join(str(s) for s in shapes)
    return ShapeError(f"{opcode}: {message} (operands: {shown})")


_DTYPE_CLASSES = {
    "any": lambda d: True,
    "float": lambda d: d.is_float,
    "numeric": lambda d: not d.is_pred,
    "int": lambda d: d.is_int,
    "logical": lambda d: d.is_int or d.is_pred,
    "signed": lambda d: d.is_float or d.is_signed_int,
}


def _check_dtype(opcode: str, dtypes: str, shapes) -> None:
    for s in shapes:
        if not _DTYPE_CLASSES[dtypes](s.dtype):
            raise _fail(opcode, f"element type {s.dtype} is not allowed (needs {dtypes})", shapes)


def _arrays(opcode: str, shapes) -> None:
    for s in shapes:
        if s.is_tuple:
            raise _fail(opcode, "operand must be an array, not a tuple", shapes)


def _elementwise(opcode: str, dtypes: str, result_dtype: Optional[DType] = None) -> ShapeRule:
    def rule(shapes, attrs, calls, result):
        _arrays(opcode, shapes)
        first = shapes[0]
        for s in shapes[1:]:
            if s.dims != first.dims or s.dtype != first.dtype:
                raise _fail(opcode, "operands must have equal shapes and element types", shapes)
        _check_dtype(opcode, dtypes, shapes)
        return ArrayShape(result_dtype or first.dtype, first.dims)
    return rule


def _declared(opcode: str) -> ShapeRule:
    """For ops whose result shape is part of their spelling (reshape, convert, ...)."""
    def rule(shapes, attrs, calls, result):
        if result is None:
            raise _fail(opcode, "needs an explicit result shape", shapes)
        return result
    return rule


def _convert(shapes, attrs, calls, result):
    _arrays("convert", shapes)
    if result is None or result.is_tuple or result.dims != shapes[0].dims:
        raise _fail("convert", f"result {result} must have the operand's dimensions", shapes)
    return result


def _bitcast_convert(shapes, attrs, calls, result):
    if result is None or result.dims != shapes[0].dims or result.dtype.bits != shapes[0].dtype.bits:
        raise _fail("bitcast-convert", f"result {result} must have the same dims and bit width",
                    shapes)
    return result


def _compare(shapes, attrs, calls, result):
    if attrs.get("direction") not in ("EQ", "NE", "LT", "LE", "GT", "GE"):
        raise _fail("compare", f"bad direction {attrs.get('direction')!r}", shapes)
    return _elementwise("compare", "any", DType.PRED)(shapes, attrs, calls, result)


def _select(shapes, attrs, calls, result):
    _arrays("select", shapes)
    pred, a, b = shapes
    if a != b:
        raise _fail("select", "both branches must have the same shape", shapes)
    if pred.dtype != DType.PRED or (pred.dims != a.dims and pred.dims != ()):
        raise _fail("select", "predicate must be pred with the branches' dims (or scalar)", shapes)
    return a


def _clamp(shapes, attrs, calls, result):
    _arrays("clamp", shapes)
    lo, x, hi = shapes
    for bound in (lo, hi):
        if bound.dtype != x.dtype or (bound.dims != x.dims and bound.dims != ()):
            raise _fail("clamp", "bounds must match the operand or be scalars", shapes)
    return x


def _iota(shapes, attrs, calls, result):
    if result is None or result.is_tuple:
        raise _fail("iota", "needs an array result shape", shapes)
    if not 0 <= attrs["iota_dimension"] < max(result.rank, 1) or result.rank == 0:
        raise _fail("iota", f"iota_dimension {attrs['iota_dimension']} out of range for {result}",
                    shapes)
    return result


def _broadcast(shapes, attrs, calls, result):
    (operand,) = shapes
    dims = attrs["dimensions"]
    if result is None:
        raise _fail("broadcast", "needs an explicit result shape", shapes)
    if len(dims) != operand.rank or len(set(dims)) != len(dims):
        raise _fail("broadcast", f"dimensions={list(dims)} must map each operand dim once",
                    shapes)
    for i, d in enumerate(dims):
        if not 0 <= d < result.rank or operand.dims[i] != result.dims[d]:
            raise _fail("broadcast", f"operand dim {i} cannot map to dim {d} of {result}", shapes)
    if result.dtype != operand.dtype:
        raise _fail("broadcast", f"result {result} changes the element type", shapes)
    return result


def _reshape(shapes, attrs, calls, result):
    (operand,) = shapes
    if result is None or result.size != operand.size or result.dtype != operand.dtype:
        raise _fail("reshape", f"cannot reshape to {result}: sizes or element types differ",
                    shapes)
    return result


def _transpose(shapes, attrs, calls, result):
    (operand,) = shapes
    perm = attrs["dimensions"]
    if sorted(perm) != list(range(operand.rank)):
        raise _fail("transpose", f"dimensions={list(perm)} is not a permutation", shapes)
    return ArrayShape(operand.dtype, tuple(operand.dims[p] for p in perm))


def _slice(shapes, attrs, calls, result):
    (operand,) = shapes
    spec = attrs["slice"]
    if len(spec) != operand.rank:
        raise _fail("slice", f"slice has {len(spec)} ranges for rank {operand.rank}", shapes)
    dims = []
    for (start, limit, stride), size in zip(spec, operand.dims):
        if not (0 <= start <= limit <= size) or stride < 1:
            raise _fail("slice", f"range [{start}:{limit}:{stride}] out of bounds for {size}",
                        shapes)
        dims.append(-(-(limit - start) // stride))
    return ArrayShape(operand.dtype, tuple(dims))


def _dynamic_slice(shapes, attrs, calls, result):
    operand, *starts = shapes
    sizes = attrs["dynamic_slice_sizes"]
    if len(starts) != operand.rank or len(sizes) != operand.rank:
        raise _fail("dynamic-slice", "needs one start index and one size per dimension", shapes)
    if any(not s.dtype.is_int or s.rank != 0 for s in starts):
        raise _fail("dynamic-slice", "start indices must be integer scalars", shapes)
    if any(not 0 <= z <= d for z, d in zip(sizes, operand.dims)):
        raise _fail("dynamic-slice", f"sizes {list(sizes)} exceed the operand", shapes)
    return ArrayShape(operand.dtype, tuple(sizes))


def _dynamic_update_slice(shapes, attrs, calls, result):
    operand, update, *starts = shapes
    if len(starts) != operand.rank or update.rank != operand.rank or update.dtype != operand.dtype:
        raise _fail("dynamic-update-slice", "update must match the operand's rank and type",
                    shapes)
    if any(u > d for u, d in zip(update.dims, operand.dims)):
        raise _fail("dynamic-update-slice", "update is larger than the operand", shapes)
    if any(not s.dtype.is_int or s.rank != 0 for s in starts):
        raise _fail("dynamic-update-slice", "start indices must be integer scalars", shapes)
    return operand


def _concatenate(shapes, attrs, calls, result):
    _arrays("concatenate", shapes)
    (axis,) = attrs["dimensions"]
    first = shapes[0]
    if not 0 <= axis < first.rank:
        raise _fail("concatenate", f"dimension {axis} out of range", shapes)
    for s in shapes[1:]:
        same = all(a == b for i, (a, b) in enumerate(zip(s.dims, first.dims)) if i != axis)
        if s.rank != first.rank or not same or s.dtype != first.dtype:
            raise _fail("concatenate", "operands differ outside the concatenated dimension",
                        shapes)
    dims = list(first.dims)
    dims[axis] = sum(s.dims[axis] for s in shapes)
    return ArrayShape(first.dtype, tuple(dims))


def _pad(shapes, attrs, calls, result):
    operand, value = shapes
    config = attrs["padding"]
    if value.rank != 0 or value.dtype != operand.dtype or len(config) != operand.rank:
        raise _fail("pad", "needs a scalar pad value and one lo_hi_interior per dim", shapes)
    dims = []
    for (lo, hi, interior), d in zip(config, operand.dims):
        size = lo + hi + d + max(d - 1, 0) * interior
        if interior < 0 or size < 0:
            raise _fail("pad", f"padding {lo}_{hi}_{interior} gives a negative size", shapes)
        dims.append(size)
    return ArrayShape(operand.dtype, tuple(dims))


def _reverse(shapes, attrs, calls, result):
    (operand,) = shapes
    if any(not 0 <= d < operand.rank for d in attrs["dimensions"]):
        raise _fail("reverse", f"dimensions {list(attrs['dimensions'])} out of range", shapes)
    return operand


def _reduce(shapes, attrs, calls, result):
    n = len(shapes) // 2
    inputs, inits = shapes[:n], shapes[n:]
    dims = attrs["dimensions"]
    if n == 0 or len(shapes) % 2:
        raise _fail("reduce", "needs as many init values as inputs", shapes)
    for s in inputs:
        if s.dims != inputs[0].dims:
            raise _fail("reduce", "inputs must have equal dims", shapes)
    if any(i.rank != 0 for i in inits):
        raise _fail("reduce", "init values must be scalars", shapes)
    if len(set(dims)) != len(dims) or any(not 0 <= d < inputs[0].rank for d in dims):
        raise _fail("reduce", f"dimensions={list(dims)} out of range", shapes)
    kept = tuple(d for i, d in enumerate(inputs[0].dims) if i not in dims)
    outs = [ArrayShape(init.dtype, kept) for init in inits]
    return outs[0] if n == 1 else TupleShape(tuple(outs))


def _dot(shapes, attrs, calls, result):
    lhs, rhs = shapes
    lb = attrs.get("lhs_batch_dims", ())
    rb = attrs.get("rhs_batch_dims", ())
    lc = attrs.get("lhs_contracting_dims", ())
    rc = attrs.get("rhs_contracting_dims", ())
    if len(lb) != len(rb) or len(lc) != len(rc):
        raise _fail("dot", "batch and contracting dims must pair up", shapes)
    for a, b in list(zip(lb, rb)) + list(zip(lc, rc)):
        if not (0 <= a < lhs.rank and 0 <= b < rhs.rank) or lhs.dims[a] != rhs.dims[b]:
            raise _fail("dot", f"lhs dim {a} and rhs dim {b} do not match", shapes)
    if lhs.dtype != rhs.dtype:
        raise _fail("dot", "operands must have the same element type", shapes)
    lfree = [d for i, d in enumerate(lhs.dims) if i not in lb and i not in lc]
    rfree = [d for i, d in enumerate(rhs.dims) if i not in rb and i not in rc]
    dims = tuple([lhs.dims[i] for i in lb] + lfree + rfree)
    dtype = result.dtype if result is not None and not result.is_tuple else lhs.dtype
    return ArrayShape(dtype, dims)


def _gather(shapes, attrs, calls, result):
    operand, indices = shapes
    offset_dims = attrs["offset_dims"]
    collapsed = attrs.get("collapsed_slice_dims", ())
    start_map = attrs["start_index_map"]
    ivd = attrs["index_vector_dim"]
    slice_sizes = attrs["slice_sizes"]
    operand_batching = attrs.get("operand_batching_dims", ())
    if not indices.dtype.is_int:
        raise _fail("gather", "indices must be integers", shapes)
    if len(slice_sizes) != operand.rank or any(
            not 0 <= s <= d for s, d in zip(slice_sizes, operand.dims)):
        raise _fail("gather", f"slice_sizes {list(slice_sizes)} do not fit the operand", shapes)
    index_dims = list(indices.dims)
    if ivd == indices.rank:
        index_dims.append(1)
    if index_dims[ivd] != len(start_map):
        raise _fail("gather", "index vector length must equal len(start_index_map)", shapes)
    batch_dims = [d for i, d in enumerate(index_dims) if i != ivd]
    offsets = [s for i, s in enumerate(slice_sizes) if i not in collapsed
               and i not in operand_batching]
    rank = len(batch_dims) + len(offsets)
    dims, b, o = [], iter(batch_dims), iter(offsets)
    for i in range(rank):
        dims.append(next(o) if i in offset_dims else next(b))
    return ArrayShape(operand.dtype, tuple(dims))


def _scatter(shapes, attrs, calls, result):
    operand, indices, updates = shapes
    if not indices.dtype.is_int or updates.dtype != operand.dtype:
        raise _fail("scatter", "indices must be integers and updates match the operand", shapes)
    return operand


def _tuple(shapes, attrs, calls, result):
    return TupleShape(tuple(shapes))


def _get_tuple_element(shapes, attrs, calls, result):
    (operand,) = shapes
    index = attrs["index"]
    if not operand.is_tuple or not 0 <= index < len(operand.elements):
        raise _fail("get-tuple-element", f"index {index} out of range", shapes)
    return operand.elements[index]


def _callee_result(attr: str) -> ShapeRule:
    def rule(shapes, attrs, calls, result):
        callee = calls[attr]
        params = [p.shape for p in callee.parameters]
        if list(shapes) != params:
            raise _fail(attr, f"arguments do not match %{callee.name}'s parameters "
                        f"({', '.join(map(str, params))})", shapes)
        return callee.root.shape
    return rule


def _while(shapes, attrs, calls, result):
    (state,) = shapes
    body, cond = calls["body"], calls["condition"]
    if body.root.shape != state or [p.shape for p in body.parameters] != [state]:
        raise _fail("while", "body must map the state shape to itself", shapes)
    if cond.root.shape != ArrayShape(DType.PRED, ()):
        raise _fail("while", "condition must return pred[]", shapes)
    return state


def _conditional(shapes, attrs, calls, result):
    selector, *args = shapes
    branches = calls.get("branch_computations") or [calls["true_computation"],
                                                     calls["false_computation"]]
    if len(branches) != len(args):
        raise _fail("conditional", "needs one operand per branch", shapes)
    out = branches[0].root.shape
    for branch, arg in zip(branches, args):
        if [p.shape for p in branch.parameters] != [arg] or branch.root.shape != out:
            raise _fail("conditional", f"branch %{branch.name} does not fit its operand", shapes)
    return out


def _rng_bit_generator(shapes, attrs, calls, result):
    if result is None or not result.is_tuple:
        raise _fail("rng-bit-generator", "needs a (state, bits) result shape", shapes)
    return result


def _custom_call(shapes, attrs, calls, result):
    target = attrs.get("custom_call_target")
    if target == "stop_gradient":
        if len(shapes) != 1:
            raise _fail("custom-call", "stop_gradient takes one operand", shapes)
        return shapes[0]
    callees = calls.get("called_computations") or []
    if target == "flowjit.custom_vjp" and callees:
        return callees[0].root.shape
    if result is None:
        raise _fail("custom-call", f"unknown target {target!r} needs a declared shape", shapes)
    return result


def _parameter(shapes, attrs, calls, result):
    return result


def _unary(name, dtypes="float", **flags):
    return OpSpec(name, 1, _elementwise(name, dtypes), elementwise=True, dtypes=dtypes, **flags)


def _binary(name, dtypes="numeric", **flags):
    return OpSpec(name, 2, _elementwise(name, dtypes), elementwise=True, dtypes=dtypes, **flags)


_SPECS = [
    OpSpec("parameter", 0, _parameter, attrs=("number",)),
    OpSpec("constant", 0, _declared("constant")),
    OpSpec("iota", 0, _iota, attrs=("iota_dimension",), differentiable=False),
    OpSpec("convert", 1, _convert, elementwise=True),
    OpSpec("copy", 1, _elementwise("copy", "any"), elementwise=True),
    OpSpec("bitcast-convert", 1, _bitcast_convert, elementwise=True, differentiable=False),
    _unary("negate", "numeric"), _unary("abs", "numeric"), _unary("sign", "numeric"),
    _unary("exponential"), _unary("exponential-minus-one"), _unary("log"),
    _unary("log-plus-one"), _unary("sqrt"), _unary("rsqrt"), _unary("cbrt"), _unary("tanh"),
    _unary("logistic"), _unary("sine"), _unary("cosine"), _unary("tan"), _unary("erf"),
    _unary("floor"), _unary("ceil"), _unary("round-nearest-even"),
    _unary("round-nearest-afz"),
    _unary("not", "logical", differentiable=False),
    OpSpec("is-finite", 1, _elementwise("is-finite", "float", DType.PRED), elementwise=True,
           differentiable=False),
    _binary("add", commutative=True), _binary("subtract"), _binary("multiply", commutative=True),
    _binary("divide"), _binary("remainder"), _binary("power"),
    _binary("maximum", commutative=True), _binary("minimum", commutative=True),
    _binary("atan2", "float"),
    _binary("and", "logical", commutative=True, differentiable=False),
    _binary("or", "logical", commutative=True, differentiable=False),
    _binary("xor", "logical", commutative=True, differentiable=False),
    _binary("shift-left", "int", differentiable=False),
    _binary("shift-right-arithmetic", "int", differentiable=False),
    _binary("shift-right-logical", "int", differentiable=False),
    OpSpec("compare", 2, _compare, attrs=("direction",), elementwise=True,
           differentiable=False, optional_attrs=("type",)),
    OpSpec("select", 3, _select, elementwise=True),
    OpSpec("clamp", 3, _clamp, elementwise=True),
    OpSpec("broadcast", 1, _broadcast, attrs=("dimensions",)),
    OpSpec("reshape", 1, _reshape),
    OpSpec("transpose", 1, _transpose, attrs=("dimensions",)),
    OpSpec("slice", 1, _slice, attrs=("slice",)),
    OpSpec("dynamic-slice", None, _dynamic_slice, attrs=("dynamic_slice_sizes",)),
    OpSpec("dynamic-update-slice", None, _dynamic_update_slice),
    OpSpec("concatenate", None, _concatenate, attrs=("dimensions",)),
    OpSpec("pad", 2, _pad, attrs=("padding",)),
    OpSpec("reverse", 1, _reverse, attrs=("dimensions",)),
    OpSpec("reduce", None, _reduce, attrs=("dimensions", "to_apply")),
    OpSpec("dot", 2, _dot, optional_attrs=("lhs_batch_dims", "rhs_batch_dims",
                                            "lhs_contracting_dims", "rhs_contracting_dims")),
    OpSpec("gather", 2, _gather, attrs=("offset_dims", "start_index_map", "index_vector_dim",
                                         "slice_sizes")),
    OpSpec("scatter", 3, _scatter, attrs=("update_window_dims", "scatter_dims_to_operand_dims",
                                           "index_vector_dim", "to_apply")),
    OpSpec("tuple", None, _tuple),
    OpSpec("get-tuple-element", 1, _get_tuple_element, attrs=("index",)),
    OpSpec("call", None, _callee_result("to_apply"), attrs=("to_apply",)),
    OpSpec("fusion", None, _callee_result("calls"), attrs=("calls", "kind")),
    OpSpec("while", 1, _while, attrs=("condition", "body")),
    OpSpec("conditional", None, _conditional),
    OpSpec("custom-call", None, _custom_call, attrs=("custom_call_target",),
           side_effecting=False),
    OpSpec("rng-bit-generator", 1, _rng_bit_generator, attrs=("algorithm",),
           differentiable=False),
]

OPS: dict[str, OpSpec] = {spec.name: spec for spec in _SPECS}


def spec(opcode: str) -> OpSpec:
    """The declaration of `opcode`; KeyError names the unknown opcode."""
    try:
        return OPS[opcode]
    except KeyError:
        raise KeyError(f"unknown opcode '{opcode}'") from None


def infer_shape(opcode: str, operand_shapes: list[Shape], attrs: dict, calls: dict,
                declared: Optional[Shape] = None) -> Shape:
    """The result shape of `opcode` on these operands; ShapeError if they do not fit."""
    op = spec(opcode)
    if op.arity is not None and len(operand_shapes) != op.arity:
        raise _fail(opcode, f"takes {op.arity} operands, got {len(operand_shapes)}",
                    operand_shapes)
    for name in op.attrs:
        if name not in attrs and name not in calls:
            raise _fail(opcode, f"missing attribute '{name}'", operand_shapes)
    return op.shape_rule(list(operand_shapes), attrs, calls, declared)
