"""checkpoint (remat): the VJP of a checkpointed region recomputes what it does not save.

`flowjit.checkpoint(fun, policy=...)` traces fun into one `custom-call` whose target is
"flowjit.checkpoint.<policy>" (".allow_cse" appended when prevent_cse=False) and whose
called computation is fun's body. Forward, it is a plain call (lower-custom-calls). Under
the VJP transformation its rule:
  1. inlines the body in place of the call, so the values the policy saves are ordinary
     forward values (residuals), kept until the backward pass reads them;
  2. inlines the body's VJP computation at the backward position on the same operands,
     with the saved values given (`Emitter.inline(known=...)`): everything else of the
     forward part — the values not saved — is computed again there, just before the
     backward needs it, instead of living from the forward pass to the backward one.
The recomputed instructions carry `remat=true` (kept verbatim in the text, part of what
CSE compares), so CSE does not merge them back into the forward copies — JAX's
prevent_cse — unless the user asked for allow_cse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flowjit.ir.module import Computation, Instruction
from flowjit.passes.vjp import Cotangent, Emitter, has_float, output_leaves

TARGET = "flowjit.checkpoint"
ALLOW_CSE = ".allow_cse"
REMAT_MARK = "remat"


@dataclass(frozen=True)
class Policy:
    """A checkpoint policy: which instructions of the region keep their values (JAX's
    `jax.checkpoint_policies`, decided here on IR instructions)."""

    name: str
    saves: Callable[[Instruction], bool]

    def __call__(self, inst: Instruction) -> bool:
        return self.saves(inst)


def _is_dot(inst: Instruction) -> bool:
    return inst.opcode in ("dot", "convolution")


def _is_unbatched_dot(inst: Instruction) -> bool:
    return inst.opcode == "dot" and not inst.attrs.get("lhs_batch_dims")


POLICIES = {p.name: p for p in (
    Policy("everything_saveable", lambda inst: True),
    Policy("nothing_saveable", lambda inst: False),
    Policy("dots_saveable", _is_dot),
    Policy("dots_with_no_batch_dims_saveable", _is_unbatched_dot),
)}


def target_for(policy: Policy, prevent_cse: bool) -> str:
    """The custom-call target that records a checkpoint's policy."""
    return f"{TARGET}.{policy.name}" + ("" if prevent_cse else ALLOW_CSE)


def is_checkpoint(target: str) -> bool:
    return target.startswith(TARGET + ".")


def _policy_of(target: str) -> tuple[Policy, bool]:
    name = target[len(TARGET) + 1:]
    prevent_cse = not name.endswith(ALLOW_CSE)
    name = name[:-len(ALLOW_CSE)] if not prevent_cse else name
    if name not in POLICIES:
        raise NotImplementedError(f"custom-call {target!r}: unknown checkpoint policy "
                                  f"{name!r} (known: {', '.join(POLICIES)})")
    return POLICIES[name], prevent_cse


def _forward_clones(body: Computation, derivative: Computation) -> dict[int, Instruction]:
    """The derivative's copy of each forward instruction of `body`, by id of the original:
    `passes.vjp` copies the body's post-order (parameters apart) right after its own
    parameters. Empty when the layout differs (e.g. a loop's VJP rewrote the forward),
    which makes the checkpoint recompute everything: correct, only less thrifty."""
    order = [i for i in body.post_order() if i.opcode != "parameter"]
    params = [i for i in derivative.instructions if i.opcode == "parameter"]
    start = derivative.instructions.index(params[-1]) + 1 if params else 0
    clones = derivative.instructions[start:start + len(order)]
    if len(clones) != len(order) or any(c.opcode != o.opcode or c.shape != o.shape
                                        for c, o in zip(clones, order)):
        return {}
    return {id(o): c for o, c in zip(order, clones)}


def checkpoint_vjp_rule(e: Emitter, inst: Instruction, g: Cotangent) -> list[Cotangent]:
    """Cotangents of a checkpoint call's operands, recomputing what its policy does not
    save in the backward pass (see the module docstring)."""
    policy, prevent_cse = _policy_of(inst.attrs["custom_call_target"])
    (body,) = inst.calls["called_computations"]
    wrt = [k for k, x in enumerate(inst.operands) if has_float(x.shape)]
    derivative = e.derivative(body, wrt)
    forward = e._copy(body, inst.operands, body.instructions)
    e.replacements.append((inst, forward[id(body.root)]))
    clones = _forward_clones(body, derivative)
    saved = {id(clones[id(b)]): forward[id(b)] for b in body.instructions
             if id(b) in clones and id(b) in forward and policy(b)}
    start = len(e.b.computation.instructions)
    result = e.inline(derivative, list(inst.operands)
                      + e.output_cotangents(body, g, inst.shape), known=saved)
    if prevent_cse:
        for made in e.b.computation.instructions[start:]:
            made.extra_attrs[REMAT_MARK] = "true"
    n_out = len(output_leaves(body))
    out: list[Cotangent] = [None] * len(inst.operands)
    for i, k in enumerate(wrt):
        out[k] = e.gte(result, n_out + i)
    return out
