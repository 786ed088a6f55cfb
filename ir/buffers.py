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
    pinned: list[int] = []
    owned: dict[int, set[int]] = {}   # per computation (by id): slots it may write in place
    for position, inst in enumerate(entry.instructions):
        if inst.opcode == "parameter":
            if inst.shape.is_tuple:
                raise NotImplementedError("tuple-shaped entry parameters are not supported")
            slot = plan.new_slot(inst.shape)
            plan.inputs[inst.attrs["number"]] = slot
            trees[id(inst)] = slot
            continue
        new_slots = _plan_instruction(plan, trees, inst, pinned, owned)
        for s in new_slots:
            produced_at[s] = position
    if reuse is None:
        reuse = any("buffer" in i.attrs for i in entry.instructions)
    if reuse:
        owned[id(entry)] = set(produced_at) | {s for s in pinned}
        merged = _update_in_place(module, trees, owned)
        pinned = [s for s in pinned if s not in merged]
        produced_at = {s: p for s, p in produced_at.items() if s not in merged}
    last_use: dict[int, int] = {}
    for position, inst in enumerate(entry.instructions):
        for operand in inst.operands:
            for s in flatten_slots(trees[id(operand)]):
                last_use[s] = position
    plan.outputs = flatten_slots(trees[id(entry.root)])
    output_set = set(plan.outputs)
    temps = [s for s in produced_at if s not in output_set]
    if not reuse:
        last_use = {s: len(entry.instructions) for s in temps}  # every value lives to the end
    _assign_arena(plan, temps, produced_at, last_use)
    for slot in pinned:
        if slot in output_set:
            continue
        plan.arena_offsets[slot] = plan.arena_size
        plan.arena_size += max(ALIGN, -(-plan.shapes[slot].nbytes // ALIGN) * ALIGN)
    return plan, trees


def updated_operand(inst: Instruction) -> Optional[int]:
    """Which operand `inst` may overwrite with its result, if any: a dynamic-update-slice or
    scatter changes part of its operand 0 and copies the rest, so written in place only the
    changed part is written (XLA does the same). A fusion qualifies when its root is such an
    update of a parameter that nothing else in the fusion reads, except to read the updated
    window itself element by element (x[w] = x[w] + u: each element is read just before it
    is written)."""
    if inst.opcode in ("dynamic-update-slice", "scatter"):
        return 0 if not inst.shape.is_tuple else None
    if inst.opcode != "fusion":
        return None
    comp = inst.calls["calls"]
    root = comp.root
    accumulator = accumulated_parameter(comp)
    if accumulator is not None:
        return accumulator.attrs["number"]
    if root.opcode != "dynamic-update-slice" or root.operands[0].opcode != "parameter":
        return None
    target, update, *starts = root.operands
    if target in root.operands[1:]:
        return None
    window_reads = []
    for other in comp.instructions:
        if other is root or target not in other.operands:
            continue
        if not (other.opcode == "dynamic-slice" and other.operands[0] is target
                and other.operands[1:] == starts and other.shape.dims == update.shape.dims):
            return None
        window_reads.append(other)
    if window_reads and not _elementwise_from(update, set(map(id, window_reads))):
        return None
    return target.attrs["number"]


def accumulated_parameter(comp) -> Optional[Instruction]:
    """The parameter P of a fused `P + dot(a, b)` that nothing else in the fusion reads: the
    product can be added into P's buffer in place (a GEMM with beta = 1), as a loop's
    gradient accumulates a weight's gradient step by step."""
    root = comp.root
    if root.opcode != "add" or root.shape.is_tuple:
        return None
    for acc, product in (root.operands, reversed(root.operands)):
        if (acc.opcode == "parameter" and product.opcode == "dot" and acc is not product
                and acc.shape == root.shape == product.shape
                and not any((acc in i.operands or product in i.operands)
                            for i in comp.instructions if i is not root)):
            return acc
    return None


def _elementwise_from(value: Instruction, sources: set) -> bool:
    """Whether every path from `sources` (ids) to `value` keeps element positions (each step
    elementwise, of `value`'s dimensions), so element i of `value` reads element i of a
    source and no other."""
    from flowjit.ir.ops import spec
    dims = value.shape.dims
    memo: dict[int, tuple] = {}   # id -> (reaches a source?, positions kept on the way?)

    def visit(inst: Instruction) -> tuple:
        if id(inst) in sources:
            return True, True
        if id(inst) in memo:
            return memo[id(inst)]
        memo[id(inst)] = (False, True)   # (a fused computation has no cycles)
        reaches, kept = False, True
        for operand in inst.operands:
            r, k = visit(operand)
            reaches, kept = reaches or r, kept and k
        if reaches and not (spec(inst.opcode).elementwise and inst.shape.dims == dims):
            kept = False
        memo[id(inst)] = (reaches, kept)
        return reaches, kept
    return visit(value)[1]


_NAMES_ONLY = ("get-tuple-element", "tuple", "parameter")


def _update_in_place(module: Module, trees: dict, owned: dict) -> set[int]:
    """Give each update (see `updated_operand`) its operand's slot when the operand is dead
    after it and its computation owns the bytes (its own temporaries, or a loop's state in
    the loop body: never the caller's arrays, constants or a branch's operands). Renames the
    slots in `trees`; returns the slots no longer used."""
    rename: dict[int, int] = {}

    def find(s: int) -> int:
        while s in rename:
            s = rename[s]
        return s

    def slots(inst) -> list[int]:
        return [find(s) for s in flatten_slots(trees[id(inst)])]

    for comp in module.computations:
        mine = owned.get(id(comp))
        if not mine:
            continue
        instructions = comp.instructions
        last_read: dict[int, int] = {}
        for position, inst in enumerate(instructions):
            if inst.opcode in _NAMES_ONLY:
                continue   # names part of a value; whoever uses that reads it
            for operand in inst.operands:
                for s in slots(operand):
                    last_read[s] = position
        if comp.root is not None:   # the computation's results are read after it
            for s in slots(comp.root):
                last_read[s] = len(instructions)
        for position, inst in enumerate(instructions):
            k = updated_operand(inst) if id(inst) in trees else None
            if k is None:
                continue
            targets, results = slots(inst.operands[k]), slots(inst)
            if len(targets) != 1 or len(results) != 1:
                continue
            target, result = targets[0], results[0]
            if (target == result or target not in mine
                    or last_read.get(target, -1) > position
                    or any(target in slots(o) for j, o in enumerate(inst.operands) if j != k)):
                continue
            rename[result] = target
            last_read[target] = max(position, last_read.pop(result, position))
    if rename:
        for key, tree in trees.items():
            trees[key] = _renamed(tree, find)
    return set(rename)


def _renamed(tree: SlotTree, find) -> SlotTree:
    if isinstance(tree, int):
        return find(tree)
    return [_renamed(t, find) for t in tree]


def _plan_instruction(plan: BufferPlan, trees: dict, inst: Instruction,
                      pinned: list[int], owned: dict) -> list[int]:
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
        _plan_nested(plan, trees, callee, [trees[id(o)] for o in inst.operands], pinned, owned)
        trees[id(inst)] = trees[id(callee.root)]
        return []
    slots = [plan.new_slot(s) for s in leaves(inst.shape)]
    trees[id(inst)] = _rebuild(inst.shape, iter(slots))
    if op == "while":
        state = trees[id(inst)]
        _plan_nested(plan, trees, inst.calls["condition"], [state], pinned, owned)
        # The body owns the loop's state: an update there may overwrite it in place.
        _plan_nested(plan, trees, inst.calls["body"], [state], pinned, owned, set(slots))
        pinned.extend(slots)  # the state lives through the whole loop
        return []
    if op == "conditional":
        branches = inst.calls.get("branch_computations") or [
            inst.calls["true_computation"], inst.calls["false_computation"]]
        for branch, operand in zip(branches, inst.operands[1:]):
            _plan_nested(plan, trees, branch, [trees[id(operand)]], pinned, owned)
    return slots


def _plan_nested(plan: BufferPlan, trees: dict, comp, param_trees: list,
                 pinned: list[int], owned: dict, state: frozenset = frozenset()) -> None:
    """Slots for a called computation: its parameters are the given trees."""
    if comp.root is not None and id(comp.root) in trees:
        # One plan per computation: a second call site would overwrite the first's slots.
        raise ValueError(f"computation %{comp.name} is called from more than one loop or "
                         f"branch; run the flatten-call-graph pass before planning buffers")
    mine = owned.setdefault(id(comp), set(state))
    for inst in comp.instructions:
        if inst.opcode == "parameter":
            trees[id(inst)] = param_trees[inst.attrs["number"]]
        else:
            new_slots = _plan_instruction(plan, trees, inst, pinned, owned)
            pinned.extend(new_slots)
            mine.update(new_slots)


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
