"""One op, one place: every opcode is declared once and every per-concern table covers it
or marks it unsupported with a reason (ARCHITECTURE.md, principle 1).

Adding an op is one `Opcode` member, one `OpSpec` and one row in each table below; this
test names the tables an op is missing from.
"""
import pytest

from flowjit.codegen.elemental import ELEMENTAL_OPCODES
from flowjit.codegen.kernels import CPU_LOWERING
from flowjit.codegen.ptx import PTX_LOWERING
from flowjit.codegen.scalar_ops import SCALAR_RULES
from flowjit.ir.attributes import AttrKind
from flowjit.ir.op_tables import Unsupported, uncovered
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import OPS, FusionRole
from flowjit.ir.printer import FORMATTERS
from flowjit.ir.reference import REFERENCE
from flowjit.passes.vjp_rules import VJP_RULES, no_gradient
from flowjit.passes.batching_rules import BATCHING_RULES
from flowjit.passes.jvp_rules import JVP_RULES, zero_tangent

TABLES = {
    "OPS (flowjit.ir.ops)": OPS,
    "REFERENCE (flowjit.ir.reference)": REFERENCE,
    "VJP_RULES (flowjit.passes.vjp_rules)": VJP_RULES,
    "JVP_RULES (flowjit.passes.jvp_rules)": JVP_RULES,
    "CPU_LOWERING (flowjit.codegen.kernels)": CPU_LOWERING,
    "PTX_LOWERING (flowjit.codegen.ptx)": PTX_LOWERING,
    "BATCHING_RULES (flowjit.passes.batching_rules)": BATCHING_RULES,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_op_is_covered_or_marked_unsupported(table):
    assert uncovered(TABLES[table]) == []


@pytest.mark.parametrize("table", sorted(TABLES))
def test_tables_are_keyed_by_the_enum_and_give_reasons(table):
    for key, rule in TABLES[table].items():
        assert isinstance(key, Opcode), f"{key!r} is not an Opcode"
        if isinstance(rule, Unsupported):
            assert len(rule.reason) > 10, f"{key}: say why it is unsupported"


def test_an_opcode_is_its_hlo_spelling():
    for op in Opcode:
        assert op == op.value and str(op) == op.value and hash(op) == hash(op.value)
        assert Opcode.parse(op.value) is op
    with pytest.raises(KeyError, match="unknown opcode 'frobnicate'"):
        Opcode.parse("frobnicate")


def test_differentiability_in_the_op_table_matches_the_vjp_table():
    for op, spec in OPS.items():
        rule = VJP_RULES[op]
        if spec.differentiable:
            assert rule is not no_gradient, f"{op} is declared differentiable"
        else:
            assert rule is no_gradient, f"{op} is declared non-differentiable"


def test_differentiability_in_the_op_table_matches_the_jvp_table():
    for op, spec in OPS.items():
        if spec.differentiable:
            assert JVP_RULES[op] is not zero_tangent, f"{op} is declared differentiable"
        else:
            assert JVP_RULES[op] is zero_tangent, f"{op} is declared non-differentiable"


def test_every_elementwise_op_has_a_scalar_rule():
    # The scalar emitter is shared by the CPU and PTX backends.
    elementwise = {op for op, spec in OPS.items() if spec.role is FusionRole.ELEMENTWISE}
    assert elementwise - set(SCALAR_RULES) == set()
    assert set(SCALAR_RULES) <= elementwise


def test_every_fusible_op_can_be_computed_element_by_element():
    fusible = {op for op, spec in OPS.items() if spec.fusible}
    assert fusible - ELEMENTAL_OPCODES == set()


def test_every_attribute_kind_has_a_printer_and_a_parser():
    from flowjit.ir.parser import _Parser
    computations = {AttrKind.COMPUTATION, AttrKind.COMPUTATIONS}   # resolved by name
    assert set(FORMATTERS) == set(AttrKind)
    assert set(_Parser.DECODERS) == set(AttrKind) - computations


def test_attribute_names_are_unique_within_an_op():
    for op, spec in OPS.items():
        names = [a.text_name for a in spec.attrs]
        assert len(names) == len(set(names)), op
