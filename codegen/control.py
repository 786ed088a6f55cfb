"""Loops and branches for the emitters, as context managers with named blocks."""
from __future__ import annotations

import contextlib
from typing import Iterator

from llvmlite import ir as llvm_ir

from codegen.types import I64, i64


@contextlib.contextmanager
def for_range(builder: llvm_ir.IRBuilder, count, name: str = "i",
              start=None) -> Iterator[llvm_ir.Value]:
    """`for (i = start; i < count; ++i)`: yields i (i64); the body is emitted inside."""
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
    yield index
    following = builder.add(index, i64(1), name=f"{name}.next", flags=["nsw"])
    index.add_incoming(following, builder.block)
    builder.branch(header)
    builder.position_at_end(exit_block)


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
    if isinstance(then_value, list):
        phis = []
        for a, b in zip(then_value, else_value):
            phi = builder.phi(a.type)
            phi.add_incoming(a, then_end)
            phi.add_incoming(b, else_end)
            phis.append(phi)
        return phis
    phi = builder.phi(then_value.type, name=name)
    phi.add_incoming(then_value, then_end)
    phi.add_incoming(else_value, else_end)
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
