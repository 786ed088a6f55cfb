"""VJP rules, one per differentiable opcode: `rule(emit, inst, g) -> operand cotangents`.

`inst` is the forward instruction (its operands are forward values), `g` the cotangent of
its result (a list per element for a tuple-shaped result); a rule returns one cotangent per
operand, None for "zero / not differentiable". Rules only emit IR through the Emitter, so
gradients are compiled, fused and differentiable again. Ops that call computations (call,
conditional, while) have their rules in `passes.vjp_control`.
"""
from __future__ import annotations

import math

import numpy as np

from flowjit.ir.op_tables import Unsupported
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import OPS
from flowjit.ir.dtypes import DType
from flowjit.ir.shapes import ArrayShape
from flowjit.passes.vjp import output_leaves
from flowjit.passes import vjp_linalg, window_vjp
from flowjit.passes.vjp_control import call_rule, conditional_rule, while_rule
from flowjit.passes.vjp_convolution import convolution_rule
from flowjit.passes.vjp_custom_jvp import custom_jvp_vjp_rule
from flowjit.passes.remat import checkpoint_vjp_rule, is_checkpoint
from flowjit.passes import vjp_sort



def no_gradient(e, inst, g):
    """The rule of an op no gradient flows through (`OpSpec.differentiable` is False):
    comparisons, integer and bit ops, piecewise-constant functions, constants (as in JAX,
    whose rules for these are zero)."""
    return [None] * len(inst.operands)


def _linear(fn):
    """A rule for an op linear in its single operand: apply `fn` to the cotangent."""
    return lambda e, inst, g: [fn(e, inst, g)]


def _unary(derivative):
    """A rule for f(x): g * f'(x), with f'(x) built from x and f(x) = out."""
    return lambda e, inst, g: [e.mul(g, derivative(e, inst.operands[0], inst))]


def _maximum_like(direction: str):
    def rule(e, inst, g):
        x, y = inst.operands
        wins = e.compare(x, y, direction)
        ties = e.compare(x, y, "EQ")
        half = e.mul(g, e.constant(0.5, g))
        zero = e.zeros(g)
        gx = e.select(wins, g, e.select(ties, half, zero))
        gy = e.select(wins, zero, e.select(ties, half, g))
        return [gx, gy]
    return rule


def _abs_derivative(e, x, out):
    """1 where x >= 0 (0 and -0 included), else -1: JAX's convention (abs'(0) = 1)."""
    one = e.constant(1, x)
    return e.select(e.compare(x, e.zeros(x), "GE"), one, e.neg(one))


def _divide(e, inst, g):
    x, y = inst.operands
    gx = e.div(g, y)
    return [gx, e.neg(e.mul(gx, inst))]


def _power(e, inst, g):
    x, y = inst.operands
    one = e.constant(1, y)
    gx = e.mul(g, e.mul(y, e.op("power", x, e.sub(y, one))))
    zero = e.zeros(x)
    safe_log = e.op("log", e.select(e.compare(x, zero, "EQ"), one, x))
    gy = e.mul(g, e.mul(inst, safe_log))
    return [gx, gy]


def _atan2(e, inst, g):
    y, x = inst.operands
    denominator = e.add(e.mul(x, x), e.mul(y, y))
    return [e.div(e.mul(g, x), denominator), e.neg(e.div(e.mul(g, y), denominator))]


def _remainder(e, inst, g):
    x, y = inst.operands
    quotient = e.div(e.sub(x, inst), y)  # trunc(x / y), exactly as the remainder used it
    return [g, e.neg(e.mul(g, e.op("round-nearest-even", quotient)))]


def _select(e, inst, g):
    pred, a, b = inst.operands
    zero = e.zeros(g)
    if pred.shape.rank == 0 and g.shape.rank:
        pred = e.broadcast(pred, ArrayShape(pred.shape.dtype, g.shape.dims), ())
    return [None, e.select(pred, g, zero), e.select(pred, zero, g)]


def _clamp(e, inst, g):
    lo, x, hi = inst.operands
    lo_b = e.broadcast(lo, x.shape, ()) if lo.shape.rank == 0 and x.shape.rank else lo
    hi_b = e.broadcast(hi, x.shape, ()) if hi.shape.rank == 0 and x.shape.rank else hi
    zero = e.zeros(g)
    # JAX's convention: x gets the gradient strictly inside (lo, hi) only, lo where it is
    # above x (and below hi), hi where it is below x; at a boundary nobody gets it.
    inside = e.op("and", e.compare(x, lo_b, "GT"), e.compare(x, hi_b, "LT"))
    g_x = e.select(inside, g, zero)
    g_lo = e.select(e.op("and", e.compare(lo_b, x, "GT"), e.compare(lo_b, hi_b, "LT")), g, zero)
    g_hi = e.select(e.compare(hi_b, x, "LT"), g, zero)
    if lo.shape.rank == 0 and x.shape.rank:
        g_lo = e.sum(g_lo, range(x.shape.rank))
    if hi.shape.rank == 0 and x.shape.rank:
        g_hi = e.sum(g_hi, range(x.shape.rank))
    return [g_lo, g_x, g_hi]


def _convert(e, inst, g):
    (x,) = inst.operands
    return [e.convert(g, x.shape.dtype) if x.shape.dtype.is_float else None]


def _broadcast(e, inst, g):
    (x,) = inst.operands
    dims = tuple(inst.attrs["dimensions"])
    summed = e.sum(g, [d for d in range(inst.shape.rank) if d not in dims])
    kept = sorted(dims)  # the order the sum leaves them in
    return [e.transpose(summed, [kept.index(d) for d in dims])]


def _transpose(e, inst, g):
    perm = inst.attrs["dimensions"]
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return [e.transpose(g, inverse)]


def _slice(e, inst, g):
    (x,) = inst.operands
    config = []
    for (start, limit, stride), size, out in zip(inst.attrs["slice"], x.shape.dims,
                                                 inst.shape.dims):
        last = start + (out - 1) * stride + 1 if out else start
        config.append((start, size - last, stride - 1 if out > 1 else 0))
    zero = e.b.constant(0.0, g.shape.dtype)
    return [e.op("pad", g, zero, padding=tuple(config))]


def _pad(e, inst, g):
    x, value = inst.operands
    config = inst.attrs["padding"]
    if any(lo < 0 or hi < 0 for lo, hi, _ in config):
        raise NotImplementedError("gradient of pad with negative padding")
    spec = tuple((lo, lo + (d - 1) * (interior + 1) + 1 if d else lo, interior + 1)
                 for (lo, _, interior), d in zip(config, x.shape.dims))
    g_x = e.op("slice", g, slice=spec)
    g_value = e.sub(e.sum(g, range(g.shape.rank)), e.sum(g_x, range(g_x.shape.rank)))
    return [g_x, g_value]


def _concatenate(e, inst, g):
    (axis,) = inst.attrs["dimensions"]
    out, offset = [], 0
    for operand in inst.operands:
        spec = [(0, d, 1) for d in g.shape.dims]
        spec[axis] = (offset, offset + operand.shape.dims[axis], 1)
        offset += operand.shape.dims[axis]
        out.append(e.op("slice", g, slice=tuple(spec)))
    return out


def _reduce(e, inst, g):
    if len(inst.operands) != 2:
        return [None] * len(inst.operands)  # variadic (argmax-style): indices only
    x, init = inst.operands
    dims = tuple(inst.attrs["dimensions"])
    kept = [d for d in range(x.shape.rank) if d not in dims]
    kind = inst.calls["to_apply"].root.opcode
    spread = e.broadcast(g, x.shape, kept)
    if kind == "add":
        return [spread, None]
    if kind in ("maximum", "minimum"):
        chosen = e.convert(e.compare(x, e.broadcast(inst, x.shape, kept), "EQ"), x.shape.dtype)
        count = e.broadcast(e.sum(chosen, dims), x.shape, kept)
        return [e.div(e.mul(spread, chosen), count), None]
    if kind == "multiply":
        return [e.mul(spread, _product_derivative(e, inst, x, dims, kept)), None]
    raise NotImplementedError(f"gradient of a reduce with a '{kind}' reducer")


def _product_derivative(e, inst, x, dims, kept):
    """d prod(x) / dx_i, exact with zeros: prod/x_i with none, the others' product at the
    single zero, 0 with two or more (no division by zero)."""
    zero, one = e.zeros(x), e.constant(1, x)
    is_zero = e.compare(x, zero, "EQ")
    safe = e.select(is_zero, one, x)
    count = e.broadcast(e.sum(e.convert(is_zero, x.shape.dtype), dims), x.shape, kept)
    others = e.op("reduce", safe, e.scalar(1, x.shape.dtype), dimensions=tuple(sorted(dims)),
                  calls={"to_apply": e.reducer("multiply", x.shape.dtype)})
    at_zero = e.select(is_zero, e.broadcast(others, x.shape, kept), zero)
    no_zero = e.div(e.broadcast(inst, x.shape, kept), safe)
    return e.select(e.compare(count, zero, "EQ"), no_zero,
                    e.select(e.compare(count, one, "EQ"), at_zero, zero))


def _dot(e, inst, g):
    lhs, rhs = inst.operands
    a = inst.attrs
    lb, rb = list(a.get("lhs_batch_dims", ())), list(a.get("rhs_batch_dims", ()))
    lc, rc = list(a.get("lhs_contracting_dims", ())), list(a.get("rhs_contracting_dims", ()))
    lfree = [d for d in range(lhs.shape.rank) if d not in lb and d not in lc]
    rfree = [d for d in range(rhs.shape.rank) if d not in rb and d not in rc]
    nb = len(lb)
    g_lfree = list(range(nb, nb + len(lfree)))
    g_rfree = list(range(nb + len(lfree), nb + len(lfree) + len(rfree)))
    batch = list(range(nb))

    def product(other, g_contract, other_contract, other_batch):
        attrs = {}
        if g_contract:
            attrs["lhs_contracting_dims"] = tuple(g_contract)
            attrs["rhs_contracting_dims"] = tuple(other_contract)
        if batch:
            attrs["lhs_batch_dims"] = tuple(batch)
            attrs["rhs_batch_dims"] = tuple(other_batch)
        return e.op("dot", g, other, **attrs)

    # lhs: contract g's rhs-free dims with rhs's free dims.
    d_lhs = product(rhs, g_rfree, rfree, rb)
    # d_lhs dims: batch, lhs free, then rhs's remaining (contracting) dims in rhs order.
    rhs_rest = [d for d in range(rhs.shape.rank) if d not in rb and d not in rfree]
    lhs_order = lb + lfree + [lc[rc.index(d)] for d in rhs_rest]
    d_lhs = e.transpose(d_lhs, [lhs_order.index(d) for d in range(lhs.shape.rank)])
    d_rhs = product(lhs, g_lfree, lfree, lb)
    lhs_rest = [d for d in range(lhs.shape.rank) if d not in lb and d not in lfree]
    rhs_order = rb + rfree + [rc[lc.index(d)] for d in lhs_rest]
    d_rhs = e.transpose(d_rhs, [rhs_order.index(d) for d in range(rhs.shape.rank)])
    return [d_lhs, d_rhs]


def _dynamic_slice(e, inst, g):
    x, *starts = inst.operands
    return [e.op("dynamic-update-slice", e.zeros(x), g, *starts)] + [None] * len(starts)


def _dynamic_update_slice(e, inst, g):
    x, update, *starts = inst.operands
    g_x = e.op("dynamic-update-slice", g, e.zeros(update), *starts)
    g_u = e.op("dynamic-slice", g, *starts, dynamic_slice_sizes=update.shape.dims)
    return [g_x, g_u] + [None] * len(starts)


def _gather(e, inst, g):
    operand, indices = inst.operands
    a = inst.attrs
    attrs = {"update_window_dims": tuple(a["offset_dims"]),
             "inserted_window_dims": tuple(a.get("collapsed_slice_dims", ())),
             "scatter_dims_to_operand_dims": tuple(a["start_index_map"]),
             "index_vector_dim": a["index_vector_dim"]}
    if a.get("operand_batching_dims"):   # the scatter-add pairs the same dims (JAX)
        attrs["input_batching_dims"] = tuple(a["operand_batching_dims"])
        attrs["scatter_indices_batching_dims"] = tuple(a["start_indices_batching_dims"])
    combiner = e.reducer("add", g.shape.dtype)
    g_operand = e.b.add("scatter", [e.zeros(operand), indices, g], attrs,
                        {"to_apply": combiner}, metadata={})
    return [g_operand, None]


def _scatter(e, inst, g):
    operand, indices, updates = inst.operands
    a = inst.attrs
    comp = inst.calls["to_apply"]
    window = [updates.shape.dims[d] for d in a["update_window_dims"]]
    inserted = set(a.get("inserted_window_dims", ()))
    batching = tuple(a.get("input_batching_dims", ()))
    sizes, it = [], iter(window)
    for d in range(operand.shape.rank):
        sizes.append(1 if d in inserted or d in batching else next(it))
    batching_attrs = {"operand_batching_dims": batching, "start_indices_batching_dims":
                      tuple(a["scatter_indices_batching_dims"])} if batching else {}

    def read_back(x):   # the operand-shaped `x` at the updates' positions
        return e.op("gather", x, indices, offset_dims=tuple(a["update_window_dims"]),
                    collapsed_slice_dims=tuple(sorted(inserted)),
                    start_index_map=tuple(a["scatter_dims_to_operand_dims"]),
                    index_vector_dim=a["index_vector_dim"], slice_sizes=tuple(sizes),
                    **batching_attrs)
    g_updates = read_back(g)
    # The forward scatter dropped the windows that do not fit: they get no gradient (the
    # gather above clamped them to a window that does).
    g_updates = e.select(_updates_that_fit(e, inst), g_updates, e.zeros(g_updates))
    if comp.root.opcode == "add":
        return [g, None, g_updates]
    if comp.root is comp.parameters[1]:  # overwrite: the old values no longer matter
        # Of updates to one place only the one written last counts (JAX's scatter JVP):
        # scatter every update's own id the same way and keep those that read it back.
        ids = e.op("iota", shape=ArrayShape(DType.S32, (updates.shape.size,)),
                   iota_dimension=0)
        ids = e.reshape(ids, updates.shape.dims)
        none = e.filled(-1, ArrayShape(DType.S32, operand.shape.dims))
        written = e.b.add("scatter", [none, indices, ids], dict(a),
                          {"to_apply": _overwrite(e, DType.S32)}, metadata={})
        won = e.compare(read_back(written), ids, "EQ")
        g_updates = e.select(won, g_updates, e.zeros(g_updates))
        g_operand = e.b.add("scatter", [g, indices, e.zeros(updates)], dict(a),
                            {"to_apply": _overwrite(e, g.shape.dtype)}, metadata={})
        return [g_operand, None, g_updates]
    raise NotImplementedError("gradient of a scatter with a non-add combiner")


def _updates_that_fit(e, inst):
    """pred[updates' shape]: true where the update's whole window fits in the operand, so
    the scatter applied it (XLA drops the others)."""
    operand, indices, updates = inst.operands
    a = inst.attrs
    ivd, to_operand = a["index_vector_dim"], a["scatter_dims_to_operand_dims"]
    window_dims = a["update_window_dims"]
    window = {d: 1 for d in range(operand.shape.rank)}
    skipped = set(a.get("inserted_window_dims", ())) | set(a.get("input_batching_dims", ()))
    for k, d in zip(window_dims, [d for d in window if d not in skipped]):
        window[d] = updates.shape.dims[k]
    limits = np.array([operand.shape.dims[d] - window[d] for d in to_operand],
                      indices.shape.dtype.to_numpy())
    dims = (ivd,) if ivd < indices.shape.rank else ()
    limit = e.op("broadcast", e.b.constant(limits if dims else limits.reshape(()),
                                           indices.shape.dtype),
                 shape=indices.shape, dimensions=dims)
    fits = e.op("and", e.compare(indices, e.zeros(indices), "GE"),
                e.compare(indices, limit, "LE"))
    if dims:   # every component of the index vector
        fits = e.op("reduce", fits, e.scalar(True, DType.PRED), dimensions=(ivd,),
                    calls={"to_apply": e.reducer("and", DType.PRED)})
    scatter_dims = tuple(d for d in range(updates.shape.rank) if d not in window_dims)
    return e.op("broadcast", fits, shape=ArrayShape(DType.PRED, updates.shape.dims),
                dimensions=scatter_dims)


def _overwrite(e, dtype):
    from flowjit.ir.builder import Builder
    b = Builder("overwrite", e.b.names)
    shape = ArrayShape(dtype, ())
    b.parameter(0, shape, "old")
    comp = b.finish(b.parameter(1, shape, "new"))
    e.extra.append(comp)
    return comp


def _custom_call(e, inst, g):
    target = inst.attrs["custom_call_target"]
    if target == "stop_gradient":
        return [None]
    if target == "flowjit.custom_jvp":
        return custom_jvp_vjp_rule(e, inst, g)
    if is_checkpoint(target):
        return checkpoint_vjp_rule(e, inst, g)
    if target != "flowjit.custom_vjp":
        lapack = vjp_linalg.lapack_rule(e, inst, g)
        if lapack is None:
            raise NotImplementedError(f"gradient of custom-call {target!r}")
        return lapack
    primal, fwd, bwd = inst.calls["called_computations"]
    saved = e.op("call", *inst.operands, calls={"to_apply": fwd})
    n_out = len(output_leaves(primal))
    residuals = [e.gte(saved, k) for k in range(n_out, len(saved.shape.elements))]
    cts = e.op("call", *residuals, *e.output_cotangents(primal, g, inst.shape),
               calls={"to_apply": bwd})
    return [e.gte(cts, k) for k in range(len(inst.operands))]


def _get_tuple_element(e, inst, g):
    slots = [None] * len(inst.operands[0].shape.elements)
    slots[inst.attrs["index"]] = g
    return [slots]


def _tuple(e, inst, g):
    return list(g) if isinstance(g, list) else [e.gte(g, k) for k in range(len(inst.operands))]


_TWO_OVER_ROOT_PI = 2 / math.sqrt(math.pi)

VJP_RULES = {
    Opcode.ADD: lambda e, inst, g: [g, g],
    Opcode.SUBTRACT: lambda e, inst, g: [g, e.neg(g)],
    Opcode.MULTIPLY: lambda e, inst, g: [e.mul(g, inst.operands[1]), e.mul(g, inst.operands[0])],
    Opcode.DIVIDE: _divide,
    Opcode.NEGATE: _linear(lambda e, inst, g: e.neg(g)),
    Opcode.COPY: _linear(lambda e, inst, g: g),
    Opcode.RESHAPE: _linear(lambda e, inst, g: e.reshape(g, inst.operands[0].shape.dims)),
    Opcode.REVERSE: _linear(lambda e, inst, g: e.op("reverse", g,
                                                dimensions=inst.attrs["dimensions"])),
    Opcode.EXPONENTIAL: _unary(lambda e, x, out: out),
    Opcode.EXPONENTIAL_MINUS_ONE: _unary(lambda e, x, out: e.add(out, e.constant(1, out))),
    Opcode.LOG: _unary(lambda e, x, out: e.div(e.constant(1, x), x)),
    Opcode.LOG_PLUS_ONE: _unary(lambda e, x, out: e.div(e.constant(1, x),
                                                  e.add(x, e.constant(1, x)))),
    Opcode.SQRT: _unary(lambda e, x, out: e.div(e.constant(0.5, out), out)),
    Opcode.RSQRT: _unary(lambda e, x, out: e.mul(e.constant(-0.5, out), e.div(out, x))),
    Opcode.CBRT: _unary(lambda e, x, out: e.div(out, e.mul(e.constant(3, x), x))),
    Opcode.TANH: _unary(lambda e, x, out: e.sub(e.constant(1, out), e.mul(out, out))),
    Opcode.LOGISTIC: _unary(lambda e, x, out: e.mul(out, e.sub(e.constant(1, out), out))),
    Opcode.SINE: _unary(lambda e, x, out: e.op("cosine", x)),
    Opcode.COSINE: _unary(lambda e, x, out: e.neg(e.op("sine", x))),
    Opcode.TAN: _unary(lambda e, x, out: e.add(e.constant(1, out), e.mul(out, out))),
    Opcode.ERF: _unary(lambda e, x, out: e.mul(e.constant(_TWO_OVER_ROOT_PI, x),
                                          e.op("exponential", e.neg(e.mul(x, x))))),
    Opcode.ABS: _unary(_abs_derivative),
    Opcode.MAXIMUM: _maximum_like("GT"),
    Opcode.MINIMUM: _maximum_like("LT"),
    Opcode.POWER: _power,
    Opcode.ATAN2: _atan2,
    Opcode.REMAINDER: _remainder,
    Opcode.SELECT: _select,
    Opcode.CLAMP: _clamp,
    Opcode.CONVERT: _convert,
    Opcode.BROADCAST: _broadcast,
    Opcode.TRANSPOSE: _transpose,
    Opcode.SLICE: _slice,
    Opcode.PAD: _pad,
    Opcode.CONCATENATE: _concatenate,
    Opcode.REDUCE: _reduce,
    Opcode.REDUCE_WINDOW: window_vjp.reduce_window_rule,
    Opcode.SELECT_AND_SCATTER: window_vjp.select_and_scatter_rule,
    Opcode.DOT: _dot,
    Opcode.DYNAMIC_SLICE: _dynamic_slice,
    Opcode.DYNAMIC_UPDATE_SLICE: _dynamic_update_slice,
    Opcode.GATHER: _gather,
    Opcode.SCATTER: _scatter,
    Opcode.CUSTOM_CALL: _custom_call,
    Opcode.TUPLE: _tuple,
    Opcode.GET_TUPLE_ELEMENT: _get_tuple_element,
    Opcode.CALL: call_rule,
    Opcode.CONDITIONAL: conditional_rule,
    Opcode.WHILE: while_rule,
    Opcode.CONVOLUTION: convolution_rule,
    Opcode.CHOLESKY: vjp_linalg.cholesky_rule,
    Opcode.TRIANGULAR_SOLVE: vjp_linalg.triangular_solve_rule,
    Opcode.SORT: vjp_sort.sort_rule,
    Opcode.TOPK: vjp_sort.topk_rule,
    Opcode.PARAMETER: Unsupported("a parameter's cotangent is a result of the VJP, not "
                                  "propagated further"),
    Opcode.FUSION: Unsupported("autodiff runs on unfused modules; fusion comes after it"),
    **{op: no_gradient for op, spec in OPS.items() if not spec.differentiable},
}
