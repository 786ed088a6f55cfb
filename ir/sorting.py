"""What sort comparators mean, shared by the reference semantics and the code generator.

A sort comparator is a computation over (lhs_0, rhs_0, lhs_1, rhs_1, ...) returning pred.
Most are *keyed*: `compare(f(lhs_i), f(rhs_i)), direction=LT|GT` for one operand i and one
elementwise function f applied the same way to both sides (JAX's comparator canonicalizes
NaN and -0.0 that way, then compares with type=TOTALORDER). A keyed comparator sorts by the
key f(x) alone, so a whole row's keys can be computed at once and sorted with a stable
numpy sort or a radix sort on their bits, instead of calling the comparator per pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from flowjit.ir.module import Computation, Instruction


@dataclass(frozen=True)
class SortKey:
    """A keyed comparator: operand `operand` sorted by `key` (an instruction of the
    comparator reading parameter 2 * operand only), descending for direction GT."""

    operand: int
    key: Instruction
    descending: bool
    total_order: bool   # floats compared with type=TOTALORDER (NaNs and -0.0 ordered)


def _same_with_rhs(lhs: Instruction, rhs: Instruction, memo: dict) -> bool:
    """Whether `rhs` computes what `lhs` does with each lhs parameter 2i read from 2i + 1,
    through elementwise ops and scalar constants only."""
    pair = (id(lhs), id(rhs))
    if pair in memo:
        return memo[pair]
    from flowjit.ir.ops import spec
    if lhs.opcode == "parameter":
        number = lhs.attrs["number"]
        same = (rhs.opcode == "parameter" and number % 2 == 0
                and rhs.attrs["number"] == number + 1)
    elif lhs.opcode == "constant":
        same = (rhs.opcode == "constant" and lhs.shape == rhs.shape
                and np.array_equal(lhs.literal, rhs.literal, equal_nan=True))
    else:
        same = (lhs.opcode == rhs.opcode and spec(lhs.opcode).elementwise
                and lhs.shape == rhs.shape and lhs.attrs == rhs.attrs
                and len(lhs.operands) == len(rhs.operands)
                and all(_same_with_rhs(a, b, memo)
                        for a, b in zip(lhs.operands, rhs.operands)))
    memo[pair] = same
    return same


def _parameters_read(inst: Instruction) -> set[int]:
    stack, seen, numbers = [inst], set(), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.opcode == "parameter":
            numbers.add(node.attrs["number"])
        stack.extend(node.operands)
    return numbers


def sort_key(comparator: Computation) -> Optional[SortKey]:
    """The SortKey of a keyed comparator (see the module's docstring), else None."""
    root = comparator.root
    if root.opcode != "compare" or root.attrs.get("direction") not in ("LT", "GT"):
        return None
    lhs, rhs = root.operands
    read = _parameters_read(lhs)
    if len(read) != 1 or next(iter(read)) % 2:
        return None
    if not _same_with_rhs(lhs, rhs, {}):
        return None
    return SortKey(next(iter(read)) // 2, lhs, root.attrs["direction"] == "GT",
                   root.attrs.get("type") == "TOTALORDER")


def total_order_keys(x: np.ndarray) -> np.ndarray:
    """int64 keys ordered as XLA's TOTALORDER orders `x` (floats: -NaN < -inf < ... < -0.0
    < +0.0 < ... < +inf < +NaN, by their bits; integers and pred by value)."""
    x = np.asarray(x)
    if x.dtype.kind == "b":
        return x.astype(np.int64)
    if x.dtype.kind in "iu":
        if x.dtype == np.uint64:
            return (x ^ np.uint64(1 << 63)).view(np.int64)
        return x.astype(np.int64)
    bits = x.dtype.itemsize * 8
    signed = np.ascontiguousarray(x).view(f"i{x.dtype.itemsize}").astype(np.int64)
    magnitude = (1 << (bits - 1)) - 1
    return np.where(signed < 0, signed ^ magnitude, signed)
