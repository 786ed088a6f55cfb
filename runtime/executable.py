"""Executables: a compiled module, its buffer plan, and a call that runs it on numpy arrays.

The plan gives every array value of the entry computation a *slot*: the caller's arrays for
parameters, literals for constants, fresh arrays for outputs, and offsets in one arena for
temporaries (values whose lifetimes don't overlap share arena bytes). One ctypes call runs
the whole module: the LLVM `entry` function reads the slot table and calls every kernel.
"""
from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from codegen import ModuleLowering, NO_KERNEL, compile_llvm_ir, host_data_layout, host_triple
from ir.module import Instruction, Module
from ir.shapes import ArrayShape, leaves

SlotTree = Union[int, list]
_ALIGN = 64


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


def _flatten(tree: SlotTree) -> list[int]:
    if isinstance(tree, int):
        return [tree]
    return [s for t in tree for s in _flatten(t)]


def plan_buffers(module: Module) -> tuple[BufferPlan, dict[int, SlotTree]]:
    """Slots for every value, and an arena with reuse by liveness.

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
            for s in _flatten(trees[id(operand)]):
                last_use[s] = position
    plan.outputs = _flatten(trees[id(entry.root)])
    output_set = set(plan.outputs)
    temps = [s for s in produced_at if s not in output_set]
    _assign_arena(plan, temps, produced_at, last_use)
    for slot in pinned:
        if slot in output_set:
            continue
        plan.arena_offsets[slot] = plan.arena_size
        plan.arena_size += max(_ALIGN, -(-plan.shapes[slot].nbytes // _ALIGN) * _ALIGN)
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
    """First-fit placement by lifetime: a value's bytes are reused once it is dead."""
    live: list[tuple[int, int, int]] = []  # (offset, size, dies_at)
    size_total = 0
    for slot in sorted(temps, key=lambda s: produced_at[s]):
        born = produced_at[slot]
        dies = last_use.get(slot, born)
        live = [entry for entry in live if entry[2] >= born]
        size = max(_ALIGN, -(-plan.shapes[slot].nbytes // _ALIGN) * _ALIGN)
        offset = 0
        for other_offset, other_size, _ in sorted(live):
            if offset + size <= other_offset:
                break
            offset = max(offset, other_offset + other_size)
        live.append((offset, size, dies))
        plan.arena_offsets[slot] = offset
        size_total = max(size_total, offset + size)
    plan.arena_size = size_total


class Executable:
    """A module compiled for the host CPU. Call it with numpy arrays, one per parameter."""

    def __init__(self, module: Module, llvm_opt_level: int = 3):
        timings = {}
        start = time.perf_counter()
        self.module = module
        self.plan, self._trees = plan_buffers(module)
        lowering = ModuleLowering(module, self._slots_of, self.plan.num_slots, host_triple(),
                                  host_data_layout())
        self.llvm_ir = str(lowering.lower())
        self.kernels = lowering.kernels
        timings["llvm_ir"] = time.perf_counter() - start
        code = compile_llvm_ir(self.llvm_ir, llvm_opt_level)
        timings.update(code.timings)
        self.timings = timings
        self.optimized_llvm_ir = code.optimized_ir
        self._code = code  # keeps the JIT engine (and the machine code) alive
        self._entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(code.entry_address)
        self._lock = threading.Lock()
        self._arena = np.empty(self.plan.arena_size + _ALIGN, dtype=np.uint8)
        arena_base = self._arena.ctypes.data
        arena_base += (-arena_base) % _ALIGN
        self._table = (ctypes.c_void_p * max(self.plan.num_slots, 1))()
        for slot, array in self.plan.constants.items():
            self._table[slot] = array.ctypes.data
        for slot, offset in self.plan.arena_offsets.items():
            self._table[slot] = arena_base + offset
        self._param_shapes = [p.shape for p in module.entry.parameters]
        external = set(self.plan.inputs) | set(self.plan.constants)
        seen: set[int] = set()
        self._fresh_outputs = []   # per output leaf: computed straight into a fresh array?
        for slot in self.plan.outputs:
            self._fresh_outputs.append(slot not in external and slot not in seen)
            seen.add(slot)

    def _slots_of(self, inst: Instruction) -> list[int]:
        return _flatten(self._trees[id(inst)])

    def __call__(self, *args: np.ndarray) -> list[np.ndarray]:
        if len(args) != len(self._param_shapes):
            raise TypeError(f"{self.module.name} takes {len(self._param_shapes)} arrays, "
                            f"got {len(args)}")
        arrays = []
        for k, (arg, shape) in enumerate(zip(args, self._param_shapes)):
            array = np.asarray(arg, dtype=shape.dtype.to_numpy(), order="C")
            if array.shape != shape.dims:
                raise ValueError(f"argument {k} has shape {array.shape}, expected "
                                 f"{shape.dims}")
            arrays.append(array)
        plan = self.plan
        outputs: list[Optional[np.ndarray]] = []
        with self._lock:
            table = self._table
            for slot, array in zip(plan.inputs, arrays):
                table[slot] = array.ctypes.data
            for slot, fresh in zip(plan.outputs, self._fresh_outputs):
                if fresh:
                    shape = plan.shapes[slot]
                    out = np.empty(shape.dims, dtype=shape.dtype.to_numpy())
                    table[slot] = out.ctypes.data
                    outputs.append(out)
                else:
                    outputs.append(None)
            self._entry(ctypes.addressof(table))
            # Outputs that are parameters, constants or repeats are copies of their slot.
            for k, (slot, fresh) in enumerate(zip(plan.outputs, self._fresh_outputs)):
                if not fresh:
                    outputs[k] = self._read_slot(slot, arrays).copy()
        return outputs

    def _read_slot(self, slot: int, arrays: list[np.ndarray]) -> np.ndarray:
        if slot in self.plan.inputs:
            return arrays[self.plan.inputs.index(slot)]
        if slot in self.plan.constants:
            return self.plan.constants[slot]
        shape = self.plan.shapes[slot]
        address = self._table[slot]
        buffer = (ctypes.c_uint8 * max(shape.nbytes, 1)).from_address(address)
        return np.frombuffer(buffer, dtype=shape.dtype.to_numpy(),
                             count=shape.size).reshape(shape.dims)


def compile_module(module: Module, llvm_opt_level: int = 3) -> Executable:
    """Compile a (fused, scheduled) module for the host CPU."""
    return Executable(module, llvm_opt_level)
