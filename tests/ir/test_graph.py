"""The shared graph helpers (post-order walk, cloning through a value map) and use cycles,
checked against hand-built graphs."""
import pytest

from flowjit.ir.builder import NameTable
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import HloParseError
from flowjit.ir.graph import clone_instructions, post_order
from flowjit.ir.module import Instruction
from flowjit.ir.parser import parse_module
from flowjit.ir.shapes import ArrayShape

F32 = ArrayShape(DType.F32, ())


def chain(length: int) -> list[Instruction]:
    """p, negate(p), negate(negate(p)), ..."""
    insts = [Instruction("p", "parameter", F32, attrs={"number": 0})]
    for k in range(length):
        insts.append(Instruction(f"n{k}", "negate", F32, [insts[-1]]))
    return insts


def test_post_order_puts_operands_first_and_visits_each_once():
    p = Instruction("p", "parameter", F32, attrs={"number": 0})
    a = Instruction("a", "negate", F32, [p])
    b = Instruction("b", "add", F32, [a, a])
    c = Instruction("c", "multiply", F32, [b, p])
    assert [i.name for i in post_order([c])] == ["p", "a", "b", "c"]
    assert [i.name for i in post_order([a, c])] == ["p", "a", "b", "c"]


def test_post_order_does_not_enter_stopped_operands():
    insts = chain(3)
    names = [i.name for i in post_order([insts[-1]], stop=lambda i: i.name == "n0")]
    assert names == ["n1", "n2"]


def test_post_order_of_a_very_long_chain_does_not_recurse():
    insts = chain(50_000)     # far past Python's recursion limit
    order = post_order([insts[-1]])
    assert len(order) == 50_001 and order[0].name == "p" and order[-1].name == "n49999"


def test_clone_maps_operands_through_the_value_map_and_renames():
    insts = chain(2)
    other = Instruction("q", "parameter", F32, attrs={"number": 1})
    copies, mapping = clone_instructions(insts[1:], NameTable(), {id(insts[0]): other})
    assert len(copies) == 2 and copies[0].operands == [other]
    assert copies[1].operands == [copies[0]] and mapping[id(insts[2])] is copies[1]
    assert insts[2].operands == [insts[1]]          # the originals are untouched


@pytest.mark.parametrize("body, where, cycle", [
    ("ROOT %a = f32[] add(%a, %p)", (4, 8), "%a -> %a"),
    ("%b = f32[] multiply(%p, %c)\n  %c = f32[] negate(%b)\n  ROOT %a = f32[] add(%c, %p)",
     (4, 3), "%b -> %c -> %b"),
])
def test_a_use_cycle_is_a_parse_error_with_line_and_column(body, where, cycle):
    text = f"HloModule m\nENTRY %main {{\n  %p = f32[] parameter(0)\n  {body}\n}}\n"
    with pytest.raises(HloParseError, match=cycle) as info:
        parse_module(text)
    assert str(info.value).startswith(f"{where[0]}:{where[1]}:")


def test_the_rewrite_driver_replaces_in_one_pass_and_drops_the_dead():
    from flowjit.ir.module import Computation
    from flowjit.ir.rewrite import rewrite_computation
    insts = chain(20_000)           # negate(negate(...)): pairs cancel
    comp = Computation("c", insts, insts[-1])

    def cancel(inst, names, uses):
        inner = inst.operands[0]
        return inner.operands[0] if inner.opcode == "negate" else None
    assert rewrite_computation(comp, {"negate": cancel}, NameTable())
    # Each negate of a negate becomes the value under both: the chain collapses to p.
    assert [i.name for i in comp.instructions] == ["p"] and comp.root.name == "p"
    assert not rewrite_computation(comp, {"negate": cancel}, NameTable())
