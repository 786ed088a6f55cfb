"""Instruction, Computation and Module: the in-memory IR."""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Optional

import numpy as np

from flowjit.ir.graph import post_order
from flowjit.ir.opcodes import Opcode
from flowjit.ir.shapes import Shape

class UseCycleError(ValueError):
    """An instruction is (through its operands) an operand of itself."""

    def __init__(self, instruction: "Instruction"):
        super().__init__(f"%{instruction.name} depends on itself")
        self.instruction = instruction


class Instruction:
    """One use of an op: `%name = shape opcode(operands), attrs...`.

    `attrs` holds the op's attributes by their HLO names, already decoded (tuples of
    ints, strings, booleans); `calls` holds called computations by attribute name
    (a list for `branch_computations`). `literal` is the value of a `constant`.
    """

    __slots__ = ("name", "opcode", "shape", "operands", "attrs", "calls", "literal",
                 "metadata", "extra_attrs")

    def __init__(self, name: str, opcode: "Opcode | str", shape: Shape,
                 operands: Iterable["Instruction"] = (),
                 attrs: Optional[dict] = None, calls: Optional[dict] = None,
                 literal: Optional[np.ndarray] = None, metadata: Optional[dict] = None):
        self.name = name
        self.opcode = Opcode.parse(opcode)
        self.shape = shape
        self.operands = list(operands)
        self.attrs = dict(attrs or {})
        self.calls = dict(calls or {})
        self.literal = literal
        self.metadata = dict(metadata or {})
        self.extra_attrs: dict[str, str] = {}  # unknown attributes, kept verbatim

    def copy_with(self, name: str, operands: Iterable["Instruction"],
                  calls: Optional[dict] = None, metadata: Optional[dict] = None
                  ) -> "Instruction":
        """This instruction under another name on other operands: same opcode, shape,
        attributes, literal and unknown attributes; `calls` and `metadata` replace this
        one's when given."""
        twin = Instruction(name, self.opcode, self.shape, operands, self.attrs,
                           self.calls if calls is None else calls, self.literal,
                           self.metadata if metadata is None else metadata)
        twin.extra_attrs = dict(self.extra_attrs)
        return twin

    def called_computations(self) -> list["Computation"]:
        out = []
        for value in self.calls.values():
            out.extend(value if isinstance(value, list) else [value])
        return out

    @property
    def source_line(self) -> Optional[str]:
        """`file:line` of the user code that made this instruction, if known."""
        if "source_file" in self.metadata:
            return f"{self.metadata['source_file']}:{self.metadata.get('source_line', '?')}"
        return None

    def __repr__(self) -> str:
        return f"<%{self.name} = {self.shape} {self.opcode}>"


class Computation:
    """An ordered list of instructions with parameters and a root."""

    def __init__(self, name: str, instructions: Optional[list[Instruction]] = None,
                 root: Optional[Instruction] = None):
        self.name = name
        self.instructions: list[Instruction] = list(instructions or [])
        self.root: Optional[Instruction] = root if root is not None else (
            self.instructions[-1] if self.instructions else None)

    @property
    def parameters(self) -> list[Instruction]:
        params = [i for i in self.instructions if i.opcode == "parameter"]
        return sorted(params, key=lambda p: p.attrs["number"])

    def users(self) -> dict[Instruction, list[Instruction]]:
        """For each instruction, the instructions that use it (in program order)."""
        result: dict[Instruction, list[Instruction]] = {i: [] for i in self.instructions}
        for inst in self.instructions:
            for op in dict.fromkeys(inst.operands):
                result.setdefault(op, []).append(inst)
        return result

    def post_order(self) -> list[Instruction]:
        """Instructions reachable from the root (and all parameters), operands first."""
        return post_order(list(self.parameters) + ([self.root] if self.root is not None
                                                   else []))

    def sort(self) -> None:
        """Reorder so every operand precedes its users; keep the existing order otherwise.
        UseCycleError if an instruction depends on itself."""
        position = {id(i): n for n, i in enumerate(self.instructions)}
        placed: set[int] = set()
        ordered: list[Instruction] = []

        def place(inst: Instruction) -> None:
            stack = [(inst, iter(sorted(inst.operands, key=lambda o: position.get(id(o), -1))))]
            on_stack = {id(inst)}
            while stack:
                node, it = stack[-1]
                child = next(it, None)
                if child is None:
                    stack.pop()
                    on_stack.discard(id(node))
                    if id(node) not in placed:
                        placed.add(id(node))
                        ordered.append(node)
                elif id(child) in on_stack:
                    raise UseCycleError(child)
                elif id(child) not in placed:
                    on_stack.add(id(child))
                    stack.append((child, iter(child.operands)))

        for inst in list(self.instructions):
            place(inst)
        self.instructions = ordered

    def replace_all_uses(self, old: Instruction, new: Instruction) -> None:
        self.replace_uses({id(old): new})

    def replace_uses(self, replacements: dict[int, Instruction]) -> None:
        """Every use of an instruction (by id) in `replacements` reads its replacement
        instead, in one sweep over the computation (a replacement that is itself replaced
        is followed)."""
        def final(inst: Instruction) -> Instruction:
            seen = 0
            while id(inst) in replacements and seen <= len(replacements):
                inst, seen = replacements[id(inst)], seen + 1
            return inst
        for inst in self.instructions:
            if any(id(o) in replacements for o in inst.operands):
                inst.operands = [final(o) for o in inst.operands]
        if self.root is not None:
            self.root = final(self.root)

    def remove_unreachable(self) -> bool:
        live = {id(i) for i in self.post_order()}
        before = len(self.instructions)
        self.instructions = [i for i in self.instructions if id(i) in live]
        return len(self.instructions) != before

    def __repr__(self) -> str:
        return f"<Computation {self.name}: {len(self.instructions)} instructions>"


class Module:
    """An entry computation plus every computation it calls (reducers, bodies, fusions)."""

    def __init__(self, name: str, entry: Computation,
                 computations: Optional[list[Computation]] = None):
        self.name = name
        self.entry = entry
        others = [c for c in (computations or []) if c is not entry]
        self.computations: list[Computation] = others + [entry]

    def computation(self, name: str) -> Computation:
        for comp in self.computations:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def add_computation(self, comp: Computation) -> Computation:
        """Add `comp` before the entry; rename it if the name is taken."""
        taken = {c.name for c in self.computations}
        if comp.name in taken:
            base = comp.name.rsplit(".", 1)[0]
            comp.name = next(f"{base}.{n}" for n in itertools.count(1) if f"{base}.{n}" not in taken)
        self.computations.insert(len(self.computations) - 1, comp)
        return comp

    def reachable_computations(self) -> list[Computation]:
        """Computations reachable from the entry, callees before callers."""
        order: list[Computation] = []
        seen: set[int] = set()

        def visit(comp: Computation) -> None:
            if id(comp) in seen:
                return
            seen.add(id(comp))
            for inst in comp.instructions:
                for callee in inst.called_computations():
                    visit(callee)
            order.append(comp)

        visit(self.entry)
        return order

    def remove_dead_computations(self) -> bool:
        live = self.reachable_computations()
        changed = len(live) != len(self.computations)
        self.computations = [c for c in self.computations if c in live and c is not self.entry]
        self.computations.append(self.entry)
        return changed

    @property
    def result_shape(self) -> Shape:
        return self.entry.root.shape

    def copy(self) -> "Module":
        """A deep copy: new computations and instructions, so passes on the copy never touch
        this module (shapes and literals are never changed in place, so they are shared).
        Much cheaper than printing and parsing."""
        comps = {id(c): Computation(c.name) for c in self.computations}
        insts: dict[int, Instruction] = {}

        def called(value):
            return [comps[id(c)] for c in value] if isinstance(value, list) else comps[id(value)]
        for comp in self.computations:
            for inst in comp.instructions:
                twin = inst.copy_with(inst.name, (),
                                      calls={k: called(v) for k, v in inst.calls.items()})
                insts[id(inst)] = twin
                comps[id(comp)].instructions.append(twin)
        for comp in self.computations:
            for inst in comp.instructions:
                insts[id(inst)].operands = [insts[id(o)] for o in inst.operands]
            if comp.root is not None:
                comps[id(comp)].root = insts[id(comp.root)]
        return Module(self.name, comps[id(self.entry)],
                      [comps[id(c)] for c in self.computations])

    def to_text(self, **kwargs: Any) -> str:
        from flowjit.ir.printer import print_module
        return print_module(self, **kwargs)

    def __str__(self) -> str:
        return self.to_text()
