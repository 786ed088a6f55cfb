"""What every per-concern op table shares: the mark for an op a table does not cover.

Each concern (reference semantics, VJP rules, CPU and PTX lowerings) keeps a table keyed by
`Opcode` in the package that owns the concern. A table covers an op with a rule or marks
it `Unsupported` with the reason; `tests/test_op_tables.py` walks the enum and fails on any
op that a table neither covers nor marks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from flowjit.ir.opcodes import Opcode


@dataclass(frozen=True)
class Unsupported:
    """A table's entry for an op it deliberately does not cover, and why."""

    reason: str


def uncovered(table: Mapping) -> list[Opcode]:
    """The opcodes `table` neither covers nor marks unsupported."""
    return [op for op in Opcode if op not in table]

