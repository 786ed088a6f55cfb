"""VJP rules of sort and topk: cotangents go back through the permutation.

sort: the forward sort is repeated with an iota carried along (its comparator ignores it,
as JAX's `_sort_jvp` does), which gives each sorted position's source position P. Sorting
the cotangents by P (an s32 key, LT) puts each back where its element came from: the
inverse permutation without a gather or a scatter, and itself differentiable again.
topk: the cotangent of the values goes back to the indices along the last dimension, by
a scatter-add of a one-hot comparison (k is small, so k x n work per row).
"""
from __future__ import annotations

from flowjit.ir.dtypes import DType
from flowjit.ir.shapes import ArrayShape


def _has_float(inst) -> bool:
    return inst.shape.dtype.is_float


def _by_key_comparator(e, passengers):
    """LT on an s32 key (parameters 0, 1) with `passengers` (shapes) carried along."""
    inner = e.sub_builder("by_source_position")
    scalar = ArrayShape(DType.S32, ())
    lhs, rhs = inner.b.parameter(0, scalar, "lhs"), inner.b.parameter(1, scalar, "rhs")
    for k, shape in enumerate(passengers):
        for side in range(2):
            inner.b.parameter(2 + 2 * k + side, ArrayShape(shape.dtype, ()), "passenger")
    return inner.finish(inner.compare(lhs, rhs, "LT"))


def sort_rule(e, inst, g):
    """Cotangents of a sort's operands: its result cotangents put back in source order."""
    operands = list(inst.operands)
    grads = g if isinstance(g, list) else [g]
    wanted = [k for k, (x, ct) in enumerate(zip(operands, grads))
              if ct is not None and _has_float(x)]
    if not wanted:
        return [None] * len(operands)
    (axis,) = inst.attrs["dimensions"]
    dims = operands[0].shape.dims
    iota = e.op("iota", shape=ArrayShape(DType.S32, dims), iota_dimension=axis)
    with_index = e.op("sort", *operands, iota, dimensions=(axis,),
                      is_stable=inst.attrs.get("is_stable", False),
                      calls={"to_apply": _comparator_with_passengers(
                          e, inst.calls["to_apply"], [DType.S32])})
    source = e.gte(with_index, len(operands))
    cts = [grads[k] for k in wanted]
    back = e.op("sort", source, *cts, dimensions=(axis,), is_stable=True,
                calls={"to_apply": _by_key_comparator(e, [c.shape for c in cts])})
    result = [None] * len(operands)
    for slot, k in enumerate(wanted):
        result[k] = e.gte(back, slot + 1)
    return result


def _chosen(e, inst):
    """([..., k, n] pred: does topk's j-th best sit at position i of the row?, its shape)."""
    (x,) = inst.operands
    n, k = x.shape.dims[-1], inst.attrs["k"]
    rank = x.shape.rank
    wide = ArrayShape(DType.S32, x.shape.dims[:-1] + (k, n))
    position = e.op("iota", shape=wide, iota_dimension=rank)
    indices = e.broadcast(e.gte(inst, 1), wide, tuple(range(rank)))
    return e.compare(indices, position, "EQ"), wide


def topk_rule(e, inst, g):
    """The values' cotangent added at their indices along the last dimension."""
    (x,) = inst.operands
    grads = g if isinstance(g, list) else [e.gte(g, 0), None]
    g_values = grads[0]
    if g_values is None or not _has_float(x):
        return [None]
    rank = x.shape.rank
    chosen, wide = _chosen(e, inst)
    spread = e.broadcast(g_values, ArrayShape(x.shape.dtype, wide.dims), tuple(range(rank)))
    zeros = e.filled(0, ArrayShape(x.shape.dtype, wide.dims))
    return [e.sum(e.select(chosen, spread, zeros), (rank - 1,))]


# --- forward mode (passes/jvp_rules.py) ------------------------------------------------------

def _comparator_with_passengers(e, comparator, dtypes):
    """`comparator` taking two more (ignored) parameters per passenger dtype: operands
    (an iota, tangents) carried along by a sort that does not read them."""
    inner = e.sub_builder(f"{comparator.name}_with_tangents")
    params = [inner.b.parameter(p.attrs["number"], p.shape, "cmp")
              for p in comparator.parameters]
    count = len(params)
    for k, dtype in enumerate(dtypes):
        for side in range(2):
            inner.b.parameter(count + 2 * k + side, ArrayShape(dtype, ()), "tangent")
    return inner.finish(inner.inline(comparator, params[:count]))


def sort_tangent(e, inst, tangents):
    """The tangents ride along in the same sort (the comparator ignores them, as JAX's
    `_sort_jvp` carries an iota): each lands where its element does."""
    operands = list(inst.operands)
    carried = [(k, t) for k, t in enumerate(tangents) if t is not None]
    comparator = _comparator_with_passengers(e, inst.calls["to_apply"],
                                             [t.shape.dtype for _, t in carried])
    moved = e.op("sort", *operands, *[t for _, t in carried], dimensions=inst.attrs["dimensions"],
                 is_stable=inst.attrs.get("is_stable", False), calls={"to_apply": comparator})
    out: list = [None] * len(operands)
    for slot, (k, _) in enumerate(carried):
        out[k] = e.gte(moved, len(operands) + slot)
    return out if inst.shape.is_tuple else out[0]


def topk_tangent(e, inst, tangents):
    """The values' tangent is the operand's tangent at the chosen indices (a one-hot sum
    over the last dimension, as the VJP's spread, transposed); the indices have none."""
    (x,), (t,) = inst.operands, tangents
    rank = x.shape.rank
    chosen, wide = _chosen(e, inst)
    spread = e.broadcast(t, ArrayShape(x.shape.dtype, wide.dims),
                         tuple(range(rank - 1)) + (rank,))
    zeros = e.filled(0, ArrayShape(x.shape.dtype, wide.dims))
    return [e.sum(e.select(chosen, spread, zeros), (rank,)), None]
