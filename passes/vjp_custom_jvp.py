"""The VJP of a custom_jvp call: its JVP rule transposed, as JAX transposes it.

A custom_jvp call carries its primal computation and its rule, rule(x..., t...) ->
(f(x)..., J(x)·t...). The rule's tangent outputs are linear in t, and the VJP of a linear
map is its transpose, so the VJP of the rule w.r.t. t alone — taken by `passes.vjp` on the
rule's own (linear in t) ops, at t = 0 — gives Jᵀ·g for the output cotangents g. The
custom rule is thus the only derivative used in either mode.
"""
from __future__ import annotations

from flowjit.ir.module import Instruction
from flowjit.passes.vjp import Cotangent, Emitter, has_float, output_leaves


def custom_jvp_vjp_rule(e: Emitter, inst: Instruction, g: Cotangent) -> list[Cotangent]:
    """Cotangents of a custom_jvp call's operands: the rule's VJP w.r.t. its tangents."""
    primal, rule = inst.calls["called_computations"][:2]
    n_in = len(inst.operands)
    wrt = [n_in + k for k, x in enumerate(inst.operands) if has_float(x.shape)]
    backward = e.derivative(rule, wrt)
    outputs = output_leaves(primal)
    no_cotangent = [e.filled(0, o.shape) for o in outputs]   # for the primal outputs
    tangents_at_zero = [e.zeros(x) for x in inst.operands]
    cts = e.output_cotangents(primal, g, inst.shape)
    result = e.op("call", *inst.operands, *tangents_at_zero, *no_cotangent, *cts,
                  calls={"to_apply": backward})
    out: list[Cotangent] = [None] * n_in
    for i, k in enumerate(wrt):
        out[k - n_in] = e.gte(result, 2 * len(outputs) + i)
    return out
