"""Print → parse → print is the identity, and the parsed module means the same thing.

A hypothesis strategy (hlo_strategies.py) builds random well-typed modules with the Builder.
For each: the printed text parses back to a module that prints identically, passes the
verifier, has the same instructions, and evaluates (reference semantics) to bitwise-identical
results, of exactly the declared shapes and element types.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings

from tests.ir.hlo_strategies import (FLOATS, INTS, assert_bitwise_equal, assert_has_shape,
                                     assert_same_instructions, float_specials, int_extremes,
                                     modules_with_args)
from flowjit.ir.builder import Builder, scalar_computation
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Module
from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.ir.shapes import ArrayShape, leaves
from flowjit.ir.verifier import verify


ROUNDTRIP = settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ROUNDTRIP
@given(modules_with_args())
def test_print_parse_print_is_identity(module_and_args):
    module, _ = module_and_args
    verify(module)
    text = module.to_text()
    note(text)
    parsed = parse_module(text)
    verify(parsed)
    assert parsed.to_text() == text
    assert_same_instructions(module, parsed)


@settings(ROUNDTRIP, max_examples=120)
@given(modules_with_args())
def test_parsed_module_evaluates_bitwise_equal(module_and_args):
    module, args = module_and_args
    note(module.to_text())
    parsed = parse_module(module.to_text())
    expected = evaluate(module, args)
    assert_has_shape(expected, module.result_shape)
    assert_bitwise_equal(evaluate(parsed, args), expected)


@settings(ROUNDTRIP, max_examples=100)
@given(modules_with_args())
def test_a_copy_prints_the_same_and_shares_no_instruction(module_and_args):
    module, _ = module_and_args
    text = module.to_text()
    twin = module.copy()
    verify(twin)
    assert twin.to_text() == text
    originals = {id(i) for c in module.computations for i in c.instructions}
    assert not any(id(i) in originals for c in twin.computations for i in c.instructions)
    for comp in twin.computations:            # changing the copy leaves the original alone
        comp.instructions.reverse()
        for inst in comp.instructions:
            inst.name += "_x"
    assert module.to_text() == text


# --- a few fixed cases, so the special values are always covered ----------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_special_float_literals_roundtrip_bitwise(dtype):
    with np.errstate(over="ignore"):  # 1e30 is inf in f16
        values = np.array(float_specials(dtype), dtype=dtype.to_numpy())
    b = Builder("entry")
    b.constant(values, dtype)
    module = Module("m", b.finish(b.computation.root))
    text = module.to_text()
    parsed = parse_module(text)
    assert parsed.to_text() == text
    literal = parsed.entry.root.literal
    assert literal.dtype == values.dtype and literal.tobytes() == values.tobytes()
    assert "-nan" in text and "-inf" in text and "-0" in text


@pytest.mark.parametrize("dtype", INTS, ids=str)
def test_integer_extremes_roundtrip(dtype):
    values = np.array(int_extremes(dtype), dtype=dtype.to_numpy())
    b = Builder("entry")
    b.constant(values, dtype)
    module = Module("m", b.finish(b.computation.root))
    parsed = parse_module(module.to_text())
    assert parsed.entry.root.literal.tobytes() == values.tobytes()
    assert str(np.iinfo(dtype.to_numpy()).min) in module.to_text()


def test_metadata_with_quotes_backslashes_and_newlines_roundtrips():
    b = Builder("entry")
    x = b.parameter(0, ArrayShape(DType.F32, (2,)))
    weird = 'say "hi"\\n\n\tC:\\path\\to\\file.py é 漢 {x=1}'
    neg = b.add("negate", [x], metadata={"op_name": weird, "source_file": "\\",
                                         "source_line": 12, "op_type": ""})
    module = Module("m", b.finish(neg))
    text = module.to_text()
    assert len(text.splitlines()) == 6  # the newline in the metadata is escaped
    parsed = parse_module(text)
    assert parsed.entry.root.metadata == neg.metadata
    assert parsed.to_text() == text


def test_zero_sized_arrays_roundtrip_and_evaluate():
    b = Builder("entry")
    x = b.parameter(0, ArrayShape(DType.F32, (0, 3)))
    empty = b.constant(np.zeros((2, 0), np.int8))
    init = b.constant(np.float32(1.5))
    total = b.add("reduce", [x, init], {"dimensions": (0,)},
                  {"to_apply": scalar_computation("add", DType.F32, b.names)})
    module = Module("m", b.finish(b.add("tuple", [total, empty])),
                    [total.calls["to_apply"]])
    parsed = parse_module(module.to_text())
    assert parsed.to_text() == module.to_text()
    out = evaluate(parsed, [np.zeros((0, 3), np.float32)])
    np.testing.assert_array_equal(out[0], [1.5, 1.5, 1.5])
    assert out[1].shape == (2, 0)
    assert all(isinstance(s, ArrayShape) for s in leaves(parsed.result_shape))


def test_scalar_pad_prints_an_empty_config_that_parses():
    b = Builder("entry")
    x = b.parameter(0, ArrayShape(DType.S8, ()))
    pad = b.add("pad", [x, b.constant(np.int8(0))], {"padding": ()})
    module = Module("m", b.finish(pad))
    text = module.to_text()
    assert "padding={}" in text
    parsed = parse_module(text)
    assert parsed.entry.root.attrs["padding"] == ()
    assert parsed.to_text() == text
