"""Loops and branches for the emitters, as context managers with named blocks."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from llvmlite import ir as llvm_ir

from flowjit.codegen.llvm_types import I64, i64


_nesting = threading.local()   # per thread: for each open for_range, "holds a loop?"


def _no_unroll_loop_id(module: llvm_ir.Module) -> llvm_ir.Value:
    """A loop ID (a distinct, self-referencing node) saying "do not unroll this loop"."""
    disable = module.add_metadata([llvm_ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    # A name of its own, or add_metadata would hand back one cached node for every loop.
    tag = llvm_ir.MetaDataString(module, f"flowjit.outer.{len(module.metadata)}")
    loop_id = module.add_metadata([disable, tag])
    loop_id.operands = (loop_id,) + tuple(loop_id.operands)
    return loop_id


@contextlib.contextmanager
def for_range(builder: llvm_ir.IRBuilder, count, name: str = "i",
              start=None) -> Iterator[llvm_ir.Value]:
    """`for (i = start; i < count; ++i)`: yields i (i64); the body is emitted inside.

    A loop that holds another loop is marked not to be unrolled: copying an inner loop
    (vectorized, with its remainder) ten times made one 128x10 column reduction 1,500
    machine instructions and a third of a training step's compile time, for no speed."""
    start = start if start is not None else i64(0)
    count = count if isinstance(count, llvm_ir.Value) else i64(count)
    preheader = builder.block
    header = builder.append_basic_block(f"{name}.header")
    body = builder.append_basic_block(f"{name}.body")
    exit_block = builder.append_basic_block(f"{name}.exit")
    builder.branch(header)
    builder.position_at_end(header)
    index = builder.phi(I64, name=name)
    index.add_incoming(start, preheader)
    builder.cbranch(builder.icmp_signed("<", index, count), body, exit_block)
    builder.position_at_end(body)
    stack = _nesting.__dict__.setdefault("open", [])
    if stack:
        stack[-1] = True
    stack.append(False)
    try:
        yield index
    finally:
        holds_a_loop = stack.pop()
    following = builder.add(index, i64(1), name=f"{name}.next", flags=["nsw"])
    index.add_incoming(following, builder.block)
    back_edge = builder.branch(header)
    if holds_a_loop:
        back_edge.set_metadata("llvm.loop", _no_unroll_loop_id(builder.module))
    builder.position_at_end(exit_block)


def level_bounds(level: int, extent: int, rows=None) -> dict:
    """`for_range` bounds of loop `level` over `extent` elements: only rows [begin, end) of
    dimension 0 when `rows` is given (a thread's share of a kernel split by rows)."""
    if level == 0 and rows is not None:
        return {"count": rows[1], "start": rows[0]}
    return {"count": extent}


def select_by_branch(builder: llvm_ir.IRBuilder, condition, then_fn, else_fn,
                     name: str = "pick"):
    """Emit `condition ? then_fn() : else_fn()` with real branches (so a load that would be
    out of bounds in the untaken arm is never executed); returns the phi (or list of phis)."""
    then_block = builder.append_basic_block(f"{name}.then")
    else_block = builder.append_basic_block(f"{name}.else")
    merge = builder.append_basic_block(f"{name}.merge")
    builder.cbranch(condition, then_block, else_block)
    builder.position_at_end(then_block)
    then_value = then_fn()
    then_end = builder.block
    builder.branch(merge)
    builder.position_at_end(else_block)
    else_value = else_fn()
    else_end = builder.block
    builder.branch(merge)
    builder.position_at_end(merge)
    return merge_values(builder, [(then_value, then_end), (else_value, else_end)], name)


def merge_values(builder: llvm_ir.IRBuilder, incoming: list, name: str = "pick"):
    """At a merge block: the phi of (value, block it comes from) pairs, or a list of phis
    when the values are lists (tuple-shaped values)."""
    first = incoming[0][0]
    if isinstance(first, list):
        phis = []
        for k, part in enumerate(first):
            phi = builder.phi(part.type)
            for value, block in incoming:
                phi.add_incoming(value[k], block)
            phis.append(phi)
        return phis
    phi = builder.phi(first.type, name=name)
    for value, block in incoming:
        phi.add_incoming(value, block)
    return phi


def alloca_at_entry(builder: llvm_ir.IRBuilder, typ: llvm_ir.Type, name: str = "",
                    count: int = None):
    """A stack slot in the function's entry block, so mem2reg can promote it."""
    function = builder.function
    entry = function.entry_basic_block
    saved = builder.block
    if entry.instructions:
        builder.position_before(entry.instructions[0])
    else:
        builder.position_at_end(entry)
    size = None if count is None else llvm_ir.Constant(llvm_ir.IntType(64), count)
    slot = builder.alloca(typ, size=size, name=name)
    builder.position_at_end(saved)
    return slot
