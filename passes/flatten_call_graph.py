"""flatten-call-graph: every loop body, loop condition and branch is called from one place.

The buffer plan gives the values inside a called computation slots of their own, bound to
the state of the instruction that calls it. When two `while`s share a body (autodiff and
inlining both make such sharing), one plan would serve both loops and the second would
overwrite the first's slots. XLA's FlattenCallGraph does the same thing for the same reason.
Reducers and fusion bodies are emitted as scalar code at each use, so they may stay shared.
"""
from __future__ import annotations

from flowjit.ir.builder import NameTable
from flowjit.ir.graph import clone_instructions
from flowjit.ir.module import Computation, Module

# The attributes whose computations the buffer plan lays out per call site.
PLANNED_CALLS = {
    "while": ("condition", "body"),
    "conditional": ("true_computation", "false_computation", "branch_computations"),
    "call": ("to_apply",),
}


def clone_computation(comp: Computation, names: NameTable) -> Computation:
    """A copy of `comp` with fresh instruction names; it calls the same computations."""
    copies, mapping = clone_instructions(comp.instructions, names)
    return Computation(names.fresh(comp.name), copies, mapping[id(comp.root)])


def run(module: Module) -> bool:
    """Clone each loop body, condition, branch or callee that is called from a second site."""
    names = NameTable.for_module(module)
    claimed: set[int] = set()
    changed = False
    work = [module.entry]
    while work:
        comp = work.pop()
        for inst in comp.instructions:
            for attr in PLANNED_CALLS.get(inst.opcode, ()):
                if attr not in inst.calls:
                    continue
                value = inst.calls[attr]
                callees = value if isinstance(value, list) else [value]
                unique = []
                for callee in callees:
                    if id(callee) in claimed:
                        callee = module.add_computation(clone_computation(callee, names))
                        changed = True
                    claimed.add(id(callee))
                    unique.append(callee)
                    work.append(callee)
                inst.calls[attr] = unique if isinstance(value, list) else unique[0]
    return changed
