"""Walking and copying the instruction graph: the helpers passes and codegen share.

`post_order` is the one depth-first walk (iterative, so a chain of any length is fine);
`clone_instructions` is the one copy of a list of instructions through a value map;
`use_graph` gives a computation as a networkx graph, for the graph algorithms (cycles,
cuts) that networkx does well.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Optional

import networkx as nx

if TYPE_CHECKING:   # module.py uses post_order: no import cycle at run time
    from flowjit.ir.builder import NameTable
    from flowjit.ir.module import Computation, Instruction


def post_order(roots: Iterable["Instruction"],
               stop: Optional[Callable[["Instruction"], bool]] = None) -> list["Instruction"]:
    """Every instruction reachable from `roots` through operands, operands before users,
    each once; the walk does not enter an operand for which `stop` is true (nor list it)."""
    seen: set[int] = set()
    order: list["Instruction"] = []
    for start in roots:
        if id(start) in seen:
            continue
        seen.add(id(start))
        stack = [(start, iter(start.operands))]
        while stack:
            node, operands = stack[-1]
            child = next(operands, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif id(child) not in seen and not (stop is not None and stop(child)):
                seen.add(id(child))
                stack.append((child, iter(child.operands)))
    return order


def clone_instructions(instructions: Iterable[Instruction], names: "NameTable",
                       value_map: Optional[dict[int, "Instruction"]] = None,
                       metadata: Optional[dict] = None) -> tuple[list["Instruction"], dict]:
    """Copies of `instructions` (in order, operands before users) under fresh names, each
    reading the copies of its operands; `value_map` (by id of the original) seeds what an
    operand maps to, e.g. a callee's parameters to a call's arguments, and instructions
    already in it are not copied. Returns the copies and the completed map. `metadata`
    stands in for an instruction's own when that is empty."""
    mapping = dict(value_map or {})
    copies = []
    for inst in instructions:
        if id(inst) in mapping:
            continue
        twin = inst.copy_with(names.fresh(inst.name), [mapping[id(o)] for o in inst.operands],
                              metadata=(inst.metadata or metadata) if metadata else None)
        mapping[id(inst)] = twin
        copies.append(twin)
    return copies, mapping


def use_graph(comp: "Computation") -> nx.DiGraph:
    """The computation's instructions as nodes (by name), an edge from each operand to
    each of its users."""
    graph = nx.DiGraph()
    for inst in comp.instructions:
        graph.add_node(inst.name)
        for operand in inst.operands:
            graph.add_edge(operand.name, inst.name)
    return graph


def structure_key(inst: "Instruction", memo: Optional[dict] = None,
                  ignore_attrs: frozenset = frozenset()) -> tuple:
    """What `inst` computes, apart from names and where its operands come from: opcode,
    shapes (its own and its operands'), attributes (but `ignore_attrs`), literal and the
    structure of the computations it calls. Equal keys mean interchangeable code, given the
    same operand values. `memo` caches computations' keys by id across calls."""
    memo = {} if memo is None else memo
    calls = []
    for attr, value in sorted(inst.calls.items()):
        callees = value if isinstance(value, list) else [value]
        calls.append((attr, tuple(_computation_key(c, memo, ignore_attrs) for c in callees)))
    literal = None
    if inst.literal is not None:
        literal = (inst.literal.dtype.str, inst.literal.shape, inst.literal.tobytes())
    attrs = [(k, v) for k, v in sorted(inst.attrs.items()) if k not in ignore_attrs]
    return (inst.opcode, str(inst.shape), tuple(str(o.shape) for o in inst.operands),
            repr(attrs), literal, tuple(sorted(inst.extra_attrs.items())), tuple(calls))


def _computation_key(comp: "Computation", memo: dict, ignore_attrs: frozenset) -> tuple:
    """A computation's structure: each instruction's key and its operands' positions."""
    if id(comp) not in memo:
        position = {id(inst): n for n, inst in enumerate(comp.instructions)}
        memo[id(comp)] = tuple(
            (structure_key(inst, memo, ignore_attrs),
             tuple(position.get(id(o), -1) for o in inst.operands))
            for inst in comp.instructions) + (position.get(id(comp.root), -1),)
    return memo[id(comp)]
