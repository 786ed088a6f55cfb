"""Buffer planning: a slot for every array value, an arena shared by liveness.

Parameters are the caller's arrays, constants their literals, outputs fresh arrays, and
temporaries offsets in one arena where values whose lifetimes don't overlap share bytes.
Values inside loop bodies, branches and called computations get bytes of their own. Both
the assign-buffers pass (to show the plan in the HLO text) and the runtime use this.
"""
from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from flowjit.ir.module import Instruction, Module
from flowjit.ir.shapes import ArrayShape, leaves

SlotTree = Union[int, list]
ALIGN = 64


@dataclass
class BufferPlan:
    """Where each slot's bytes live: inputs, constants, outputs, or arena offsets."""

    num_slots: int = 0
    shapes: dict[int, ArrayShape] = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)           # slot per parameter number
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    outputs: list[int] = field(default_factory=list)          # slot per output leaf
    arena_offsets: dict[int, int] = field(default_factory=dict)
    arena_size: int = 0

    def new_slot(self, shape: ArrayShape) -> int:
        self.shapes[self.num_slots] = shape
        self.num_slots += 1
        return self.num_slots - 1


def flatten_slots(tree: SlotTree) -> list[int]:
    if isinstance(tree, int):
        return [tree]
    return [s for t in tree for s in flatten_slots(t)]


def plan_buffers(module: Module,
                 reuse: Optional[bool] = None) -> tuple[BufferPlan, dict[int, SlotTree]]:
    """Slots for every value, and an arena with reuse by liveness.

    Bytes are reused only when `reuse` is true; by default, when the assign-buffers pass has
    planned the module (its `buffer=` attributes are in the IR), so opt_level 0 keeps one
    buffer per value.

    Entry temporaries share arena bytes when their lifetimes don't overlap. Values inside
    loop bodies, branches and called computations get bytes of their own (they live across
    iterations), as do a loop's state buffers.
    """
    plan = BufferPlan()
    trees: dict[int, SlotTree] = {}
    entry = module.entry
    plan.inputs = [-1] * len(entry.parameters)
    produced_at: dict[int, int] = {}
    last_use: dict[int, int] = {}
    pinned: list[int] = []
    for position, inst in enumerate(entry.instructions):
        if inst.opcode == "parameter":
            if inst.shape.is_tuple:
                raise NotImplementedError("tuple-shaped entry parameters are not supported")
            slot = plan.new_slot(inst.shape)
            plan.inputs[inst.attrs["number"]] = slot
            trees[id(inst)] = slot
            continue
        new_slots = _plan_instruction(plan, trees, inst, pinned)
        for s in new_slots:
            produced_at[s] = position
        for operand in inst.operands:
            for s in flatten_slots(trees[id(operand)]):
                last_use[s] = position
    plan.outputs = flatten_slots(trees[id(entry.root)])
    output_set = set(plan.outputs)
    temps = [s for s in produced_at if s not in output_set]
    if reuse is None:
        reuse = any("buffer" in i.attrs for i in entry.instructions)
    if not reuse:
        last_use = {s: len(entry.instructions) for s in temps}  # every value lives to the end
    _assign_arena(plan, temps, produced_at, last_use)
    for slot in pinned:
        if slot in output_set:
            continue
        plan.arena_offsets[slot] = plan.arena_size
        plan.arena_size += max(ALIGN, -(-plan.shapes[slot].nbytes // ALIGN) * ALIGN)
    return plan, trees


def _plan_instruction(plan: BufferPlan, trees: dict, inst: Instruction,
                      pinned: list[int]) -> list[int]:
    """Give `inst` its slot tree; returns the slots it newly creates."""
    op = inst.opcode
    if op == "constant":
        slot = plan.new_slot(inst.shape)
        plan.constants[slot] = np.array(inst.literal, dtype=inst.shape.dtype.to_numpy(),
                                        order="C").reshape(inst.shape.dims)
        trees[id(inst)] = slot
        return []
    if op == "tuple":
        trees[id(inst)] = [trees[id(o)] for o in inst.operands]
        return []
    if op == "get-tuple-element":
        trees[id(inst)] = trees[id(inst.operands[0])][inst.attrs["index"]]
        return []
    if op == "call":
        callee = inst.calls["to_apply"]
        _plan_nested(plan, trees, callee, [trees[id(o)] for o in inst.operands], pinned)
        trees[id(inst)] = trees[id(callee.root)]
        return []
    slots = [plan.new_slot(s) for s in leaves(inst.shape)]
    trees[id(inst)] = _rebuild(inst.shape, iter(slots))
    if op == "while":
        state = trees[id(inst)]
        _plan_nested(plan, trees, inst.calls["condition"], [state], pinned)
        _plan_nested(plan, trees, inst.calls["body"], [state], pinned)
        pinned.extend(slots)  # the state lives through the whole loop
        return []
    if op == "conditional":
        branches = inst.calls.get("branch_computations") or [
            inst.calls["true_computation"], inst.calls["false_computation"]]
        for branch, operand in zip(branches, inst.operands[1:]):
            _plan_nested(plan, trees, branch, [trees[id(operand)]], pinned)
    return slots


def _plan_nested(plan: BufferPlan, trees: dict, comp, param_trees: list,
                 pinned: list[int]) -> None:
    """Slots for a called computation: its parameters are the given trees."""
    if comp.root is not None and id(comp.root) in trees:
        # One plan per computation: a second call site would overwrite the first's slots.
        raise ValueError(f"computation %{comp.name} is called from more than one loop or "
                         f"branch; run the flatten-call-graph pass before planning buffers")
    for inst in comp.instructions:
        if inst.opcode == "parameter":
            trees[id(inst)] = param_trees[inst.attrs["number"]]
        else:
            pinned.extend(_plan_instruction(plan, trees, inst, pinned))


def _rebuild(shape, it) -> SlotTree:
    if shape.is_tuple:
        return [_rebuild(e, it) for e in shape.elements]
    return next(it)


def _assign_arena(plan: BufferPlan, temps: list[int], produced_at: dict, last_use: dict):
    """First-fit placement by lifetime: a value's bytes are reused once it is dead.

    The live blocks are kept sorted by offset and retired from a heap by death, and the
    gaps are searched only when they could hold the value, so a program whose values all
    live to the end (opt_level 0) is planned in O(n log n), not O(n^2)."""
    by_offset: list[tuple[int, int, int]] = []   # live blocks: (offset, size, slot)
    deaths: list[tuple[int, int, int, int]] = []  # heap of (dies_at, offset, size, slot)
    live_bytes = 0
    size_total = 0
    for slot in sorted(temps, key=lambda s: produced_at[s]):
        born = produced_at[slot]
        dies = last_use.get(slot, born)
        while deaths and deaths[0][0] < born:
            _, offset, size, dead = heapq.heappop(deaths)
            del by_offset[bisect.bisect_left(by_offset, (offset, size, dead))]
            live_bytes -= size
        size = max(ALIGN, -(-plan.shapes[slot].nbytes // ALIGN) * ALIGN)
        top = by_offset[-1][0] + by_offset[-1][1] if by_offset else 0
        offset = top
        if top - live_bytes >= size:   # the gaps below `top` might hold it: first fit
            offset = 0
            for other_offset, other_size, _ in by_offset:
                if offset + size <= other_offset:
                    break
                offset = max(offset, other_offset + other_size)
        bisect.insort(by_offset, (offset, size, slot))
        heapq.heappush(deaths, (dies, offset, size, slot))
        live_bytes += size
        plan.arena_offsets[slot] = offset
        size_total = max(size_total, offset + size)
    plan.arena_size = size_total
