"""The verifier rejects ill-typed or malformed modules with a message naming the instruction.

Modules are put together from raw Instructions (the Builder and the parser would refuse most
of them), each with exactly one thing wrong.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.ir.hlo_strategies import ALL, modules_with_args
from flowjit.ir.builder import Builder, NameTable, scalar_computation
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import HloParseError, VerifierError
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.shapes import ArrayShape, TupleShape
from flowjit.ir.parser import parse_module, parse_unverified
from flowjit.ir.verifier import MAX_CALL_DEPTH, verify, verify_compilable

F32 = DType.F32
S32 = DType.S32


def arr(dtype: DType, *dims: int) -> ArrayShape:
    return ArrayShape(dtype, dims)


def param(name: str, number: int, shape) -> Instruction:
    return Instruction(name, "parameter", shape, attrs={"number": number})


def const(name: str, value, dtype: DType) -> Instruction:
    literal = np.asarray(value, dtype=dtype.to_numpy())
    return Instruction(name, "constant", ArrayShape(dtype, literal.shape), literal=literal)


def entry_module(*instructions: Instruction, callees=()) -> Module:
    return Module("m", Computation("main", list(instructions)), list(callees))


def add_f32(name: str = "add") -> Computation:
    a, b = param("a", 0, arr(F32)), param("b", 1, arr(F32))
    return Computation(name, [a, b, Instruction("sum", "add", arr(F32), [a, b])])


def expect_error(module: Module, *pieces: str) -> str:
    with pytest.raises(VerifierError) as info:
        verify(module)
    message = str(info.value)
    for piece in pieces:
        assert piece in message, message
    return message


# --- the baseline is fine ------------------------------------------------------------

def test_well_typed_module_passes():
    x = param("x", 0, arr(F32, 2, 3))
    zero = const("zero", 0.0, F32)
    total = Instruction("total", "reduce", arr(F32, 2), [x, zero], {"dimensions": (1,)},
                        {"to_apply": add_f32()})
    verify(entry_module(x, zero, total, callees=[total.calls["to_apply"]]))


# --- element-wise and shape rules ------------------------------------------------------

def test_add_of_different_shapes():
    x, y = param("x", 0, arr(F32, 2)), param("y", 1, arr(F32, 3))
    bad = Instruction("bad", "add", arr(F32, 2), [x, y])
    expect_error(entry_module(x, y, bad), "%bad in %main", "equal shapes and element types",
                 "f32[2], f32[3]")


def test_add_of_different_element_types():
    x, y = param("x", 0, arr(F32, 2)), param("y", 1, arr(S32, 2))
    bad = Instruction("bad", "add", arr(F32, 2), [x, y])
    expect_error(entry_module(x, y, bad), "%bad in %main", "f32[2], s32[2]")


def test_declared_shape_differs_from_the_operands():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "negate", arr(F32, 3), [x])
    expect_error(entry_module(x, bad), "%bad in %main", "has shape f32[3]",
                 "operands give f32[2]")


def test_declared_element_type_differs():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "compare", arr(F32, 2), [x, x], {"direction": "LT"})
    expect_error(entry_module(x, bad), "%bad in %main", "has shape f32[2]",
                 "operands give pred[2]")


def test_float_op_on_integers():
    i = param("i", 0, arr(S32, 4))
    bad = Instruction("bad", "sqrt", arr(S32, 4), [i])
    expect_error(entry_module(i, bad), "%bad in %main", "element type s32 is not allowed")


def test_bitwise_op_on_floats():
    x = param("x", 0, arr(F32, 4))
    bad = Instruction("bad", "and", arr(F32, 4), [x, x])
    expect_error(entry_module(x, bad), "%bad in %main", "element type f32 is not allowed")


def test_wrong_operand_count():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "negate", arr(F32, 2), [x, x])
    expect_error(entry_module(x, bad), "%bad in %main", "takes 1 operands, got 2")


def test_missing_attribute():
    x = param("x", 0, arr(F32, 2, 3))
    bad = Instruction("bad", "transpose", arr(F32, 3, 2), [x])
    expect_error(entry_module(x, bad), "%bad in %main", "missing attribute 'dimensions'")


def test_transpose_with_a_non_permutation():
    x = param("x", 0, arr(F32, 2, 3))
    bad = Instruction("bad", "transpose", arr(F32, 3, 3), [x], {"dimensions": (1, 1)})
    expect_error(entry_module(x, bad), "%bad in %main", "not a permutation")


def test_compare_with_a_bad_direction():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "compare", arr(DType.PRED, 2), [x, x], {"direction": "LESS"})
    expect_error(entry_module(x, bad), "%bad in %main", "bad direction 'LESS'")


def test_select_with_a_non_pred_predicate():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "select", arr(F32, 2), [x, x, x])
    expect_error(entry_module(x, bad), "%bad in %main", "predicate must be pred")


def test_broadcast_that_changes_a_dimension():
    x = param("x", 0, arr(F32, 3))
    bad = Instruction("bad", "broadcast", arr(F32, 2, 4), [x], {"dimensions": (1,)})
    expect_error(entry_module(x, bad), "%bad in %main", "operand dim 0 cannot map to dim 1")


def test_reshape_that_changes_the_size():
    x = param("x", 0, arr(F32, 2, 3))
    bad = Instruction("bad", "reshape", arr(F32, 5), [x])
    expect_error(entry_module(x, bad), "%bad in %main", "cannot reshape to f32[5]")


def test_slice_out_of_bounds():
    x = param("x", 0, arr(F32, 4))
    bad = Instruction("bad", "slice", arr(F32, 3), [x], {"slice": ((2, 5, 1),)})
    expect_error(entry_module(x, bad), "%bad in %main", "out of bounds")


def test_pad_with_a_non_scalar_value():
    x = param("x", 0, arr(F32, 4))
    bad = Instruction("bad", "pad", arr(F32, 4), [x, x], {"padding": ((0, 0, 0),)})
    expect_error(entry_module(x, bad), "%bad in %main", "scalar pad value")


def test_pad_to_a_negative_size():
    x, v = param("x", 0, arr(F32, 2)), const("v", 0.0, F32)
    bad = Instruction("bad", "pad", arr(F32, 0), [x, v], {"padding": ((-2, -1, 0),)})
    expect_error(entry_module(x, v, bad), "%bad in %main", "negative size")


def test_dot_with_mismatched_contracting_dims():
    a, b = param("a", 0, arr(F32, 2, 3)), param("b", 1, arr(F32, 4, 5))
    bad = Instruction("bad", "dot", arr(F32, 2, 5), [a, b],
                      {"lhs_contracting_dims": (1,), "rhs_contracting_dims": (0,)})
    expect_error(entry_module(a, b, bad), "%bad in %main", "lhs dim 1 and rhs dim 0")


def test_dot_with_unpaired_batch_dims():
    a, b = param("a", 0, arr(F32, 2, 3)), param("b", 1, arr(F32, 2, 3))
    bad = Instruction("bad", "dot", arr(F32, 2), [a, b],
                      {"lhs_batch_dims": (0,), "lhs_contracting_dims": (1,),
                       "rhs_contracting_dims": (1,)})
    expect_error(entry_module(a, b, bad), "%bad in %main", "must pair up")


def test_dynamic_slice_with_float_start():
    x, s = param("x", 0, arr(F32, 4)), param("s", 1, arr(F32))
    bad = Instruction("bad", "dynamic-slice", arr(F32, 2), [x, s], {"dynamic_slice_sizes": (2,)})
    expect_error(entry_module(x, s, bad), "%bad in %main", "integer scalars")


def test_gather_with_float_indices():
    x, i = param("x", 0, arr(F32, 5, 3)), param("i", 1, arr(F32, 2, 1))
    bad = Instruction("bad", "gather", arr(F32, 2, 3), [x, i], {
        "offset_dims": (1,), "collapsed_slice_dims": (0,), "start_index_map": (0,),
        "index_vector_dim": 1, "slice_sizes": (1, 3)})
    expect_error(entry_module(x, i, bad), "%bad in %main", "indices must be integers")


# --- rules that would crash on the wrong kind of operand -------------------------------

def test_transpose_of_a_tuple_is_rejected_not_crashed():
    x = param("x", 0, arr(F32, 2))
    t = Instruction("t", "tuple", TupleShape((arr(F32, 2),)), [x])
    bad = Instruction("bad", "transpose", arr(F32, 2), [t], {"dimensions": (0,)})
    expect_error(entry_module(x, t, bad), "%bad in %main")


def test_concatenate_with_two_axes_is_rejected_not_crashed():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "concatenate", arr(F32, 4), [x, x], {"dimensions": (0, 1)})
    expect_error(entry_module(x, bad), "%bad in %main")


def test_get_tuple_element_out_of_range():
    x = param("x", 0, arr(F32, 2))
    t = Instruction("t", "tuple", TupleShape((arr(F32, 2),)), [x])
    bad = Instruction("bad", "get-tuple-element", arr(F32, 2), [t], {"index": 1})
    expect_error(entry_module(x, t, bad), "%bad in %main", "index 1 out of range")


def test_get_tuple_element_of_an_array():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "get-tuple-element", arr(F32, 2), [x], {"index": 0})
    expect_error(entry_module(x, bad), "%bad in %main", "index 0 out of range")


# --- structure -------------------------------------------------------------------------

def test_unknown_opcode():
    x = param("x", 0, arr(F32, 2))
    with pytest.raises(KeyError, match="unknown opcode 'frobnicate'"):
        Instruction("bad", "frobnicate", arr(F32, 2), [x])
    bad = Instruction("bad", "negate", arr(F32, 2), [x])
    bad.opcode = "frobnicate"          # set behind the constructor's back
    expect_error(entry_module(x, bad), "%bad in %main", "unknown opcode 'frobnicate'")


def test_operand_used_before_it_is_defined():
    x = param("x", 0, arr(F32, 2))
    later = Instruction("later", "negate", arr(F32, 2), [x])
    bad = Instruction("bad", "negate", arr(F32, 2), [later])
    module = entry_module(x, bad, later)
    module.entry.root = later
    expect_error(module, "%bad in %main", "operand %later is not defined before its use")


def test_operand_from_another_computation():
    other = add_f32("other")
    x = param("x", 0, arr(F32))
    bad = Instruction("bad", "add", arr(F32), [x, other.root])
    expect_error(entry_module(x, bad, callees=[other]), "%bad in %main", "operand %sum")


def test_duplicate_instruction_name():
    x = param("x", 0, arr(F32, 2))
    y = Instruction("x", "negate", arr(F32, 2), [x])
    expect_error(entry_module(x, y), "%x in %main", "duplicate instruction name")


def test_duplicate_computation_name():
    x, zero = param("x", 0, arr(F32, 2)), const("zero", 0.0, F32)
    total = Instruction("total", "reduce", arr(F32), [x, zero], {"dimensions": (0,)},
                        {"to_apply": add_f32("main")})
    expect_error(entry_module(x, zero, total, callees=[total.calls["to_apply"]]),
                 "duplicate computation names: ['main']")


def test_parameter_numbers_with_a_gap():
    x, y = param("x", 0, arr(F32)), param("y", 2, arr(F32))
    total = Instruction("total", "add", arr(F32), [x, y])
    expect_error(entry_module(x, y, total), "%main", "parameter numbers [0, 2]")


def test_root_outside_the_computation():
    x = param("x", 0, arr(F32))
    module = entry_module(x)
    module.entry.root = Instruction("stray", "negate", arr(F32), [x])
    expect_error(module, "%main: root is not one of its instructions")


def test_call_to_a_computation_outside_the_module():
    x = param("x", 0, arr(F32))
    bad = Instruction("bad", "call", arr(F32), [x, x], calls={"to_apply": add_f32("ghost")})
    expect_error(entry_module(x, bad), "%bad in %main", "calls %ghost, not in the module")


def test_call_with_arguments_that_do_not_match():
    callee = add_f32("callee")
    x = param("x", 0, arr(S32))
    bad = Instruction("bad", "call", arr(F32), [x, x], calls={"to_apply": callee})
    expect_error(entry_module(x, bad, callees=[callee]), "%bad in %main",
                 "do not match %callee's parameters")


def test_while_body_that_changes_the_state():
    state = arr(S32)
    p = param("s", 0, state)
    body = Computation("body", [p, Instruction("f", "convert", arr(F32), [p])])
    q = param("s", 0, state)
    zero = const("zero", 0, S32)
    cond = Computation("cond", [q, zero, Instruction("lt", "compare", arr(DType.PRED),
                                                     [q, zero], {"direction": "LT"})])
    x = param("x", 0, state)
    bad = Instruction("bad", "while", state, [x], calls={"body": body, "condition": cond})
    expect_error(entry_module(x, bad, callees=[body, cond]), "%bad in %main",
                 "body must map the state shape to itself")


def test_constant_whose_literal_has_the_wrong_shape():
    bad = Instruction("bad", "constant", arr(F32, 3), literal=np.zeros(2, np.float32))
    expect_error(entry_module(bad), "%bad in %main", "literal does not match shape f32[3]")


def test_constant_whose_literal_has_the_wrong_element_type():
    bad = Instruction("bad", "constant", arr(F32, 2), literal=np.zeros(2, np.int64))
    expect_error(entry_module(bad), "%bad in %main", "literal does not match shape f32[2]")


def test_constant_without_a_literal():
    bad = Instruction("bad", "constant", arr(F32, 2))
    expect_error(entry_module(bad), "%bad in %main", "literal does not match")


# --- reducers (checked by the verifier, not by the op table's shape rules) --------------

def test_reduce_whose_reducer_has_the_wrong_element_type():
    x, zero = param("x", 0, arr(S32, 4)), const("zero", 0, S32)
    bad = Instruction("bad", "reduce", arr(S32), [x, zero], {"dimensions": (0,)},
                      {"to_apply": add_f32()})
    expect_error(entry_module(x, zero, bad, callees=[bad.calls["to_apply"]]),
                 "%bad in %main", "to_apply=%add is (f32[], f32[]) -> f32[]",
                 "needs 2 scalar parameters (s32[] twice)")


def test_variadic_reduce_whose_reducer_returns_one_value():
    x, i = param("x", 0, arr(F32, 4)), param("i", 1, arr(S32, 4))
    zero, izero = const("zero", 0.0, F32), const("izero", 0, S32)
    shape = TupleShape((arr(F32), arr(S32)))
    bad = Instruction("bad", "reduce", shape, [x, i, zero, izero], {"dimensions": (0,)},
                      {"to_apply": add_f32()})
    expect_error(entry_module(x, i, zero, izero, bad, callees=[bad.calls["to_apply"]]),
                 "%bad in %main", "needs 4 scalar parameters")


def test_scatter_whose_reducer_has_the_wrong_element_type():
    x, idx, upd = param("x", 0, arr(S32, 5)), param("i", 1, arr(S32, 2, 1)), param(
        "u", 2, arr(S32, 2))
    bad = Instruction("bad", "scatter", arr(S32, 5), [x, idx, upd], {
        "update_window_dims": (), "inserted_window_dims": (0,),
        "scatter_dims_to_operand_dims": (0,), "index_vector_dim": 1}, {"to_apply": add_f32()})
    expect_error(entry_module(x, idx, upd, bad, callees=[bad.calls["to_apply"]]),
                 "%bad in %main", "to_apply=%add")


def test_argmax_reducer_in_jax_parameter_order_passes():
    names = NameTable()
    b = Builder("argmax", names)
    v, i = arr(F32), arr(S32)
    av, ai, xv, xi = (b.parameter(0, v), b.parameter(1, i), b.parameter(2, v),
                      b.parameter(3, i))
    keep = b.add("compare", [av, xv], {"direction": "GE"})
    reducer = b.finish(b.add("tuple", [b.add("select", [keep, av, xv]),
                                       b.add("select", [keep, ai, xi])]))
    e = Builder("main", names)
    x = e.parameter(0, arr(F32, 3, 4))
    iota = e.add("iota", [], {"iota_dimension": 1}, shape=arr(S32, 3, 4))
    both = e.add("reduce", [x, iota, e.constant(np.float32(-np.inf)), e.constant(np.int32(0))],
                 {"dimensions": (1,)}, {"to_apply": reducer})
    verify(Module("m", e.finish(both), [reducer]))


def test_nested_reducer_errors_name_the_inner_computation():
    names = NameTable()
    reducer = scalar_computation("add", F32, names)
    reducer.root.shape = arr(F32, 2)  # ill-typed inside the callee
    x, zero = param("x", 0, arr(F32, 4)), const("zero", 0.0, F32)
    total = Instruction("total", "reduce", arr(F32), [x, zero], {"dimensions": (0,)},
                        {"to_apply": reducer})
    expect_error(entry_module(x, zero, total, callees=[reducer]),
                 f"%{reducer.root.name} in %{reducer.name}", "has shape f32[2]")


# --- property: corrupting one instruction gives a VerifierError naming it ---------------

# Ops whose result type is free (part of their spelling), so another element type is legal.
FREE_RESULT_TYPE = {"parameter", "constant", "convert", "iota", "dot", "bitcast-convert",
                    "tuple", "get-tuple-element", "reduce"}


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(modules_with_args(), st.data())
def test_changing_an_element_type_is_caught_and_named(module_and_args, data):
    module, _ = module_and_args
    candidates = [i for i in module.entry.instructions
                  if i.opcode not in FREE_RESULT_TYPE and not i.shape.is_tuple]
    if not candidates:
        return
    victim = data.draw(st.sampled_from(candidates))
    new_dtype = data.draw(st.sampled_from([d for d in ALL if d is not victim.shape.dtype]))
    note(f"{victim.name}: {victim.shape} -> {new_dtype}")
    victim.shape = victim.shape.with_dtype(new_dtype)
    with pytest.raises(VerifierError) as info:
        verify(module)
    assert f"%{victim.name} in %{module.entry.name}" in str(info.value)


def test_an_attribute_the_op_does_not_declare_is_rejected():
    # The printer prints only declared attributes: an undeclared one would vanish from the
    # text, so the module is refused instead.
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "negate", arr(F32, 2), [x], attrs={"dimensions": (0,)})
    expect_error(entry_module(x, bad), "%bad in %main", "negate has no attribute 'dimensions'")


# --- everything the compiler would trip over (issue 12, item 1) ---------------------------

TWO_PARAMETERS_NUMBERED_0 = """HloModule m
ENTRY e {
  a = f32[3] parameter(0)
  b = f32[3] parameter(0)
  ROOT c = f32[3] add(a, b)
}
"""


def test_parse_module_verifies():
    # Before, parse_module returned this module and `flowjit run` segfaulted on it.
    with pytest.raises(VerifierError, match=r"parameter numbers \[0, 0\] are not 0..1"):
        parse_module(TWO_PARAMETERS_NUMBERED_0)
    assert len(parse_unverified(TWO_PARAMETERS_NUMBERED_0).entry.parameters) == 2


@pytest.mark.parametrize("numbers", [(1, 2), (0, 2), (1, 1)])
def test_parameter_numbers_missing_or_repeated(numbers):
    x, y = param("x", numbers[0], arr(F32, 2)), param("y", numbers[1], arr(F32, 2))
    expect_error(entry_module(x, y, Instruction("s", "add", arr(F32, 2), [x, y])),
                 "%main: parameter numbers", "each once")


@pytest.mark.parametrize("number", [None, -1, True, 1.0, "0"])
def test_parameter_number_that_is_not_a_count(number):
    x = Instruction("x", "parameter", arr(F32, 2), attrs={} if number is None
                    else {"number": number})
    message = expect_error(entry_module(x), "%x in %main", "number")
    assert "parameter number" in message or "not a int" in message


def test_parameter_with_operands():
    x = param("x", 0, arr(F32, 2))
    y = Instruction("y", "parameter", arr(F32, 2), [x], attrs={"number": 1})
    expect_error(entry_module(x, y), "%y in %main", "takes no operands")


@pytest.mark.parametrize("key, value, kind", [
    ("dimensions", (0.5,), "int list"), ("dimensions", [0], "int list"),
    ("dimensions", 0, "int list"), ("dimensions", (True,), "int list"),
])
def test_attribute_of_the_wrong_kind(key, value, kind):
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "reverse", arr(F32, 2), [x], {key: value})
    expect_error(entry_module(x, bad), "%bad in %main", f"holds {value!r}, not a {kind}")


def test_computation_attribute_must_be_a_computation():
    x = param("x", 0, arr(F32, 2))
    bad = Instruction("bad", "call", arr(F32, 2), [x], calls={"to_apply": "f"})
    expect_error(entry_module(x, bad), "%bad in %main", "'to_apply' must name a computation")


def test_a_computation_that_calls_itself():
    # Passes and code generation follow calls recursively: this would never end.
    p = param("p", 0, arr(F32, 2))
    loop = Computation("loop", [p])
    again = Instruction("again", "call", arr(F32, 2), [p], calls={"to_apply": loop})
    loop.instructions.append(again)
    loop.root = again
    x = param("x", 0, arr(F32, 2))
    call = Instruction("c", "call", arr(F32, 2), [x], calls={"to_apply": loop})
    expect_error(entry_module(x, call, callees=[loop]), "%loop: calls %loop",
                 "recursion is not supported")


def call_chain(depth: int) -> Module:
    """The entry calls f1, which calls f2, ... f<depth>, each the identity on f32[2]."""
    comps = []
    callee = None
    for k in range(depth, 0, -1):
        p = param(f"p{k}", 0, arr(F32, 2))
        insts = [p]
        if callee is not None:
            insts.append(Instruction(f"c{k}", "call", arr(F32, 2), [p],
                                     calls={"to_apply": callee}))
        callee = Computation(f"f{k}", insts)
        comps.append(callee)
    x = param("x", 0, arr(F32, 2))
    return entry_module(x, Instruction("c", "call", arr(F32, 2), [x],
                                       calls={"to_apply": callee}), callees=comps)


def test_calls_nested_too_deep():
    verify(call_chain(MAX_CALL_DEPTH - 1))
    expect_error(call_chain(2000), f"calls nest deeper than {MAX_CALL_DEPTH}")


def test_while_condition_that_takes_another_shape():
    state = arr(S32)
    body_p = param("bp", 0, state)
    body = Computation("body", [body_p])
    cond_p = param("cp", 0, arr(F32))
    cond = Computation("cond", [cond_p, Instruction("lt", "compare", arr(DType.PRED),
                                                    [cond_p, cond_p], {"direction": "LT"})])
    s = param("s", 0, state)
    loop = Instruction("w", "while", state, [s], calls={"condition": cond, "body": body})
    expect_error(entry_module(s, loop, callees=[body, cond]), "%w in %main",
                 "condition must take the state")


@pytest.mark.parametrize("selector, branches", [
    (arr(S32), "true/false"), (arr(DType.PRED, 2), "true/false"), (arr(DType.PRED), "list"),
])
def test_conditional_selector_of_the_wrong_type(selector, branches):
    def identity(name):
        p = param(f"{name}p", 0, arr(F32, 2))
        return Computation(name, [p])
    a, b = identity("a"), identity("b")
    s, x = param("s", 0, selector), param("x", 1, arr(F32, 2))
    calls = ({"true_computation": a, "false_computation": b} if branches == "true/false"
             else {"branch_computations": [a, b]})
    cond = Instruction("c", "conditional", arr(F32, 2), [s, x, x], calls=calls)
    expect_error(entry_module(s, x, cond, callees=[a, b]), "%c in %main",
                 "the first operand must be")


def test_reduce_whose_init_value_has_another_type_than_its_input():
    x = param("x", 0, arr(F32, 2, 3))
    zero = const("zero", 0, S32)
    s32_add = Computation("add", [param("a", 0, arr(S32)), param("b", 1, arr(S32))])
    s32_add.instructions.append(Instruction("s", "add", arr(S32), s32_add.instructions[:2]))
    s32_add.root = s32_add.instructions[-1]
    total = Instruction("t", "reduce", arr(S32, 2), [x, zero], {"dimensions": (1,)},
                        {"to_apply": s32_add})
    expect_error(entry_module(x, zero, total, callees=[s32_add]), "%t in %main",
                 "init value must have its input's element type")


def test_custom_vjp_call_whose_arguments_do_not_fit_the_primal():
    p = param("p", 0, arr(F32, 3))
    primal = Computation("primal", [p])
    x = param("x", 0, arr(F32, 2))
    call = Instruction("c", "custom-call", arr(F32, 3), [x],
                       {"custom_call_target": "flowjit.custom_vjp"},
                       {"called_computations": [primal]})
    expect_error(entry_module(x, call, callees=[primal]), "%c in %main",
                 "arguments do not match %primal")


def test_shapes_no_machine_can_hold():
    for shape, piece in [(arr(F32, 1 << 50), "more than any machine"),
                         (arr(F32, *([1] * 33)), "rank 33")]:
        expect_error(entry_module(param("x", 0, shape)), "%x in %main", piece)
    deep = arr(F32)
    for _ in range(70):
        deep = TupleShape((deep,))
    expect_error(entry_module(param("x", 0, deep)), "%x in %main", "nested deeper than 64")


def test_scatter_of_the_issue_is_rejected_by_the_parser():
    # indices s32[1,1] and updates f32[4000000]: the code read far past the index buffer.
    text = """HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY e {
  x = f32[5] parameter(0)
  i = s32[1,1] parameter(1)
  u = f32[4000000] parameter(2)
  ROOT r = f32[5] scatter(x, i, u), update_window_dims={0}, inserted_window_dims={},
      scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
}
"""
    with pytest.raises(HloParseError, match=r"^11:19: .*scatter: updates must have rank 2"):
        parse_module(text)


def test_verify_compilable_rejects_what_the_compiler_lacks():
    t = param("t", 0, TupleShape((arr(F32, 2), arr(F32, 2))))
    first = Instruction("g", "get-tuple-element", arr(F32, 2), [t], {"index": 0})
    module = entry_module(t, first)
    verify(module)   # a valid module, which the reference semantics can run
    with pytest.raises(VerifierError, match="entry parameter of tuple shape"):
        verify_compilable(module)
    x, i = param("x", 0, arr(F32, 3, 5)), param("i", 1, arr(S32, 3, 2, 1))
    attrs = {"offset_dims": (), "collapsed_slice_dims": (1,), "start_index_map": (1,),
             "operand_batching_dims": (0,), "start_indices_batching_dims": (0,),
             "index_vector_dim": 2, "slice_sizes": (1, 1)}
    module = entry_module(x, i, Instruction("g", "gather", arr(F32, 3, 2), [x, i], attrs))
    verify_compilable(module)   # batching dims compile (tests/codegen/test_batched_gather.py)
