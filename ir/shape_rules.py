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
from flowjit.ir.lapack_targets import lapack_result_shape
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
    arrays_only("slice", shapes)
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


def check_start_indices(opcode: str, starts, rank: int, shapes) -> None:
    """One integer scalar start index per operand dimension, all of one type (as XLA)."""
    if len(starts) != rank:
        raise fail(opcode, f"needs {rank} start indices (one per operand dimension), got "
                   f"{len(starts)}", shapes)
    if any(not s.dtype.is_int or s.rank != 0 for s in starts):
        raise fail(opcode, "start indices must be integer scalars", shapes)
    if len({s.dtype for s in starts}) > 1:
        raise fail(opcode, "start indices must all have the same element type", shapes)


def dynamic_slice_rule(shapes, attrs, calls, result):
    arrays_only("dynamic-slice", shapes)
    if not shapes:
        raise fail("dynamic-slice", "needs an operand", shapes)
    operand, *starts = shapes
    sizes = attrs["dynamic_slice_sizes"]
    check_start_indices("dynamic-slice", starts, operand.rank, shapes)
    if len(sizes) != operand.rank:
        raise fail("dynamic-slice", f"dynamic_slice_sizes={list(sizes)} needs one size per "
                   f"operand dimension", shapes)
    if any(not 0 <= z <= d for z, d in zip(sizes, operand.dims)):
        raise fail("dynamic-slice", f"sizes {list(sizes)} do not fit in the operand", shapes)
    return ArrayShape(operand.dtype, tuple(sizes))


def dynamic_update_slice_rule(shapes, attrs, calls, result):
    arrays_only("dynamic-update-slice", shapes)
    if len(shapes) < 2:
        raise fail("dynamic-update-slice", "needs an operand and an update", shapes)
    operand, update, *starts = shapes
    if update.rank != operand.rank or update.dtype != operand.dtype:
        raise fail("dynamic-update-slice", "update must match the operand's rank and type",
                    shapes)
    if any(u > d for u, d in zip(update.dims, operand.dims)):
        raise fail("dynamic-update-slice", "update is larger than the operand", shapes)
    check_start_indices("dynamic-update-slice", starts, operand.rank, shapes)
    return operand


def concatenate_rule(shapes, attrs, calls, result):
    arrays_only("concatenate", shapes)
    if not shapes:
        raise fail("concatenate", "needs at least one operand", shapes)
    if len(attrs["dimensions"]) != 1:
        raise fail("concatenate", f"dimensions={list(attrs['dimensions'])} must name one "
                   "dimension", shapes)
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
    arrays_only("pad", shapes)
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
    arrays_only("reverse", shapes)
    (operand,) = shapes
    check_dimension_numbers("reverse", "dimensions", attrs["dimensions"], operand.rank, shapes)
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
    if any(i.dtype != s.dtype for i, s in zip(inits, inputs)):
        raise fail("reduce", "each init value must have its input's element type", shapes)
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
    arrays_only("dot", shapes)
    if len(lb) != len(rb) or len(lc) != len(rc):
        raise fail("dot", "batch and contracting dims must pair up", shapes)
    for side, batch, contracting, rank in (("lhs", lb, lc, lhs.rank), ("rhs", rb, rc, rhs.rank)):
        check_dimension_numbers("dot", f"{side} batch and contracting dims",
                                tuple(batch) + tuple(contracting), rank, shapes)
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


def check_dimension_numbers(opcode: str, name: str, numbers, rank: int, shapes,
                            ordered: bool = False) -> None:
    """`numbers` name distinct dimensions in [0, rank), ascending when `ordered`."""
    numbers = list(numbers)
    if any(not 0 <= n < rank for n in numbers):
        raise fail(opcode, f"{name}={numbers} must be in [0, {rank})", shapes)
    if len(set(numbers)) != len(numbers):
        raise fail(opcode, f"{name}={numbers} repeats a dimension", shapes)
    if ordered and numbers != sorted(numbers):
        raise fail(opcode, f"{name}={numbers} must be sorted", shapes)


def check_disjoint(opcode: str, names: tuple[str, str], a, b, shapes) -> None:
    if set(a) & set(b):
        raise fail(opcode, f"{names[0]}={list(a)} and {names[1]}={list(b)} share a dimension",
                   shapes)


def check_index_vector(opcode: str, indices: ArrayShape, ivd: int, index_map, map_name: str,
                       batching, batching_name: str, shapes) -> list[int]:
    """The checks gather and scatter share on their indices (StableHLO gather C2-C3,
    C13-C15; scatter C12-C14, C17, C20); returns the dims of the indices' batch
    (every dim but index_vector_dim), in order."""
    if not indices.dtype.is_int:
        raise fail(opcode, "indices must be integers", shapes)
    if not 0 <= ivd <= indices.rank:
        raise fail(opcode, f"index_vector_dim={ivd} must be in [0, {indices.rank}]", shapes)
    vector = indices.dims[ivd] if ivd < indices.rank else 1
    if len(index_map) != vector:
        raise fail(opcode, f"{map_name} has {len(index_map)} entries but the index vector "
                   f"(dim {ivd} of the indices) has {vector}", shapes)
    check_dimension_numbers(opcode, batching_name, batching, indices.rank, shapes)
    if ivd in batching:
        raise fail(opcode, f"{batching_name}={list(batching)} contains index_vector_dim",
                   shapes)
    return [d for i, d in enumerate(indices.dims) if i != ivd]


def check_batching_sizes(opcode: str, operand: ArrayShape, indices: ArrayShape, names,
                         operand_batching, index_batching, shapes) -> None:
    if len(operand_batching) != len(index_batching):
        raise fail(opcode, f"{names[0]} and {names[1]} must have the same length", shapes)
    for o, i in zip(operand_batching, index_batching):
        if operand.dims[o] != indices.dims[i]:
            raise fail(opcode, f"batching dims {o} of the operand and {i} of the indices "
                       "differ in size", shapes)


def gather_rule(shapes, attrs, calls, result):
    """Checks every constraint of StableHLO's gather (as XLA's ShapeInference does)."""
    arrays_only("gather", shapes)
    operand, indices = shapes
    offset_dims = attrs["offset_dims"]
    collapsed = attrs.get("collapsed_slice_dims", ())
    start_map = attrs["start_index_map"]
    ivd = attrs["index_vector_dim"]
    slice_sizes = attrs["slice_sizes"]
    operand_batching = attrs.get("operand_batching_dims", ())
    index_batching = attrs.get("start_indices_batching_dims", ())
    batch_dims = check_index_vector("gather", indices, ivd, start_map, "start_index_map",
                                    index_batching, "start_indices_batching_dims", shapes)
    rank = len(offset_dims) + len(batch_dims)
    check_dimension_numbers("gather", "offset_dims", offset_dims, rank, shapes, ordered=True)
    check_dimension_numbers("gather", "collapsed_slice_dims", collapsed, operand.rank, shapes,
                            ordered=True)
    check_dimension_numbers("gather", "operand_batching_dims", operand_batching, operand.rank,
                            shapes, ordered=True)
    check_dimension_numbers("gather", "start_index_map", start_map, operand.rank, shapes)
    check_disjoint("gather", ("collapsed_slice_dims", "operand_batching_dims"), collapsed,
                   operand_batching, shapes)
    check_disjoint("gather", ("start_index_map", "operand_batching_dims"), start_map,
                   operand_batching, shapes)
    check_batching_sizes("gather", operand, indices, ("operand_batching_dims",
                         "start_indices_batching_dims"), operand_batching, index_batching,
                         shapes)
    if len(slice_sizes) != operand.rank or any(
            not 0 <= s <= d for s, d in zip(slice_sizes, operand.dims)):
        raise fail("gather", f"slice_sizes {list(slice_sizes)} do not fit the operand", shapes)
    if any(slice_sizes[d] > 1 for d in tuple(collapsed) + tuple(operand_batching)):
        raise fail("gather", "collapsed and batching dims must have slice size 0 or 1", shapes)
    offsets = [s for i, s in enumerate(slice_sizes) if i not in collapsed
               and i not in operand_batching]
    if len(offsets) != len(offset_dims):
        raise fail("gather", f"offset_dims={list(offset_dims)} must have one entry per "
                   f"operand dim that is neither collapsed nor batching ({len(offsets)})",
                   shapes)
    dims, b, o = [], iter(batch_dims), iter(offsets)
    for i in range(rank):
        dims.append(next(o) if i in offset_dims else next(b))
    return ArrayShape(operand.dtype, tuple(dims))


def scatter_rule(shapes, attrs, calls, result):
    """Checks every constraint of StableHLO's scatter (as XLA's ShapeInference does); the
    update computation is checked by the verifier."""
    arrays_only("scatter", shapes)
    operand, indices, updates = shapes
    window_dims = attrs["update_window_dims"]
    inserted = attrs.get("inserted_window_dims", ())
    to_operand = attrs["scatter_dims_to_operand_dims"]
    ivd = attrs["index_vector_dim"]
    operand_batching = attrs.get("input_batching_dims", ())
    index_batching = attrs.get("scatter_indices_batching_dims", ())
    if updates.dtype != operand.dtype:
        raise fail("scatter", "updates must have the operand's element type", shapes)
    scatter_sizes = check_index_vector("scatter", indices, ivd, to_operand,
                                       "scatter_dims_to_operand_dims", index_batching,
                                       "scatter_indices_batching_dims", shapes)
    check_dimension_numbers("scatter", "update_window_dims", window_dims, updates.rank,
                            shapes, ordered=True)
    check_dimension_numbers("scatter", "inserted_window_dims", inserted, operand.rank, shapes,
                            ordered=True)
    check_dimension_numbers("scatter", "input_batching_dims", operand_batching, operand.rank,
                            shapes, ordered=True)
    check_dimension_numbers("scatter", "scatter_dims_to_operand_dims", to_operand,
                            operand.rank, shapes)
    check_disjoint("scatter", ("inserted_window_dims", "input_batching_dims"), inserted,
                   operand_batching, shapes)
    check_disjoint("scatter", ("scatter_dims_to_operand_dims", "input_batching_dims"),
                   to_operand, operand_batching, shapes)
    check_batching_sizes("scatter", operand, indices, ("input_batching_dims",
                         "scatter_indices_batching_dims"), operand_batching, index_batching,
                         shapes)
    window_bounds = [d for i, d in enumerate(operand.dims) if i not in inserted
                     and i not in operand_batching]
    if len(window_dims) != len(window_bounds):
        raise fail("scatter", f"update_window_dims={list(window_dims)} must have one entry "
                   f"per operand dim that is neither inserted nor batching "
                   f"({len(window_bounds)})", shapes)
    if updates.rank != len(window_dims) + len(scatter_sizes):
        raise fail("scatter", f"updates must have rank {len(window_dims) + len(scatter_sizes)}"
                   f" ({len(window_dims)} window dims and the indices' "
                   f"{len(scatter_sizes)} batch dims)", shapes)
    update_scatter = [d for i, d in enumerate(updates.dims) if i not in window_dims]
    if update_scatter != scatter_sizes:
        raise fail("scatter", f"the updates' scatter dims {update_scatter} must equal the "
                   f"indices' batch dims {scatter_sizes}", shapes)
    for k, bound in zip(window_dims, window_bounds):
        if updates.dims[k] > bound:
            raise fail("scatter", f"update window dim {k} ({updates.dims[k]}) is larger than "
                       f"the operand's ({bound})", shapes)
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
    if [p.shape for p in cond.parameters] != [state]:
        raise fail("while", "condition must take the state as its one parameter", shapes)
    if cond.root.shape != ArrayShape(DType.PRED, ()):
        raise fail("while", "condition must return pred[]", shapes)
    return state


def conditional_rule(shapes, attrs, calls, result):
    selector, *args = shapes
    branches = calls.get("branch_computations") or [calls["true_computation"],
                                                     calls["false_computation"]]
    if len(branches) != len(args) or not branches:
        raise fail("conditional", "needs one operand per branch", shapes)
    indexed = "branch_computations" in calls
    wanted = "an s32[] branch index" if indexed else "a pred[] selector"
    if selector.is_tuple or selector.rank != 0 or selector.dtype != (
            DType.S32 if indexed else DType.PRED):
        raise fail("conditional", f"the first operand must be {wanted}", shapes)
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
    lapack = lapack_result_shape(target, shapes, attrs) if isinstance(target, str) else None
    if lapack is not None:
        return lapack
    if (target in ("flowjit.custom_vjp", "flowjit.custom_jvp")
            or target.startswith("flowjit.checkpoint.")) and callees:
        return callee_result("called_computations")(shapes, attrs,
                                                    {"called_computations": callees[0]}, result)
    if result is None:
        raise fail("custom-call", f"unknown target {target!r} needs a declared shape", shapes)
    return result


def parameter_rule(shapes, attrs, calls, result):
    return result


def dilated_size(size: int, dilation: int) -> int:
    """How many positions `size` elements span with `dilation - 1` holes between them."""
    return 0 if size == 0 else (size - 1) * dilation + 1


def window_output_size(base: int, dim) -> int:
    """Positions a window dimension (`WindowDim`) takes over a base of `base` elements:
    XLA's StridedBound of the padded, dilated base (0 when the window does not fit)."""
    bound = dilated_size(base, dim.base_dilation) + dim.padding_low + dim.padding_high
    window = dilated_size(dim.size, dim.window_dilation)
    return 0 if bound < window else (bound - window) // dim.stride + 1


def convolution_rule(shapes, attrs, calls, result):
    """XLA's ShapeInference::InferConvolveShape: labels of the operands' rank, one window
    dimension per spatial dimension of the kernel's size, groups that divide the features
    (feature_group_count) or the batch (batch_group_count), never both."""
    arrays_only("convolution", shapes)
    lhs, rhs = shapes
    labels = attrs["dim_labels"]
    window = attrs.get("window", ())
    features = attrs.get("feature_group_count", 1)
    batches = attrs.get("batch_group_count", 1)

    def bad(message):
        return fail("convolution", message, shapes)
    if lhs.rank != len(labels.lhs) or rhs.rank != len(labels.rhs):
        raise bad(f"dim_labels={labels.text()} is for rank {len(labels.lhs)} operands")
    if lhs.dtype != rhs.dtype:
        raise bad("operands must have the same element type")
    check_dtype("convolution", "numeric", shapes)
    if features < 1 or batches < 1:
        raise bad(f"feature_group_count={features} and batch_group_count={batches} must "
                  "be >= 1")
    if features > 1 and batches > 1:
        raise bad("feature_group_count and batch_group_count cannot both be above 1")
    if len(window) != labels.spatial_count:
        raise bad(f"window has {len(window)} dimensions for {labels.spatial_count} spatial "
                  "dimensions")
    kernel_spatial = [rhs.dims[d] for d in labels.rhs[2:]]
    for k, (dim, size) in enumerate(zip(window, kernel_spatial)):
        if dim.size != size:
            raise bad(f"window size {dim.size} in spatial dimension {k} differs from the "
                      f"kernel's {size}")
        if dim.size < 1 or dim.stride < 1 or dim.base_dilation < 1 or dim.window_dilation < 1:
            raise bad(f"window dimension {k} has a size, stride or dilation below 1")
    batch, in_features = lhs.dims[labels.lhs[0]], lhs.dims[labels.lhs[1]]
    out_features, kernel_in = rhs.dims[labels.rhs[0]], rhs.dims[labels.rhs[1]]
    if in_features % features or in_features // features != kernel_in:
        raise bad(f"input features ({in_features}) / feature_group_count ({features}) must "
                  f"equal the kernel's input features ({kernel_in})")
    if out_features % features or out_features % batches:
        raise bad(f"kernel output features ({out_features}) must be a multiple of "
                  f"feature_group_count ({features}) and batch_group_count ({batches})")
    if batch % batches:
        raise bad(f"batch ({batch}) must be a multiple of batch_group_count ({batches})")
    dims = [0] * lhs.rank
    dims[labels.out[0]], dims[labels.out[1]] = batch // batches, out_features
    for k, dim in enumerate(window):
        size = dilated_size(lhs.dims[labels.lhs[2 + k]], dim.base_dilation)
        if size + dim.padding_low + dim.padding_high < 0:
            raise bad(f"padding {dim.padding_low}_{dim.padding_high} is more negative than "
                      f"spatial dimension {k} is large ({size})")
        dims[labels.out[2 + k]] = window_output_size(lhs.dims[labels.lhs[2 + k]], dim)
    dtype = result.dtype if result is not None and not result.is_tuple else lhs.dtype
    return ArrayShape(dtype, tuple(dims))
def _window_output(opcode: str, operand: ArrayShape, window, shapes) -> tuple[int, ...]:
    from flowjit.ir.windows import output_dims, window_problem
    problem = window_problem(operand.dims, window)
    if problem:
        raise fail(opcode, problem, shapes)
    return output_dims(operand.dims, window)


def reduce_window_rule(shapes, attrs, calls, result):
    """N operands of equal dims, then N scalar init values of their element types; a tuple
    of N results when N > 1 (XLA's InferReduceWindowShape)."""
    n = len(shapes) // 2
    inputs, inits = shapes[:n], shapes[n:]
    arrays_only("reduce-window", shapes)
    if n == 0 or len(shapes) % 2:
        raise fail("reduce-window", "needs as many init values as operands", shapes)
    if any(s.dims != inputs[0].dims for s in inputs):
        raise fail("reduce-window", "operands must have equal dims", shapes)
    if any(i.rank != 0 for i in inits):
        raise fail("reduce-window", "init values must be scalars", shapes)
    if any(i.dtype != s.dtype for i, s in zip(inits, inputs)):
        raise fail("reduce-window", "each init value must have its operand's element type",
                   shapes)
    dims = _window_output("reduce-window", inputs[0], attrs["window"], shapes)
    outs = [ArrayShape(s.dtype, dims) for s in inputs]
    return outs[0] if n == 1 else TupleShape(tuple(outs))


def select_and_scatter_rule(shapes, attrs, calls, result):
    """(operand, source, init): the source has one element per window position over the
    operand; the result has the operand's shape (XLA's InferSelectAndScatterShape)."""
    arrays_only("select-and-scatter", shapes)
    operand, source, init = shapes
    window = attrs["window"]
    if any(w.base_dilation != 1 or w.window_dilation != 1 for w in window):
        raise fail("select-and-scatter", "window dilation is not allowed", shapes)
    dims = _window_output("select-and-scatter", operand, window, shapes)
    if source.dims != dims:
        raise fail("select-and-scatter", f"source dims {list(source.dims)} must be the "
                   f"window's positions over the operand, {list(dims)}", shapes)
    if init.rank != 0:
        raise fail("select-and-scatter", "init value must be a scalar", shapes)
    if not operand.dtype == source.dtype == init.dtype:
        raise fail("select-and-scatter", "operand, source and init value must have one "
                   "element type", shapes)
    return ArrayShape(operand.dtype, operand.dims)


def _float_matrices(opcode: str, shapes) -> None:
    arrays_only(opcode, shapes)
    check_dtype(opcode, "float", shapes)
    if any(s.rank < 2 for s in shapes):
        raise fail(opcode, "operands must be (batches of) matrices, rank >= 2", shapes)
    if shapes[0].dims[-1] != shapes[0].dims[-2]:
        raise fail(opcode, "a must be square in its last two dims", shapes)


def cholesky_rule(shapes, attrs, calls, result):
    """XLA's cholesky: a [..., n, n] -> its factor, the same shape."""
    _float_matrices("cholesky", shapes)
    return shapes[0]


TRANSPOSE_A = ("NO_TRANSPOSE", "TRANSPOSE", "ADJOINT")


def triangular_solve_rule(shapes, attrs, calls, result):
    """XLA's triangular-solve: a [..., k, k], b [..., m, n] with k = m (left_side) or n;
    the same batch dims and element type; the result has b's shape."""
    _float_matrices("triangular-solve", shapes)
    a, b = shapes
    if a.dtype != b.dtype or a.dims[:-2] != b.dims[:-2]:
        raise fail("triangular-solve", "a and b need one element type and batch dims", shapes)
    left = attrs.get("left_side", False)
    if a.dims[-1] != b.dims[-2 if left else -1]:
        side = "rows" if left else "columns"
        raise fail("triangular-solve", f"a's size must equal b's {side} "
                   f"(left_side={'true' if left else 'false'})", shapes)
    if attrs.get("transpose_a", "NO_TRANSPOSE") not in TRANSPOSE_A:
        raise fail("triangular-solve", f"transpose_a must be one of {', '.join(TRANSPOSE_A)}",
                   shapes)
    return b
def sort_rule(shapes, attrs, calls, result):
    """N operands of equal dims sorted along `dimensions={d}` (one dimension); the result
    has their shapes, a tuple when N > 1 (XLA's InferVariadicOpShape for kSort)."""
    arrays_only("sort", shapes)
    if not shapes:
        raise fail("sort", "needs at least one operand", shapes)
    if any(s.dims != shapes[0].dims for s in shapes):
        raise fail("sort", "operands must have equal dims", shapes)
    dims = attrs["dimensions"]
    if len(dims) != 1 or not 0 <= dims[0] < shapes[0].rank:
        raise fail("sort", f"dimensions={list(dims)} must name one dimension of the "
                   f"rank-{shapes[0].rank} operands", shapes)
    return shapes[0] if len(shapes) == 1 else TupleShape(tuple(shapes))


def topk_rule(shapes, attrs, calls, result):
    """(values, s32 indices) of the k largest (smallest with largest=false) elements along
    the last dimension: the operand's dims with the last one k."""
    arrays_only("topk", shapes)
    (operand,) = shapes
    k = attrs["k"]
    if operand.rank == 0:
        raise fail("topk", "the operand must have at least one dimension", shapes)
    if not 0 <= k <= operand.dims[-1]:
        raise fail("topk", f"k={k} must be in [0, {operand.dims[-1]}] (the last dimension)",
                   shapes)
    check_dtype("topk", "numeric", shapes)
    dims = operand.dims[:-1] + (k,)
    return TupleShape((ArrayShape(operand.dtype, dims), ArrayShape(DType.S32, dims)))
