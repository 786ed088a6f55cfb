"""VJP rules of the windowed ops (rows of VJP_RULES in passes/vjp_rules.py), as JAX's:

- reduce-window with add: the cotangent padded (strides become holes) and summed over the
  same window (JAX's `_reduce_window_sum_transpose_rule`); where the padding needs no holes
  it goes into the window itself, so a cumsum's gradient is again a one-pass prefix scan;
- with max / min: select-and-scatter of the cotangent onto the element each window chose
  (GE / LE select, add scatter: the first of equal maxima wins, as in XLA and JAX);
- select-and-scatter: w.r.t. the source, the cotangent at the element each window selects,
  gathered by a reduce-window over (operand, cotangent, taken) pairs that folds the way
  select-and-scatter chooses; w.r.t. the init value (add scatter), the sum of the cotangent.
Other reducers and scatters have no gradient here (nor in JAX), and say so.
"""
from __future__ import annotations

import numpy as np

from flowjit.ir.attributes import WindowDim, window as make_window
from flowjit.ir.dtypes import DType
from flowjit.ir.reference import simple_reducer
from flowjit.ir.shapes import ArrayShape
from flowjit.ir.windows import dilated_bound


def _sum_transpose(e, inst, g):
    """d x from g for y = window-sum(x): pad g (holes for the strides) and sum it over the
    same window, dilated as the forward one was, striding by the base dilation."""
    x = inst.operands[0]
    window = inst.attrs["window"]
    config, pads_in_window = [], []
    for size, w, out in zip(x.shape.dims, window, g.shape.dims):
        window_extent = dilated_bound(w.size, w.window_dilation)
        before = window_extent - w.padding_low - 1
        after = (dilated_bound(size, w.base_dilation) + window_extent - 1
                 - dilated_bound(out, w.stride) - before)
        config.append((before, after, w.stride - 1))
    holes = any(interior for _, _, interior in config)
    negative = any(lo < 0 or hi < 0 for lo, hi, _ in config)
    zero = e.scalar(0, g.shape.dtype)
    padded = g
    if holes or negative:
        padded = e.op("pad", g, zero, padding=tuple(config))
        pads_in_window = [(0, 0)] * len(config)
    else:
        pads_in_window = [(lo, hi) for lo, hi, _ in config]
    attrs = {"window": make_window([w.size for w in window],
                                   [w.base_dilation for w in window], pads_in_window,
                                   [w.window_dilation for w in window])}
    calls = {"to_apply": e.reducer("add", g.shape.dtype)}
    return e.op("reduce-window", padded, zero, calls=calls, **attrs)


def _selecting(e, direction: str, dtype):
    """`compare(a, b), direction=direction` over two scalars: a select computation."""
    inner = e.sub_builder(f"select_{direction.lower()}")
    shape = ArrayShape(dtype, ())
    a, b = inner.b.parameter(0, shape, "a"), inner.b.parameter(1, shape, "b")
    return inner.finish(inner.compare(a, b, direction))


def _chooser_transpose(e, inst, g, direction: str):
    x, _ = inst.operands
    window = inst.attrs["window"]
    if any(w.window_dilation != 1 for w in window):
        raise NotImplementedError("gradient of a max/min reduce-window with window dilation "
                                  f"(window_dilation={[w.window_dilation for w in window]})")
    operand = x
    base = [w.base_dilation for w in window]
    dtype = x.shape.dtype
    if any(d != 1 for d in base):
        # The holes of the base dilation hold the identity, which no window selects.
        identity = -np.inf if direction == "GE" else np.inf
        if not dtype.is_float:
            info = np.iinfo(dtype.to_numpy())
            identity = info.min if direction == "GE" else info.max
        operand = e.op("pad", x, e.scalar(identity, dtype),
                       padding=tuple((0, 0, d - 1) for d in base))
    plain = tuple(WindowDim(w.size, w.stride, w.padding_low, w.padding_high)
                  for w in window)
    calls = {"select": _selecting(e, direction, dtype),
             "scatter": e.reducer("add", g.shape.dtype)}
    result = e.op("select-and-scatter", operand, g, e.scalar(0, g.shape.dtype),
                  window=plain, calls=calls)
    if operand is not x:
        limits = result.shape.dims
        result = e.op("slice", result, slice=tuple((0, limit, d)
                                                   for limit, d in zip(limits, base)))
    return result


def reduce_window_rule(e, inst, g):
    """VJP of reduce-window: add, max and min reducers (one operand), as JAX."""
    if len(inst.operands) != 2:
        raise NotImplementedError("gradient of a variadic reduce-window (JAX has none)")
    kind = simple_reducer(inst.calls["to_apply"])
    if kind == "add":
        return [_sum_transpose(e, inst, g), None]
    if kind in ("maximum", "minimum"):
        return [_chooser_transpose(e, inst, g, "GE" if kind == "maximum" else "LE"), None]
    raise NotImplementedError(
        f"gradient of a reduce-window with a '{kind or 'custom'}' reducer: only add, maximum "
        "and minimum reducers are differentiable (as in JAX)")


def _gather_selected(e, inst, g):
    """For each window position: g at the operand element the window selects (a
    reduce-window over (operand, g, taken) folding as select-and-scatter chooses)."""
    operand = inst.operands[0]
    select = inst.calls["select"]
    value = ArrayShape(operand.shape.dtype, ())
    cotangent = ArrayShape(g.shape.dtype, ())
    flag = ArrayShape(DType.PRED, ())
    inner = e.sub_builder("select_and_gather")
    b = inner.b
    a_value, a_g, a_taken = (b.parameter(0, value, "chosen"), b.parameter(1, cotangent, "g"),
                             b.parameter(2, flag, "taken"))
    b_value, b_g, b_taken = (b.parameter(3, value, "value"), b.parameter(4, cotangent, "g"),
                             b.parameter(5, flag, "valid"))
    keeps = inner.op("and", a_taken, inner.inline(select, [a_value, b_value]))
    root = inner.op("tuple", inner.select(keeps, a_value, b_value),
                    inner.select(keeps, a_g, b_g), inner.op("or", a_taken, b_taken))
    reducer = inner.finish(root)
    taken = e.filled(True, ArrayShape(flag.dtype, operand.shape.dims))
    inits = [e.scalar(0, value.dtype), e.scalar(0, cotangent.dtype),
             e.scalar(False, flag.dtype)]
    gathered = e.op("reduce-window", operand, g, taken, *inits,
                    window=inst.attrs["window"], calls={"to_apply": reducer})
    return e.gte(gathered, 1)


def select_and_scatter_rule(e, inst, g):
    """VJP of select-and-scatter: source (gathered at the selections) and init value."""
    if simple_reducer(inst.calls["scatter"]) != "add":
        raise NotImplementedError("gradient of a select-and-scatter whose scatter is not an "
                                  "add (as in JAX, only select_and_scatter_add has one)")
    g_init = e.sum(g, range(g.shape.rank))
    return [None, _gather_selected(e, inst, g), g_init]
