"""Batching rules, one per opcode: `rule(b, inst, operands, bdims) -> (result, bdim)`.

`inst` is the unbatched instruction (its attributes), `operands` the batched operands and
`bdims` their batch dimensions (at least one is batched: an instruction with none is copied
unchanged by the pass). Rules emit IR through the `Batcher` and keep a batch dimension in
place when the op allows it, as JAX's rules do. Ops that call computations have their
rules in `passes.batching_control`, windowed ops in `passes.batching_windows`.
"""
from __future__ import annotations

from flowjit.ir.dtypes import DType
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import OPS, FusionRole
from flowjit.ir.shapes import ArrayShape
from flowjit.passes.batching import Batcher, BatchingError, batched_shape
from flowjit.passes import batching_control, batching_windows


def shift(dims, bdim: int) -> tuple:
    """Dimension numbers of the unbatched array, renumbered for a batch dim at `bdim`."""
    return tuple(d if d < bdim else d + 1 for d in dims)


def _shaped(inst, dims) -> ArrayShape:
    return ArrayShape(inst.shape.dtype, tuple(dims))


def elementwise(b: Batcher, inst, operands, bdims):
    """Every operand brought to the result's batch dim: the first full-rank batched
    operand's (no data moves in the common case), shared ones broadcast to match."""
    rank = inst.shape.rank
    full = [d for o, d in zip(inst.operands, bdims) if d is not None and o.shape.rank == rank]
    out = full[0] if full else 0
    dims = batched_shape(inst.shape, out, b.size).dims
    moved = []
    for original, value, bdim in zip(inst.operands, operands, bdims):
        if original.shape.rank < rank:       # a scalar predicate or bound (select, clamp)
            if bdim is not None:
                value = b.op("broadcast", value, shape=ArrayShape(value.shape.dtype, dims),
                             dimensions=(out,))
        elif bdim is None:
            value = b.op("broadcast", value, shape=ArrayShape(value.shape.dtype, dims),
                         dimensions=shift(range(rank), out))
        else:
            value = b.move(value, bdim, out)
        moved.append(value)
    return b.op(inst.opcode, *moved, shape=_shaped(inst, dims), **inst.attrs), out


def _broadcast(b, inst, operands, bdims):
    (x,), (bdim,) = operands, bdims
    x = b.to_front(x, bdim)
    dims = (0,) + tuple(d + 1 for d in inst.attrs["dimensions"])
    return b.op("broadcast", x, shape=batched_shape(inst.shape, 0, b.size), dimensions=dims), 0


def _reshape(b, inst, operands, bdims):
    x = b.to_front(operands[0], bdims[0])
    return b.reshape(x, (b.size,) + inst.shape.dims), 0


def _transpose(b, inst, operands, bdims):
    """The batch dim goes first and the permutation applies to the rest: one transpose."""
    bdim = bdims[0]
    perm = (bdim,) + shift(inst.attrs["dimensions"], bdim)
    return b.transpose(operands[0], perm), 0


def _slice(b, inst, operands, bdims):
    bdim = bdims[0]
    spec = list(inst.attrs["slice"])
    spec.insert(bdim, (0, b.size, 1))
    return b.op("slice", operands[0], slice=tuple(spec)), bdim


def _reverse(b, inst, operands, bdims):
    bdim = bdims[0]
    return b.op("reverse", operands[0], dimensions=shift(inst.attrs["dimensions"], bdim)), bdim


def _pad(b, inst, operands, bdims):
    (x, value), (bdim, value_bdim) = operands, bdims
    padding = list(inst.attrs["padding"])
    if value_bdim is None:
        padding.insert(bdim, (0, 0, 0))
        return b.op("pad", x, value, padding=tuple(padding)), bdim
    # A per-example padding value: pad with zeros, then choose by where the operand lies.
    x = b.to_front(x, bdim)
    zero = b.scalar(0, x.shape.dtype)
    padded = b.op("pad", x, zero, padding=((0, 0, 0),) + tuple(padding))
    inside = b.filled(True, ArrayShape(DType.PRED, inst.operands[0].shape.dims))
    mask = b.op("pad", inside, b.scalar(False, DType.PRED), padding=tuple(padding))
    mask = b.op("broadcast", mask, shape=ArrayShape(DType.PRED, padded.shape.dims),
                dimensions=tuple(range(1, padded.shape.rank)))
    fill = b.op("broadcast", value, shape=padded.shape, dimensions=(0,))
    return b.select(mask, padded, fill), 0


def _concatenate(b, inst, operands, bdims):
    parts = [b.to_front(x, d) for x, d in zip(operands, bdims)]
    (axis,) = inst.attrs["dimensions"]
    return b.op("concatenate", *parts, dimensions=(axis + 1,)), 0


def _reduce(b, inst, operands, bdims):
    n = len(operands) // 2
    if any(d is not None for d in bdims[n:]):
        raise BatchingError("a reduce whose init value depends on the mapped inputs is not "
                            "supported (its init value must be the same for every example)")
    batched = [d for d in bdims[:n] if d is not None]
    bdim = batched[0]
    inputs = [b.move(x, d, bdim) for x, d in zip(operands[:n], bdims[:n])]
    dims = shift(inst.attrs["dimensions"], bdim)
    out = bdim - sum(1 for d in dims if d < bdim)
    shape = batched_shape(inst.shape, out if n == 1 else (out,) * n, b.size)
    result = b.op("reduce", *inputs, *operands[n:], shape=shape, dimensions=dims,
                  calls=dict(inst.calls))
    return result, (out if n == 1 else (out,) * n)


def _dot(b, inst, operands, bdims):
    """Both batched: a new leading dot batch dimension. One batched: its batch dimension is
    a free dimension of the product (x[B,k] @ w[k,n] stays one matrix product)."""
    (lhs, rhs), (lb, rb) = operands, bdims
    attrs = inst.attrs
    lhs_batch, lhs_contract = attrs.get("lhs_batch_dims", ()), attrs.get("lhs_contracting_dims", ())
    rhs_batch, rhs_contract = attrs.get("rhs_batch_dims", ()), attrs.get("rhs_contracting_dims", ())
    if lb is not None and rb is not None:
        new = dict(lhs_batch_dims=(lb,) + shift(lhs_batch, lb),
                   lhs_contracting_dims=shift(lhs_contract, lb),
                   rhs_batch_dims=(rb,) + shift(rhs_batch, rb),
                   rhs_contracting_dims=shift(rhs_contract, rb))
        out = 0
    elif lb is not None:
        new = dict(lhs_batch_dims=shift(lhs_batch, lb), lhs_contracting_dims=shift(
            lhs_contract, lb), rhs_batch_dims=rhs_batch, rhs_contracting_dims=rhs_contract)
        used = set(new["lhs_batch_dims"]) | set(new["lhs_contracting_dims"])
        free = [d for d in range(lhs.shape.rank) if d not in used]
        out = len(lhs_batch) + free.index(lb)
    else:
        new = dict(lhs_batch_dims=lhs_batch, lhs_contracting_dims=lhs_contract,
                   rhs_batch_dims=shift(rhs_batch, rb),
                   rhs_contracting_dims=shift(rhs_contract, rb))
        used = set(new["rhs_batch_dims"]) | set(new["rhs_contracting_dims"])
        free = [d for d in range(rhs.shape.rank) if d not in used]
        lhs_free = lhs.shape.rank - len(lhs_batch) - len(lhs_contract)
        out = len(lhs_batch) + lhs_free + free.index(rb)
    new = {k: v for k, v in new.items() if v}
    shape = batched_shape(inst.shape, out, b.size)
    return b.op("dot", lhs, rhs, shape=shape, **new), out


def _plus(dims) -> tuple:
    return tuple(d + 1 for d in dims)


def _gather(b, inst, operands, bdims):
    """A batched operand is a leading offset (slice) dimension; batched indices are a
    leading index batch dimension; both batched: a gather batching dimension."""
    (operand, indices), (ob, ib) = operands, bdims
    a = inst.attrs
    collapsed, start_map = a.get("collapsed_slice_dims", ()), a["start_index_map"]
    operand_batching = a.get("operand_batching_dims", ())
    index_batching = a.get("start_indices_batching_dims", ())
    offset, sizes, ivd = a["offset_dims"], tuple(a["slice_sizes"]), a["index_vector_dim"]
    if ob is not None:
        operand = b.to_front(operand, ob)
        collapsed, start_map = _plus(collapsed), _plus(start_map)
        operand_batching = _plus(operand_batching)
    if ib is not None:
        indices = b.to_front(indices, ib)
        index_batching, ivd = _plus(index_batching), ivd + 1
    if ob is not None and ib is None:
        offset, sizes = (0,) + _plus(offset), (b.size,) + sizes
    elif ob is None:
        offset = _plus(offset)
    else:
        offset, sizes = _plus(offset), (1,) + sizes
        operand_batching, index_batching = (0,) + operand_batching, (0,) + index_batching
    attrs = dict(offset_dims=offset, collapsed_slice_dims=collapsed,
                 operand_batching_dims=operand_batching,
                 start_indices_batching_dims=index_batching, start_index_map=start_map,
                 index_vector_dim=ivd, slice_sizes=sizes)
    attrs.update({k: v for k, v in a.items() if k in ("indices_are_sorted", "unique_indices")})
    return b.op("gather", operand, indices, **_drop_empty(attrs)), 0


_OPTIONAL_DIMS = ("collapsed_slice_dims", "operand_batching_dims",
                  "start_indices_batching_dims", "inserted_window_dims", "input_batching_dims",
                  "scatter_indices_batching_dims")


def _drop_empty(attrs: dict) -> dict:
    """Optional dimension lists that are empty are left out, as XLA prints them."""
    return {k: v for k, v in attrs.items() if not (k in _OPTIONAL_DIMS and v == ())}


def _scatter(b, inst, operands, bdims):
    """Every operand batched at 0 (shared ones broadcast): the batch becomes a scatter
    batching dimension, so each example scatters into its own slice."""
    operand, indices, updates = (b.to_front(x, d) for x, d in zip(operands, bdims))
    a = inst.attrs
    new = dict(a)
    new.update(update_window_dims=_plus(a["update_window_dims"]),
               inserted_window_dims=_plus(a.get("inserted_window_dims", ())),
               input_batching_dims=(0,) + _plus(a.get("input_batching_dims", ())),
               scatter_indices_batching_dims=(0,) + _plus(
                   a.get("scatter_indices_batching_dims", ())),
               scatter_dims_to_operand_dims=_plus(a["scatter_dims_to_operand_dims"]),
               index_vector_dim=a["index_vector_dim"] + 1)
    return b.op("scatter", operand, indices, updates, calls=dict(inst.calls),
                **_drop_empty(new)), 0


def _index_vector(b, starts, bdims, limits):
    """The start indices as one s[B, n] array, each clamped into [0, limit] as dynamic-slice
    clamps them (gather and scatter would drop or clamp differently)."""
    columns = []
    for start, bdim, limit in zip(starts, bdims, limits):
        zero, top = b.scalar(0, start.shape.dtype), b.scalar(limit, start.shape.dtype)
        column = b.op("clamp", zero, b.to_front(start, bdim), top)
        columns.append(b.reshape(column, (b.size, 1)))
    return b.op("concatenate", *columns, dimensions=(1,))


def _zero_index(b, starts):
    """A start of 0 for the batch dimension, of the other starts' type (s32 for a scalar
    operand, which has none)."""
    return b.scalar(0, starts[0].shape.dtype if starts else DType.S32)


def _dynamic_slice(b, inst, operands, bdims):
    """Shared starts: one more (zero) start for the batch dim. Per-example starts: a gather
    with a batching dimension."""
    (x, *starts), (xb, *start_bdims) = operands, bdims
    sizes = tuple(inst.attrs["dynamic_slice_sizes"])
    if all(d is None for d in start_bdims):
        starts.insert(xb, _zero_index(b, starts))
        return b.op("dynamic-slice", x, *starts,
                    dynamic_slice_sizes=sizes[:xb] + (b.size,) + sizes[xb:]), xb
    dims = inst.operands[0].shape.dims
    index = _index_vector(b, starts, start_bdims, [d - s for d, s in zip(dims, sizes)])
    rank = len(dims)
    if xb is None:
        return b.op("gather", x, index, offset_dims=tuple(range(1, rank + 1)),
                    start_index_map=tuple(range(rank)), index_vector_dim=1,
                    slice_sizes=sizes), 0
    return b.op("gather", b.to_front(x, xb), index, offset_dims=tuple(range(1, rank + 1)),
                operand_batching_dims=(0,), start_indices_batching_dims=(0,),
                start_index_map=tuple(range(1, rank + 1)), index_vector_dim=1,
                slice_sizes=(1,) + sizes), 0


def _dynamic_update_slice(b, inst, operands, bdims):
    """Shared starts: one more (zero) start for the batch dim. Per-example starts: a scatter
    that overwrites, with a batching dimension."""
    (x, update, *starts), (xb, ub, *start_bdims) = operands, bdims
    if all(d is None for d in start_bdims):
        bdim = xb if xb is not None else ub
        x, update = b.move(x, xb, bdim), b.move(update, ub, bdim)
        starts.insert(bdim, _zero_index(b, starts))
        return b.op("dynamic-update-slice", x, update, *starts), bdim
    dims, sizes = inst.operands[0].shape.dims, inst.operands[1].shape.dims
    index = _index_vector(b, starts, start_bdims, [d - s for d, s in zip(dims, sizes)])
    rank = len(dims)
    overwrite = batching_control.overwrite_computation(b, inst.shape.dtype)
    return b.op("scatter", b.to_front(x, xb), index, b.to_front(update, ub),
                update_window_dims=tuple(range(1, rank + 1)), input_batching_dims=(0,),
                scatter_indices_batching_dims=(0,),
                scatter_dims_to_operand_dims=tuple(range(1, rank + 1)), index_vector_dim=1,
                calls={"to_apply": overwrite}), 0


def _tuple(b, inst, operands, bdims):
    return b.op("tuple", *operands), tuple(bdims)


def _get_tuple_element(b, inst, operands, bdims):
    index = inst.attrs["index"]
    return b.gte(operands[0], index), bdims[0][index]


_NO_OPERANDS = Unsupported("has no operands, so it is never batched: the pass copies it")

def _leading_batch(b, inst, operands, bdims):
    """An op already batched over its operands' leading dims (cholesky, triangular-solve):
    every operand gets the batch dim in front (a shared one broadcast), and so does the
    result."""
    moved = [b.to_front(value, bdim) for value, bdim in zip(operands, bdims)]
    front = batching_control.all_at_front(inst.shape)
    shape = batched_shape(inst.shape, front, b.size)
    return b.op(inst.opcode, *moved, shape=shape, **inst.attrs), front


def _sort(b, inst, operands, bdims):
    """Every operand batched in front (a shared one broadcast), the sorted dimension one
    further along; the comparator is unchanged (it sees scalars)."""
    moved = [b.to_front(value, bdim) for value, bdim in zip(operands, bdims)]
    (axis,) = inst.attrs["dimensions"]
    attrs = dict(inst.attrs, dimensions=(axis + 1,))
    front = batching_control.all_at_front(inst.shape)
    shape = batched_shape(inst.shape, front, b.size)
    return b.op("sort", *moved, shape=shape, calls=dict(inst.calls), **attrs), front


def _topk(b, inst, operands, bdims):
    """topk works on the last dimension: the batch goes in front."""
    (value,), (bdim,) = operands, bdims
    front = batching_control.all_at_front(inst.shape)
    shape = batched_shape(inst.shape, front, b.size)
    return b.op("topk", b.to_front(value, bdim), shape=shape, **inst.attrs), front


BATCHING_RULES = {
    **{op: elementwise for op, spec in OPS.items() if spec.role is FusionRole.ELEMENTWISE},
    Opcode.PARAMETER: Unsupported("parameters are batched by the pass itself (in_axes)"),
    Opcode.CONSTANT: _NO_OPERANDS,
    Opcode.IOTA: _NO_OPERANDS,
    Opcode.BROADCAST: _broadcast,
    Opcode.RESHAPE: _reshape,
    Opcode.TRANSPOSE: _transpose,
    Opcode.SLICE: _slice,
    Opcode.REVERSE: _reverse,
    Opcode.PAD: _pad,
    Opcode.CONCATENATE: _concatenate,
    Opcode.REDUCE: _reduce,
    Opcode.DOT: _dot,
    Opcode.GATHER: _gather,
    Opcode.SCATTER: _scatter,
    Opcode.DYNAMIC_SLICE: _dynamic_slice,
    Opcode.DYNAMIC_UPDATE_SLICE: _dynamic_update_slice,
    Opcode.TUPLE: _tuple,
    Opcode.GET_TUPLE_ELEMENT: _get_tuple_element,
    Opcode.REDUCE_WINDOW: batching_windows.reduce_window_rule,
    Opcode.SELECT_AND_SCATTER: batching_windows.select_and_scatter_rule,
    Opcode.CONVOLUTION: batching_windows.convolution_rule,
    Opcode.CALL: batching_control.call_rule,
    Opcode.FUSION: batching_control.call_rule,
    Opcode.WHILE: batching_control.while_rule,
    Opcode.CONDITIONAL: batching_control.conditional_rule,
    Opcode.CUSTOM_CALL: batching_control.custom_call_rule,
    Opcode.CHOLESKY: _leading_batch,
    Opcode.SORT: _sort,
    Opcode.TOPK: _topk,
    Opcode.TRIANGULAR_SOLVE: _leading_batch,
}
