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
from flowjit.ir.errors import VerifierError
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.shapes import ArrayShape, TupleShape
from flowjit.ir.verifier import verify

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
