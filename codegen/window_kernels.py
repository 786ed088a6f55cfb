"""Kernels of the windowed ops that are not one value per output element.

- A reduce-window that is a prefix scan (JAX lowers cumsum, cumprod, cummax... to a window
  as long as the axis, padded on one side) runs as one pass along the axis, carrying the
  running fold, instead of folding a window of n elements for each of n outputs (O(n^2)).
  Its operand may be a fused elementwise producer, computed once per element.
- select-and-scatter fills its result with the init value, then for each source element
  (row-major) picks one operand element of its window with `select` and combines the
  source element into the result there with `scatter` (XLA's order, so ties and
  non-commutative combiners give XLA's answer).
"""
from __future__ import annotations

from typing import Optional

from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, for_range
from flowjit.codegen.elemental import (ElementalEmitter, emit_scalar_computation, linearize,
                                       load_element)
from flowjit.codegen.llvm_types import i64, memory_type
from flowjit.codegen.scalar_ops import ScalarContext, from_memory, to_memory
from flowjit.codegen.window_elemental import tap_position
from flowjit.ir.module import Instruction
from flowjit.ir.windows import is_prefix_scan, prefix_scan_axis


def prefix_scan_of(inst: Instruction) -> Optional[Instruction]:
    """The single-operand prefix-scan reduce-window `inst` computes (itself, or the root of
    the fusion it is), if any."""
    root = inst.calls["calls"].root if inst.opcode == "fusion" else inst
    return root if is_prefix_scan(root) else None


def scan_splits_rows(inst: Instruction) -> bool:
    """Whether a prefix scan runs along dimension 0 (its rows cannot be split over threads)."""
    scan = prefix_scan_of(inst)
    return scan is not None and prefix_scan_axis(scan.operands[0].shape.dims,
                                                 scan.attrs["window"])[0] == 0


def _store(ctx: ScalarContext, pointer, shape, index: list, value) -> None:
    b = ctx.builder
    address = b.gep(pointer, [linearize(b, index, shape.dims)], inbounds=True,
                    source_etype=memory_type(shape.dtype))
    b.store(to_memory(ctx, value, shape.dtype), address)


def emit_prefix_scan(ctx: ScalarContext, emitter: ElementalEmitter, scan: Instruction,
                     out, rows=None) -> None:
    """out[..., i, ...] = fold(init, x[..., 0..i, ...]) (reverse: x[..., i..n-1, ...]) in one
    pass. With trailing dims the running fold is the previous output row (a vectorizable
    loop over the row); without, it is carried in a register."""
    x, init = scan.operands
    axis, reverse = prefix_scan_axis(x.shape.dims, scan.attrs["window"])
    comp = scan.calls["to_apply"]
    dims = x.shape.dims
    shape = scan.shape
    b = ctx.builder
    n = dims[axis]
    initial = emitter.value(init, [])
    inner = dims[axis + 1:]
    index: list = []

    def combine(previous, position: list):
        emitter.push_scope()
        element = emitter.value(x, position)
        emitter.pop_scope()
        return emit_scalar_computation(emitter, comp, [previous, element])

    def along_axis() -> None:
        if all(d == 1 for d in inner):
            slot = alloca_at_entry(b, initial.type, "scan.acc")
            b.store(initial, slot)
            with for_range(b, n, "scan") as step:
                i = b.sub(i64(n - 1), step) if reverse else step
                position = index + [i] + [i64(0)] * len(inner)
                folded = combine(b.load(slot), position)
                b.store(folded, slot)
                _store(ctx, out, shape, position, folded)
            return
        with for_range(b, n, "scan") as step:
            i = b.sub(i64(n - 1), step) if reverse else step
            first = b.icmp_signed("==", step, i64(0))
            before = b.add(i, i64(1)) if reverse else b.sub(i, i64(1))
            before = b.select(first, i, before)   # in bounds; not used on the first step
            inner_index: list = []

            def row(level: int) -> None:
                if level == len(inner):
                    previous = load_element(ctx, out, shape, index + [before] + inner_index)
                    previous = b.select(first, initial, previous)
                    position = index + [i] + inner_index
                    _store(ctx, out, shape, position, combine(previous, position))
                    return
                with for_range(b, inner[level], f"scan.inner{level}") as v:
                    inner_index.append(v)
                    row(level + 1)
                    inner_index.pop()
            row(0)

    def outer(level: int) -> None:
        if level == axis:
            along_axis()
            return
        bounds = ({"count": rows[1], "start": rows[0]} if level == 0 and rows is not None
                  else {"count": dims[level]})
        with for_range(b, name=f"scan.outer{level}", **bounds) as v:
            index.append(v)
            outer(level + 1)
            index.pop()
    if shape.size:
        outer(0)


def emit_select_and_scatter(ctx: ScalarContext, emitter: ElementalEmitter, inst: Instruction,
                            out, operand_ptr, source_ptr) -> None:
    """The result: init everywhere, then each source element scattered onto the operand
    element its window selects."""
    operand, source, init = inst.operands
    window = inst.attrs["window"]
    b = ctx.builder
    shape = inst.shape
    initial = emitter.value(init, [])
    with for_range(b, shape.size, "fill") as k:
        address = b.gep(out, [k], inbounds=True, source_etype=memory_type(shape.dtype))
        b.store(to_memory(ctx, initial, shape.dtype), address)
    if source.shape.size == 0 or shape.size == 0:
        return
    dtype = operand.shape.dtype
    probe = load_element(ctx, operand_ptr, operand.shape, [i64(0)] * operand.shape.rank)
    chosen = alloca_at_entry(b, probe.type, "select.value")
    where = alloca_at_entry(b, llvm_ir.IntType(64), "select.where")
    found = alloca_at_entry(b, llvm_ir.IntType(1), "select.found")
    position: list = []
    tap_index: list = []
    conditions: list = []

    def consider() -> None:
        value = load_element(ctx, operand_ptr, operand.shape, tap_index)
        has = b.load(found)
        keep = emit_scalar_computation(emitter, inst.calls["select"], [b.load(chosen), value])
        take = b.or_(b.not_(has), b.not_(keep))
        with b.if_then(take):
            b.store(value, chosen)
            b.store(linearize(b, tap_index, operand.shape.dims), where)
            b.store(llvm_ir.Constant(llvm_ir.IntType(1), 1), found)

    def taps(d: int) -> None:
        if d == len(window):
            live = [c for c in conditions if c is not None]
            if not live:
                consider()
                return
            condition = live[0]
            for c in live[1:]:
                condition = b.and_(condition, c)
            with b.if_then(condition):
                consider()
            return
        with for_range(b, window[d].size, f"tap{d}") as k:
            index, condition = tap_position(b, position[d], k, window[d],
                                            operand.shape.dims[d], source.shape.dims[d])
            tap_index.append(index)
            conditions.append(condition)
            taps(d + 1)
            conditions.pop()
            tap_index.pop()

    def sources(d: int) -> None:
        if d == source.shape.rank:
            b.store(llvm_ir.Constant(llvm_ir.IntType(1), 0), found)
            b.store(probe, chosen)
            taps(0)
            with b.if_then(b.load(found)):
                target = b.load(where)
                address = b.gep(out, [target], inbounds=True,
                                source_etype=memory_type(dtype))
                old = from_memory(ctx, b.load(address, typ=memory_type(dtype)), dtype)
                update = load_element(ctx, source_ptr, source.shape, position)
                combined = emit_scalar_computation(emitter, inst.calls["scatter"],
                                                   [old, update])
                b.store(to_memory(ctx, combined, dtype), address)
            return
        with for_range(b, source.shape.dims[d], f"source{d}") as v:
            position.append(v)
            sources(d + 1)
            position.pop()
    sources(0)
