"""The local-rewrite driver passes share: offer each instruction to the rule for its opcode.

A rule is `rule(inst, names, uses) -> None | Instruction | list[Instruction]`: None keeps
`inst`; an instruction (existing or new) replaces it; a list adds its new instructions in
`inst`'s place and the last one replaces it. The driver makes one pass in program order,
each instruction seeing its operands already rewritten, in time linear in the computation.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Mapping, Optional, Union

from flowjit.ir.builder import NameTable
from flowjit.ir.module import Computation, Instruction

Uses = Callable[[Instruction], int]   # how many instructions (and the root) use a value
RuleResult = Optional[Union[Instruction, list]]
Rule = Callable[[Instruction, NameTable, Uses], RuleResult]


def rewrite_computation(comp: Computation, rules: Mapping, names: NameTable) -> bool:
    """Apply `rules` (by opcode) to every instruction of `comp` once; drops what became
    unreachable. Returns whether anything was replaced."""
    use_count: Counter = Counter()
    for inst in comp.instructions:
        use_count.update(id(o) for o in dict.fromkeys(inst.operands))
    if comp.root is not None:
        use_count[id(comp.root)] += 1
    present = {id(i) for i in comp.instructions}
    replaced: dict[int, Instruction] = {}
    rewritten: list[Instruction] = []
    for inst in comp.instructions:
        if replaced:
            inst.operands = [replaced.get(id(o), o) for o in inst.operands]
        rule = rules.get(inst.opcode)
        result = rule(inst, names, lambda value: use_count[id(value)]) if rule else None
        if result is None:
            rewritten.append(inst)
            continue
        added = result if isinstance(result, list) else [result]
        for new in added:
            if id(new) not in present:
                present.add(id(new))
                rewritten.append(new)
                use_count.update(id(o) for o in dict.fromkeys(new.operands))
        replacement = added[-1]
        replaced[id(inst)] = replacement
        use_count[id(replacement)] += use_count[id(inst)]
        rewritten.append(inst)      # now unused; dropped below with anything else dead
    if not replaced:
        return False
    comp.instructions = rewritten
    comp.root = replaced.get(id(comp.root), comp.root)
    comp.remove_unreachable()
    return True
