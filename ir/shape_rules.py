"""Shape rules: each op's result shape from its operand shapes, attributes and callees.

A shape rule takes the operand shapes, the decoded attributes, the called computations and
the declared result shape (None when the caller wants it inferred) and returns the result
shape, or raises ShapeError naming the shapes involved. `flowjit.ir.ops` pairs each opcode
with its rule.
"""
from __future__ import annotations

from typing import Callable, Optional

from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError
from flowjit.ir.shapes import ArrayShape, Shape, TupleShape

ShapeRule = Callable[[list, dict, dict, Optional[Shape]], Shape]


def fail(opcode: str, message: str, shapes) -> ShapeError:
    shown = ", ".join(str(s) for s in shapes)
    return ShapeError(f"{opcode}: {message} (operands: {shown})")


DTYPE_CLASSES = {
    "any": lambda d: True,
    "float": lambda d: d.is_float,
    "numeric": lambda d: not d.is_pred,
    "int": lambda d: d.is_int,
    "logical": lambda d: d.is_int or d.is_pred,
    "signed": lambda d: d.is_float or d.is_signed_int,
}


def check_dtype(opcode: str, dtypes: str, shapes) -> None:
    for s in shapes:
        if not DTYPE_CLASSES[dtypes](s.dtype):
            raise fail(opcode, f"element type {s.dtype} is not allowed (needs {dtypes})", shapes)


def arrays_only(opcode: str, shapes) -> None:
    for s in shapes:
        if s.is_tuple:
            raise fail(opcode, "operand must be an array, not a tuple", shapes)


def elementwise(opcode: str, dtypes: str, result_dtype: Optional[DType] = None) -> ShapeRule:
    def rule(shapes, attrs, calls, result):
        arrays_only(opcode, shapes)
        first = shapes[0]
        for s in shapes[1:]:
            if s.dims != first.dims or s.dtype != first.dtype:
                raise fail(opcode, "operands must have equal shapes and element types", shapes)
        check_dtype(opcode, dtypes, shapes)
        return ArrayShape(result_dtype or first.dtype, first.dims)
    return rule


def declared(opcode: str) -> ShapeRule:
    """For ops whose result shape is part of their spelling (reshape, convert, ...)."""
    def rule(shapes, attrs, calls, result):
        if result is None:
            raise fail(opcode, "needs an explicit result shape", shapes)
        return result
    return rule


def convert_rule(shapes, attrs, calls, result):
    arrays_only("convert", shapes)
    if result is None or result.is_tuple or result.dims != shapes[0].dims:
        raise fail("convert", f"result {result} must have the operand's dimensions", shapes)
    return result


def bitcast_convert_rule(shapes, attrs, calls, result):
    if result is None or result.dims != shapes[0].dims or result.dtype.bits != shapes[0].dtype.bits:
        raise fail("bitcast-convert", f"result {result} must have the same dims and bit width",
                    shapes)
    return result


def compare_rule(shapes, attrs, calls, result):
    if attrs.get("direction") not in ("EQ", "NE", "LT", "LE", "GT", "GE"):
        raise fail("compare", f"bad direction {attrs.get('direction')!r}", shapes)
    return elementwise("compare", "any", DType.PRED)(shapes, attrs, calls, result)


def select_rule(shapes, attrs, calls, result):
    arrays_only("select", shapes)
    pred, a, b = shapes
    if a != b:
        raise fail("select", "both branches must have the same shape", shapes)
    if pred.dtype != DType.PRED or (pred.dims != a.dims and pred.dims != ()):
        raise fail("select", "predicate must be pred with the branches' dims (or scalar)", shapes)
    return a


def clamp_rule(shapes, attrs, calls, result):
    arrays_only("clamp", shapes)
    lo, x, hi = shapes
    for bound in (lo, hi):
        if bound.dtype != x.dtype or (bound.dims != x.dims and bound.dims != ()):
            raise fail("clamp", "bounds must match the operand or be scalars", shapes)
    return x


def iota_rule(shapes, attrs, calls, result):
    if result is None or result.is_tuple:
        raise fail("iota", "needs an array result shape", shapes)
    if not 0 <= attrs["iota_dimension"] < max(result.rank, 1) or result.rank == 0:
        raise fail("iota", f"iota_dimension {attrs['iota_dimension']} out of range for {result}",
                    shapes)
    return result


def broadcast_rule(shapes, attrs, calls, result):
    (operand,) = shapes
    dims = attrs["dimensions"]
    if result is None:
        raise fail("broadcast", "needs an explicit result shape", shapes)
    if len(dims) != operand.rank or len(set(dims)) != len(dims):
        raise fail("broadcast", f"dimensions={list(dims)} must map each operand dim once",
                    shapes)
    for i, d in enumerate(dims):
        if not 0 <= d < result.rank or operand.dims[i] != result.dims[d]:
            raise fail("broadcast", f"operand dim {i} cannot map to dim {d} of {result}", shapes)
    if result.dtype != operand.dtype:
        raise fail("broadcast", f"result {result} changes the element type", shapes)
    return result


def reshape_rule(shapes, attrs, calls, result):
    (operand,) = shapes
    if result is None or result.size != operand.size or result.dtype != operand.dtype:
        raise fail("reshape", f"cannot reshape to {result}: sizes or element types differ",
                    shapes)
    return result


def transpose_rule(shapes, attrs, calls, result):
    (operand,) = shapes
    perm = attrs["dimensions"]
    if sorted(perm) != list(range(operand.rank)):
        raise fail("transpose", f"dimensions={list(perm)} is not a permutation", shapes)
    return ArrayShape(operand.dtype, tuple(operand.dims[p] for p in perm))


def slice_rule(shapes, attrs, calls, result):
    (operand,) = shapes
    spec = attrs["slice"]
    if len(spec) != operand.rank:
        raise fail("slice", f"slice has {len(spec)} ranges for rank {operand.rank}", shapes)
    dims = []
    for (start, limit, stride), size in zip(spec, operand.dims):
        if not (0 <= start <= limit <= size) or stride < 1:
            raise fail("slice", f"range [{start}:{limit}:{stride}] out of bounds for {size}",
                        shapes)
        dims.append(-(-(limit - start) // stride))
    return ArrayShape(operand.dtype, tuple(dims))


def dynamic_slice_rule(shapes, attrs, calls, result):
    operand, *starts = shapes
    sizes = attrs["dynamic_slice_sizes"]
    if len(starts) != operand.rank or len(sizes) != operand.rank:
        raise fail("dynamic-slice", "needs one start index and one size per dimension", shapes)
    if any(not s.dtype.is_int or s.rank != 0 for s in starts):
        raise fail("dynamic-slice", "start indices must be integer scalars", shapes)
    if any(not 0 <= z <= d for z, d in zip(sizes, operand.dims)):
        raise fail("dynamic-slice", f"sizes {list(sizes)} exceed the operand", shapes)
    return ArrayShape(operand.dtype, tuple(sizes))


def dynamic_update_slice_rule(shapes, attrs, calls, result):
    operand, update, *starts = shapes
    if len(starts) != operand.rank or update.rank != operand.rank or update.dtype != operand.dtype:
        raise fail("dynamic-update-slice", "update must match the operand's rank and type",
                    shapes)
    if any(u > d for u, d in zip(update.dims, operand.dims)):
        raise fail("dynamic-update-slice", "update is larger than the operand", shapes)
    if any(not s.dtype.is_int or s.rank != 0 for s in starts):
        raise fail("dynamic-update-slice", "start indices must be integer scalars", shapes)
    return operand


def concatenate_rule(shapes, attrs, calls, result):
    arrays_only("concatenate", shapes)
    (axis,) = attrs["dimensions"]
    first = shapes[0]
    if not 0 <= axis < first.rank:
        raise fail("concatenate", f"dimension {axis} out of range", shapes)
    for s in shapes[1:]:
        same = all(a == b for i, (a, b) in enumerate(zip(s.dims, first.dims)) if i != axis)
        if s.rank != first.rank or not same or s.dtype != first.dtype:
            raise fail("concatenate", "operands differ outside the concatenated dimension",
                        shapes)
    dims = list(first.dims)
    dims[axis] = sum(s.dims[axis] for s in shapes)
    return ArrayShape(first.dtype, tuple(dims))


def pad_rule(shapes, attrs, calls, result):
    operand, value = shapes
    config = attrs["padding"]
    if value.rank != 0 or value.dtype != operand.dtype or len(config) != operand.rank:
        raise fail("pad", "needs a scalar pad value and one lo_hi_interior per dim", shapes)
    dims = []
    for (lo, hi, interior), d in zip(config, operand.dims):
        size = lo + hi + d + max(d - 1, 0) * interior
        if interior < 0 or size < 0:
            raise fail("pad", f"padding {lo}_{hi}_{interior} gives a negative size", shapes)
        dims.append(size)
    return ArrayShape(operand.dtype, tuple(dims))


def reverse_rule(shapes, attrs, calls, result):
    (operand,) = shapes
    if any(not 0 <= d < operand.rank for d in attrs["dimensions"]):
        raise fail("reverse", f"dimensions {list(attrs['dimensions'])} out of range", shapes)
    return operand


def reduce_rule(shapes, attrs, calls, result):
    n = len(shapes) // 2
    inputs, inits = shapes[:n], shapes[n:]
    dims = attrs["dimensions"]
    if n == 0 or len(shapes) % 2:
        raise fail("reduce", "needs as many init values as inputs", shapes)
    for s in inputs:
        if s.dims != inputs[0].dims:
            raise fail("reduce", "inputs must have equal dims", shapes)
    if any(i.rank != 0 for i in inits):
        raise fail("reduce", "init values must be scalars", shapes)
    if len(set(dims)) != len(dims) or any(not 0 <= d < inputs[0].rank for d in dims):
        raise fail("reduce", f"dimensions={list(dims)} out of range", shapes)
    kept = tuple(d for i, d in enumerate(inputs[0].dims) if i not in dims)
    outs = [ArrayShape(init.dtype, kept) for init in inits]
    return outs[0] if n == 1 else TupleShape(tuple(outs))


def dot_rule(shapes, attrs, calls, result):
    lhs, rhs = shapes
    lb = attrs.get("lhs_batch_dims", ())
    rb = attrs.get("rhs_batch_dims", ())
    lc = attrs.get("lhs_contracting_dims", ())
    rc = attrs.get("rhs_contracting_dims", ())
    if len(lb) != len(rb) or len(lc) != len(rc):
        raise fail("dot", "batch and contracting dims must pair up", shapes)
    for a, b in list(zip(lb, rb)) + list(zip(lc, rc)):
        if not (0 <= a < lhs.rank and 0 <= b < rhs.rank) or lhs.dims[a] != rhs.dims[b]:
            raise fail("dot", f"lhs dim {a} and rhs dim {b} do not match", shapes)
    if lhs.dtype != rhs.dtype:
        raise fail("dot", "operands must have the same element type", shapes)
    lfree = [d for i, d in enumerate(lhs.dims) if i not in lb and i not in lc]
    rfree = [d for i, d in enumerate(rhs.dims) if i not in rb and i not in rc]
    dims = tuple([lhs.dims[i] for i in lb] + lfree + rfree)
    dtype = result.dtype if result is not None and not result.is_tuple else lhs.dtype
    return ArrayShape(dtype, dims)


def gather_rule(shapes, attrs, calls, result):
    operand, indices = shapes
    offset_dims = attrs["offset_dims"]
    collapsed = attrs.get("collapsed_slice_dims", ())
    start_map = attrs["start_index_map"]
    ivd = attrs["index_vector_dim"]
    slice_sizes = attrs["slice_sizes"]
    operand_batching = attrs.get("operand_batching_dims", ())
    if not indices.dtype.is_int:
        raise fail("gather", "indices must be integers", shapes)
    if len(slice_sizes) != operand.rank or any(
            not 0 <= s <= d for s, d in zip(slice_sizes, operand.dims)):
        raise fail("gather", f"slice_sizes {list(slice_sizes)} do not fit the operand", shapes)
    index_dims = list(indices.dims)
    if ivd == indices.rank:
        index_dims.append(1)
    if index_dims[ivd] != len(start_map):
        raise fail("gather", "index vector length must equal len(start_index_map)", shapes)
    batch_dims = [d for i, d in enumerate(index_dims) if i != ivd]
    offsets = [s for i, s in enumerate(slice_sizes) if i not in collapsed
               and i not in operand_batching]
    rank = len(batch_dims) + len(offsets)
    dims, b, o = [], iter(batch_dims), iter(offsets)
    for i in range(rank):
        dims.append(next(o) if i in offset_dims else next(b))
    return ArrayShape(operand.dtype, tuple(dims))


def scatter_rule(shapes, attrs, calls, result):
    operand, indices, updates = shapes
    if not indices.dtype.is_int or updates.dtype != operand.dtype:
        raise fail("scatter", "indices must be integers and updates match the operand", shapes)
    return operand


def tuple_rule(shapes, attrs, calls, result):
    return TupleShape(tuple(shapes))


def get_tuple_element_rule(shapes, attrs, calls, result):
    (operand,) = shapes
    index = attrs["index"]
    if not operand.is_tuple or not 0 <= index < len(operand.elements):
        raise fail("get-tuple-element", f"index {index} out of range", shapes)
    return operand.elements[index]


def callee_result(attr: str) -> ShapeRule:
    def rule(shapes, attrs, calls, result):
        callee = calls[attr]
        params = [p.shape for p in callee.parameters]
        if list(shapes) != params:
            raise fail(attr, f"arguments do not match %{callee.name}'s parameters "
                        f"({', '.join(map(str, params))})", shapes)
        return callee.root.shape
    return rule


def while_rule(shapes, attrs, calls, result):
    (state,) = shapes
    body, cond = calls["body"], calls["condition"]
    if body.root.shape != state or [p.shape for p in body.parameters] != [state]:
        raise fail("while", "body must map the state shape to itself", shapes)
    if cond.root.shape != ArrayShape(DType.PRED, ()):
        raise fail("while", "condition must return pred[]", shapes)
    return state


def conditional_rule(shapes, attrs, calls, result):
    selector, *args = shapes
    branches = calls.get("branch_computations") or [calls["true_computation"],
                                                     calls["false_computation"]]
    if len(branches) != len(args):
        raise fail("conditional", "needs one operand per branch", shapes)
    out = branches[0].root.shape
    for branch, arg in zip(branches, args):
        if [p.shape for p in branch.parameters] != [arg] or branch.root.shape != out:
            raise fail("conditional", f"branch %{branch.name} does not fit its operand", shapes)
    return out


def custom_call_rule(shapes, attrs, calls, result):
    target = attrs.get("custom_call_target")
    if target == "stop_gradient":
        if len(shapes) != 1:
            raise fail("custom-call", "stop_gradient takes one operand", shapes)
        return shapes[0]
    callees = calls.get("called_computations") or []
    if target == "flowjit.custom_vjp" and callees:
        return callees[0].root.shape
    if result is None:
        raise fail("custom-call", f"unknown target {target!r} needs a declared shape", shapes)
    return result


def parameter_rule(shapes, attrs, calls, result):
    return result
