"""Malformed HLO raises HloParseError at the right line and column (1-based, hand-counted).

Each case is a whole module; the comment above it says which token the error points at.
Columns count from 1 at the first character of the line (the two-space indent is 1-2).
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from flowjit.ir.errors import HloParseError
from flowjit.ir.parser import parse_module

HEADER = "HloModule m\n\n"


def module(body: str) -> str:
    return HEADER + textwrap.dedent(body).lstrip("\n")


# (id, text, line, column, a piece of the message)
CASES = [
    # Lines 1-2 are the header, so a body's first line is line 3.
    # line 5: "  ROOT %y = f32[2] frobnicate(%x)": 'frobnicate' starts at column 20.
    ("unknown-opcode", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] frobnicate(%x)
        }
        """), 5, 20, "unknown opcode 'frobnicate'"),
    # line 5: "  ROOT %y = f32[2] negate(%w)": '%w' at column 27.
    ("unknown-operand", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] negate(%w)
        }
        """), 5, 27, "unknown operand %w"),
    # An operand defined in another computation is unknown here: line 9, '%a' at column 27.
    ("operand-from-other-computation", module("""
        %other {
          ROOT %a = f32[2] parameter(0)
        }

        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] negate(%a)
        }
        """), 9, 27, "unknown operand %a"),
    # Missing ')': the parser finds the '}' on line 6, column 1, where ',' or ')' belongs.
    ("missing-close-paren", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] add(%x, %x
        }
        """), 6, 1, "expected ','"),
    # Missing '(': line 5, "  ROOT %y = f32[2] negate %x)": '%x' at column 27.
    ("missing-open-paren", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] negate %x)
        }
        """), 5, 27, "expected '('"),
    # line 4, "  %x = f32[2,three] parameter(0)": 'three' at column 14.
    ("bad-dimension", module("""
        ENTRY %main {
          %x = f32[2,three] parameter(0)
          ROOT %y = f32[2] negate(%x)
        }
        """), 4, 14, "expected a dimension size"),
    # line 4, "  %x = f31[2] parameter(0)": 'f31' at column 8.
    ("bad-element-type", module("""
        ENTRY %main {
          %x = f31[2] parameter(0)
          ROOT %y = f32[2] negate(%x)
        }
        """), 4, 8, "unknown element type 'f31'"),
    # line 4, "  %x = f32[2 parameter(0)": the dims never close; 'parameter' at column 14.
    ("unclosed-dims", module("""
        ENTRY %main {
          %x = f32[2 parameter(0)
        }
        """), 4, 14, "expected ','"),
    # Declared f32[3] but add of two f32[2] gives f32[2]: the opcode, line 5 column 20.
    ("declared-shape-mismatch", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[3] add(%x, %x)
        }
        """), 5, 20, "declared shape f32[3] but the operands give f32[2]"),
    # add(f32[2], s32[2]): operands that do not fit the op; opcode at line 6, column 20.
    ("operand-type-mismatch", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          %i = s32[2] parameter(1)
          ROOT %y = f32[2] add(%x, %i)
        }
        """), 6, 20, "equal shapes and element types"),
    # dot with a contracting dim of the wrong size: line 6, "  ROOT %d = f32[2,5] dot(...)",
    # 'dot' at column 22.
    ("dot-dims-mismatch", module("""
        ENTRY %main {
          %a = f32[2,3] parameter(0)
          %b = f32[4,5] parameter(1)
          ROOT %d = f32[2,5] dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
        }
        """), 6, 22, "lhs dim 1 and rhs dim 0 do not match"),
    # The computation never closes: the error is at the end of input (line 6, column 1,
    # after the last newline).
    ("unclosed-computation", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] negate(%x)
        """), 6, 1, "computation %main is not closed"),
    # line 4, "  %c = f32[3] constant({1, 2})": two values for three; '1' at column 25.
    ("too-few-literal-values", module("""
        ENTRY %main {
          %c = f32[3] constant({1, 2})
          ROOT %y = f32[3] negate(%c)
        }
        """), 4, 25, "constant has 2 values, shape f32[3] needs 3"),
    # line 4, "  ROOT %c = s32[2,2] constant({ {1, 2}, {3, 4, 5} })": five values;
    # the first value '1' is at column 34.
    ("too-many-literal-values", module("""
        ENTRY %main {
          ROOT %c = s32[2,2] constant({ {1, 2}, {3, 4, 5} })
        }
        """), 4, 34, "constant has 5 values, shape s32[2,2] needs 4"),
    # line 4, "  ROOT %c = f32[] constant(one)": 'one' at column 28.
    ("bad-literal-value", module("""
        ENTRY %main {
          ROOT %c = f32[] constant(one)
        }
        """), 4, 28, "bad f32 literal"),
    # line 4, "  ROOT %c = pred[] constant(2)": '2' at column 29.
    ("bad-pred-literal", module("""
        ENTRY %main {
          ROOT %c = pred[] constant(2)
        }
        """), 4, 29, "bad pred literal"),
    # The second "%x" (line 6) is the duplicate; its name is at column 3.
    ("duplicate-instruction-name", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          %y = f32[2] negate(%x)
          %x = f32[2] negate(%y)
          ROOT %z = f32[2] negate(%x)
        }
        """), 6, 3, "duplicate instruction name %x"),
    # "ENTRY %f {" on line 8 repeats the computation name: '%f' at column 7.
    ("duplicate-computation-name", module("""
        %f {
          ROOT %p = f32[] parameter(0)
        }

        ENTRY %f {
          ROOT %q = f32[] parameter(0)
        }
        """), 7, 7, "duplicate computation name %f"),
    # line 6, "  ROOT %r = f32[2] reduce(%x, %zero), dimensions={1}, to_apply=%nope":
    # '%nope' at column 64.
    ("unknown-computation", module("""
        ENTRY %main {
          %x = f32[2,3] parameter(0)
          %zero = f32[] constant(0)
          ROOT %r = f32[2] reduce(%x, %zero), dimensions={1}, to_apply=%nope
        }
        """), 6, 64, "unknown computation %nope"),
    # line 5, "  ROOT %y = f32[2] negate(%x) $": '$' at column 31.
    ("unexpected-character", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[2] negate(%x) $
        }
        """), 5, 31, "unexpected character '$'"),
    # No header: the first token, line 1 column 1.
    ("missing-header", "ENTRY %main {\n  ROOT %x = f32[] parameter(0)\n}\n", 1, 1,
     "expected 'HloModule'"),
    # line 4, "  ROOT %x = f32[] parameter(a)": 'a' at column 29.
    ("bad-parameter-number", module("""
        ENTRY %main {
          ROOT %x = f32[] parameter(a)
        }
        """), 4, 29, "expected a parameter number"),
    # A computation with no instructions: the error names it at its name, line 3 column 7.
    ("empty-computation", module("""
        ENTRY %main {
        }
        """), 3, 7, "computation %main is empty"),
    # line 6, "  ROOT %r = f32[2] reduce(%x, %zero), dimensions={one}": the attribute
    # name 'dimensions' is at column 39.
    ("malformed-attribute", module("""
        ENTRY %main {
          %x = f32[2,3] parameter(0)
          %zero = f32[] constant(0)
          ROOT %r = f32[2] reduce(%x, %zero), dimensions={one}
        }
        """), 6, 39, "malformed value for attribute 'dimensions'"),
    # concatenate with two dimensions: a shape rule that unpacks one axis must still give
    # a located HloParseError, not a bare ValueError. Opcode at line 5, column 20.
    ("concatenate-two-axes", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          ROOT %y = f32[4] concatenate(%x, %x), dimensions={0,1}
        }
        """), 5, 20, "%y"),
    # transpose of a tuple: also located at the opcode (line 6, column 20).
    ("transpose-of-tuple", module("""
        ENTRY %main {
          %x = f32[2] parameter(0)
          %t = (f32[2]) tuple(%x)
          ROOT %y = f32[2] transpose(%t), dimensions={0}
        }
        """), 6, 20, "%y"),
]


@pytest.mark.parametrize("text,line,column,message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_error_has_line_and_column(text, line, column, message):
    with pytest.raises(HloParseError) as info:
        parse_module(text)
    error = info.value
    assert (error.line, error.column) == (line, column), str(error)
    assert message in str(error)
    assert str(error).startswith(f"{line}:{column}: ")


def test_error_is_a_value_error_and_a_flowjit_error():
    from flowjit.ir.errors import FlowjitError
    with pytest.raises(ValueError):
        parse_module("HloModule m\n\nENTRY %e {\n  ROOT %x = f32[] wat(0)\n}\n")
    with pytest.raises(FlowjitError):
        parse_module("HloModule m\n\nENTRY %e {\n  ROOT %x = f32[] wat(0)\n}\n")


def test_columns_count_from_the_line_start_after_a_comment_block():
    text = ("HloModule m\n/* a comment\n spanning lines */\nENTRY %e {\n"
            "  ROOT %x = f32[] nope(0)\n}\n")
    with pytest.raises(HloParseError) as info:
        parse_module(text)
    assert (info.value.line, info.value.column) == (5, 19)


def test_a_well_formed_variant_of_each_case_parses():
    """Guards the error cases: fixing the one mistake gives a module that parses."""
    text = module("""
        %add {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          ROOT %s = f32[] add(%a, %b)
        }

        ENTRY %main {
          %x = f32[2,3] parameter(0)
          %zero = f32[] constant(0)
          %c = f32[3] constant({1, 2, 3})
          %r = f32[2] reduce(%x, %zero), dimensions={1}, to_apply=%add
          ROOT %y = f32[2] negate(%r)
        }
        """)
    parse_module(text)


# --- values that do not fit: parse errors with line and column (issue 12, item 4) ---------

def one_instruction(line: str) -> str:
    """A module whose line 4 is `line` (indented by two spaces)."""
    return f"HloModule m\n\nENTRY %e {{\n  {line}\n}}\n"


def located_error(text: str) -> HloParseError:
    with pytest.raises(HloParseError) as info:
        parse_module(text)
    return info.value


INTEGER_TYPES = ["s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64"]


@pytest.mark.parametrize("dtype", INTEGER_TYPES)
def test_integer_literal_out_of_range_is_a_parse_error(dtype):
    info = np.iinfo(dtype.replace("s", "int").replace("u", "uint"))
    for value in (int(info.min) - 1, int(info.max) + 1, 4294967296, -(2 ** 64)):
        if info.min <= value <= info.max:
            continue
        # "  ROOT %c = s8[] constant(128)": the literal starts at column 27 (25 + len('s8')).
        error = located_error(one_instruction(f"ROOT %c = {dtype}[] constant({value})"))
        assert (error.line, error.column) == (4, 25 + len(dtype)), str(error)
        assert f"{value} is out of range for {dtype}" in str(error)


@pytest.mark.parametrize("dtype", INTEGER_TYPES)
def test_integer_literal_extremes_parse_exactly(dtype):
    info = np.iinfo(dtype.replace("s", "int").replace("u", "uint"))
    module = parse_module(one_instruction(
        f"ROOT %c = {dtype}[2] constant({{{int(info.min)}, {int(info.max)}}})"))
    assert module.entry.root.literal.tolist() == [int(info.min), int(info.max)]


@pytest.mark.parametrize("dtype, text", [
    ("f16", "65520"), ("f16", "-1e5"), ("bf16", "3.4e38"), ("f32", "3.5e38"),
    ("f32", "-1e39"), ("f64", "1e400"), ("f16", "1e400"),
])
def test_float_literal_that_would_overflow_to_infinity_is_a_parse_error(dtype, text):
    error = located_error(one_instruction(f"ROOT %c = {dtype}[] constant({text})"))
    assert (error.line, error.column) == (4, 25 + len(dtype)), str(error)
    assert f"{text} is out of range for {dtype}" in str(error)


@pytest.mark.parametrize("dtype, text, value", [
    ("f16", "65504", 65504.0), ("f16", "65519", 65504.0),   # rounds down to the largest f16
    ("bf16", "3.3895314e38", 3.3895313892515355e38), ("f32", "-inf", -np.inf),
    ("f16", "1e-10", 0.0),                                  # underflow to 0 is no error
])
def test_float_literals_in_range_parse(dtype, text, value):
    module = parse_module(one_instruction(f"ROOT %c = {dtype}[] constant({text})"))
    assert float(module.entry.root.literal) == value


def test_deeply_nested_tuple_shape_is_a_parse_error():
    # 2000 levels used to raise RecursionError. The shape starts at column 13; the 65th
    # '(' is at column 13 + 64.
    shape = "(" * 2000 + "f32[]" + ")" * 2000
    error = located_error(one_instruction(f"ROOT %p = {shape} parameter(0)"))
    assert (error.line, error.column) == (4, 13 + 64), str(error)
    assert "tuple shape nested deeper than 64" in str(error)


def test_deeply_nested_literal_and_metadata_are_no_recursion():
    deep = "{" * 5000 + "7" + "}" * 5000
    module = parse_module(one_instruction(f"ROOT %c = s32[1] constant({deep})"))
    assert module.entry.root.literal.tolist() == [7]
    module = parse_module(one_instruction(
        f"ROOT %c = s32[] constant(1), metadata={{op_name=\"x\" nested={deep}}}"))
    assert module.entry.root.metadata["op_name"] == "x"


@pytest.mark.parametrize("shape, column, message", [
    # "  ROOT %p = f32[...": the element type is at column 13, the first dimension at 17.
    ("f32[99999999999999]", 13, "more than any machine can address"),
    ("u8[0,4611686018427387904]", 13, "more than any machine can address"),
    ("f32[" + ",".join(["1"] * 33) + "]", 13, "rank 33"),
    ("f32[" + "9" * 5000 + "]", 17, "dimension size is too large"),
    ("f32[-1]", 17, "expected a dimension size"),
], ids=["huge-dim", "huge-dim-of-empty-array", "rank-33", "5000-digits", "negative"])
def test_impossible_shapes_are_parse_errors(shape, column, message):
    error = located_error(one_instruction(f"ROOT %p = {shape} parameter(0)"))
    assert (error.line, error.column) == (4, column), str(error)
    assert message in str(error)
    assert len(str(error)) < 300   # a 5000-digit token is not echoed whole


@pytest.mark.parametrize("number", ["99999999999999999999999", "9" * 5000],
                         ids=["23-digits", "5000-digits"])
def test_huge_parameter_number_is_a_parse_error(number):
    error = located_error(one_instruction(f"ROOT %p = f32[] parameter({number})"))
    assert (error.line, error.column) == (4, 29), str(error)


def test_huge_integer_literal_text_is_a_parse_error():
    # int() refuses strings of over 4300 digits with a bare ValueError.
    error = located_error(one_instruction(f"ROOT %c = s64[] constant({'9' * 5000})"))
    assert (error.line, error.column) == (4, 28), str(error)
