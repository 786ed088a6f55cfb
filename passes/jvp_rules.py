"""JVP rules, one per opcode: `rule(emit, inst, tangents) -> tangent of inst's result`.

`inst` is the primal instruction in the new computation (its operands are primal values),
`tangents` holds one tangent per operand (None: zero; a list per element for a tuple). The
transformation only asks a rule when some operand tangent is nonzero and the result holds a
float, so rules need not check that. Ops that call computations (call, while, conditional,
custom-call) have their rules in `passes.jvp_control`.

Elementwise ops have a diagonal Jacobian, which is its own transpose: their tangent is their
VJP rule (`passes.vjp_rules`) applied to each operand's tangent in place of the cotangent,
so each derivative formula is written once, there.
"""
from __future__ import annotations

from flowjit.ir.attributes import WindowDim
from flowjit.ir.module import Instruction
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import OPS
from flowjit.ir.reference import simple_reducer
from flowjit.passes import vjp_linalg, vjp_sort, window_vjp
from flowjit.passes.jvp import restate
from flowjit.passes.jvp_control import (call_rule, conditional_rule, custom_call_rule,
                                        while_rule)
from flowjit.passes.vjp_rules import VJP_RULES


def zero_tangent(e, inst, tangents):
    """The rule of an op no derivative flows through (`OpSpec.differentiable` is False)."""
    return None


def _sum(e, parts):
    """The sum of the nonzero tangents in `parts` (None when all are zero)."""
    parts = [p for p in parts if p is not None]
    total = parts[0] if parts else None
    for p in parts[1:]:
        total = e.add(total, p)
    return total


def _diagonal(e, inst, tangents):
    """An elementwise op: the sum over operands of its VJP rule applied to their tangents."""
    rule = VJP_RULES[inst.opcode]
    return _sum(e, [None if t is None else rule(e, inst, t)[k]
                    for k, t in enumerate(tangents)])


def linear_in(*positions: int):
    """A rule for an op linear in the operands at `positions` (the others are held fixed:
    indices, a predicate): the same op on their tangents (zeros where none)."""
    def rule(e, inst, tangents):
        operands = list(inst.operands)
        for k in positions:
            operands[k] = e.materialize(tangents[k], operands[k].shape)
        return restate(e, inst, operands)
    return rule


def _linear(e, inst, tangents):
    return linear_in(*range(len(inst.operands)))(e, inst, tangents)


def _bilinear(e, inst, tangents):
    """d(a * b) = da * b + a * db for a product-like op (multiply, dot, convolution)."""
    (a, b), (ta, tb) = inst.operands, tangents
    return _sum(e, [None if ta is None else restate(e, inst, [ta, b]),
                    None if tb is None else restate(e, inst, [a, tb])])


def _add(e, inst, tangents):
    return _sum(e, tangents)


def _subtract(e, inst, tangents):
    ta, tb = tangents
    if tb is None:
        return ta
    return e.neg(tb) if ta is None else e.sub(ta, tb)


def _convert(e, inst, tangents):
    (t,) = tangents
    if not inst.operands[0].shape.dtype.is_float:
        return None
    return e.convert(t, inst.shape.dtype)


def _with_zero_init(e, inst, t):
    """A sum (reduce or reduce-window with add) of the tangent: the init counts for nothing."""
    x, init = inst.operands
    return restate(e, inst, [e.materialize(t, x.shape), e.zeros(init)])


def _reduce(e, inst, tangents):
    """add: the sum of the tangent. max, min, multiply: the tangent weighed by d out / d x,
    which the VJP rule gives for a cotangent of ones (max and min share it among ties)."""
    if len(inst.operands) != 2:
        return None     # variadic (argmax-style): no tangent, as the VJP gives no cotangent
    if simple_reducer(inst.calls["to_apply"]) == "add":
        return _with_zero_init(e, inst, tangents[0])
    weights = VJP_RULES[Opcode.REDUCE](e, inst, e.filled(1, inst.shape))[0]
    return e.sum(e.mul(tangents[0], weights), inst.attrs["dimensions"])


def _reduce_window(e, inst, tangents):
    """add: the window sums of the tangent; max, min: the tangent of the element each window
    chooses (the first of equal ones, as the VJP's select-and-scatter)."""
    if len(inst.operands) != 2:
        raise NotImplementedError("forward-mode derivative of a variadic reduce-window "
                                  "(JAX has none)")
    kind = simple_reducer(inst.calls["to_apply"])
    x, init = inst.operands
    t = tangents[0]
    if kind == "add":
        return _with_zero_init(e, inst, t)
    if kind not in ("maximum", "minimum"):
        raise NotImplementedError(f"forward-mode derivative of a reduce-window with a "
                                  f"'{kind or 'custom'}' reducer (as in JAX, none)")
    window = inst.attrs["window"]
    if any(w.base_dilation != 1 for w in window) or t is None:
        raise NotImplementedError("forward-mode derivative of a max/min reduce-window with "
                                  "base dilation")
    # Pad with the identity (never chosen) so the windows need no padding of their own.
    padding = tuple((w.padding_low, w.padding_high, 0) for w in window)
    x = e.op("pad", x, init, padding=padding)
    t = e.op("pad", t, e.scalar(0, t.shape.dtype), padding=padding)
    plain = tuple(WindowDim(w.size, w.stride, window_dilation=w.window_dilation)
                  for w in window)
    direction = "GE" if kind == "maximum" else "LE"
    chooser = Instruction("chooser", Opcode.SELECT_AND_SCATTER, x.shape, [x, t, init],
                          {"window": plain},
                          {"select": window_vjp._selecting(e, direction, x.shape.dtype)})
    return window_vjp._gather_selected(e, chooser, t)


def _select_and_scatter(e, inst, tangents):
    """Linear in the source and the init value once the selection (by the operand) is fixed;
    only an add scatter is linear."""
    if simple_reducer(inst.calls["scatter"]) != "add":
        raise NotImplementedError("forward-mode derivative of a select-and-scatter whose "
                                  "scatter is not an add")
    return linear_in(1, 2)(e, inst, tangents)


def _scatter(e, inst, tangents):
    """With an add or overwrite combiner a scatter is linear in (operand, updates)."""
    comp = inst.calls["to_apply"]
    if simple_reducer(comp) == "add" or comp.root is comp.parameters[1]:
        return linear_in(0, 2)(e, inst, tangents)
    raise NotImplementedError("forward-mode derivative of a scatter whose combiner is "
                              "neither add nor overwrite")


def _select(e, inst, tangents):
    return linear_in(1, 2)(e, inst, tangents)


def _clamp(e, inst, tangents):
    """The tangent of whichever of lo, x, hi the result is (JAX's convention at the
    boundaries: x only strictly inside (lo, hi), as the VJP rule)."""
    lo, x, hi = inst.operands
    t_lo, t_x, t_hi = [None if t is None else
                       e.broadcast(t, inst.shape, ()) if t.shape.rank < inst.shape.rank else t
                       for t in tangents]
    lo_b = e.broadcast(lo, x.shape, ()) if lo.shape.rank < x.shape.rank else lo
    hi_b = e.broadcast(hi, x.shape, ()) if hi.shape.rank < x.shape.rank else hi
    zero = e.zeros(inst)
    inside = e.op("and", e.compare(x, lo_b, "GT"), e.compare(x, hi_b, "LT"))
    lo_wins = e.op("and", e.compare(lo_b, x, "GT"), e.compare(lo_b, hi_b, "LT"))
    hi_wins = e.compare(hi_b, x, "LT")
    pick = [(inside, t_x), (lo_wins, t_lo), (hi_wins, t_hi)]
    return _sum(e, [None if t is None else e.select(cond, t, zero) for cond, t in pick])


def _get_tuple_element(e, inst, tangents):
    (t,) = tangents
    index = inst.attrs["index"]
    return t[index] if isinstance(t, list) else e.gte(t, index)


def _tuple(e, inst, tangents):
    return list(tangents)


JVP_RULES = {
    Opcode.ADD: _add,
    Opcode.SUBTRACT: _subtract,
    Opcode.MULTIPLY: _bilinear,
    Opcode.DOT: _bilinear,
    Opcode.CONVOLUTION: _bilinear,
    Opcode.CONVERT: _convert,
    **{op: _diagonal for op in (
        Opcode.DIVIDE, Opcode.EXPONENTIAL, Opcode.EXPONENTIAL_MINUS_ONE, Opcode.LOG,
        Opcode.LOG_PLUS_ONE, Opcode.SQRT, Opcode.RSQRT, Opcode.CBRT, Opcode.TANH,
        Opcode.LOGISTIC, Opcode.SINE, Opcode.COSINE, Opcode.TAN, Opcode.ERF, Opcode.ABS,
        Opcode.MAXIMUM, Opcode.MINIMUM, Opcode.POWER, Opcode.ATAN2, Opcode.REMAINDER)},
    **{op: _linear for op in (
        Opcode.NEGATE, Opcode.COPY, Opcode.RESHAPE, Opcode.REVERSE, Opcode.BROADCAST,
        Opcode.TRANSPOSE, Opcode.SLICE, Opcode.PAD, Opcode.CONCATENATE)},
    Opcode.DYNAMIC_SLICE: linear_in(0),
    Opcode.DYNAMIC_UPDATE_SLICE: linear_in(0, 1),
    Opcode.GATHER: linear_in(0),
    Opcode.SCATTER: _scatter,
    Opcode.SELECT: _select,
    Opcode.CLAMP: _clamp,
    Opcode.REDUCE: _reduce,
    Opcode.REDUCE_WINDOW: _reduce_window,
    Opcode.SELECT_AND_SCATTER: _select_and_scatter,
    Opcode.TUPLE: _tuple,
    Opcode.GET_TUPLE_ELEMENT: _get_tuple_element,
    Opcode.CALL: call_rule,
    Opcode.CONDITIONAL: conditional_rule,
    Opcode.WHILE: while_rule,
    Opcode.CUSTOM_CALL: custom_call_rule,
    Opcode.CHOLESKY: lambda e, inst, tangents: vjp_linalg.cholesky_tangent(e, inst,
                                                                           tangents[0]),
    Opcode.TRIANGULAR_SOLVE: vjp_linalg.triangular_solve_tangent,
    Opcode.SORT: vjp_sort.sort_tangent,
    Opcode.TOPK: vjp_sort.topk_tangent,
    Opcode.PARAMETER: Unsupported("a parameter's tangent is an input of the JVP, not "
                                  "computed from operands"),
    Opcode.FUSION: Unsupported("autodiff runs on unfused modules; fusion comes after it"),
    **{op: zero_tangent for op, spec in OPS.items() if not spec.differentiable},
}
