"""Reference semantics (ir.reference) against hand-computed values, for the cases where XLA
and numpy disagree or where an implementation is easy to get wrong.

Every expected value here is written out by hand (or by np.einsum for dot), from XLA's
operation semantics and what XLA:CPU (through JAX) computes.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from flowjit.ir.builder import Builder, NameTable, scalar_computation
from flowjit.ir.dtypes import DType, from_numpy
from flowjit.ir.module import Computation, Module
from flowjit.ir.reference import evaluate
from flowjit.ir.shapes import ArrayShape
from flowjit.ir.verifier import verify

I8, I32, I64 = np.int8, np.int32, np.int64
U8, U32 = np.uint8, np.uint32
F32 = np.float32
BF16 = ml_dtypes.bfloat16
NAN, INF = math.nan, math.inf
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def run(opcode: str, *operands: np.ndarray, attrs=None, calls=None, shape=None, callees=()):
    """Evaluate one `opcode` instruction on `operands` (each passed as a parameter)."""
    b = Builder("main")
    params = [b.parameter(i, ArrayShape(from_numpy(x.dtype), x.shape))
              for i, x in enumerate(operands)]
    root = b.add(opcode, params, attrs, calls, shape)
    module = Module("m", b.finish(root), list(callees))
    verify(module)
    return evaluate(module, list(operands))


def same(actual, expected, dtype) -> None:
    """Equal values (NaN equals NaN), equal dtype, and equal signs of zeros."""
    expected = np.asarray(expected, dtype=dtype)
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    if expected.dtype.kind == "f":  # the sign of a NaN is not specified
        numbers = ~np.isnan(expected)
        np.testing.assert_array_equal(np.signbit(actual[numbers]), np.signbit(expected[numbers]))


def a(values, dtype):
    return np.array(values, dtype=dtype)


# --- integer divide and remainder -------------------------------------------------------

def test_signed_divide_truncates_and_handles_zero_and_overflow():
    x = a([7, -7, 7, -7, 5, INT32_MIN, INT32_MIN, INT32_MIN, 0, 3], I32)
    y = a([2, 2, -2, -2, 0, -1, 7, 3, 0, INT32_MIN], I32)
    # x/0 = -1; INT_MIN/-1 = INT_MIN; -2147483648/7 = -306783378.28 -> -306783378.
    same(run("divide", x, y), [3, -3, -3, 3, -1, INT32_MIN, -306783378, -715827882, -1, 0], I32)


def test_int8_divide_of_the_minimum():
    x, y = a([-128, -128, -128, -127, 5], I8), a([-1, 7, 3, 7, 0], I8)
    same(run("divide", x, y), [-128, -18, -42, -18, -1], I8)


def test_int64_divide_of_the_minimum():
    x, y = a([INT64_MIN, INT64_MIN, INT64_MAX], I64), a([-1, 7, 0], I64)
    same(run("divide", x, y), [INT64_MIN, -1317624576693539401, -1], I64)


def test_unsigned_divide_by_zero_is_all_ones():
    same(run("divide", a([7, 7, 0], U32), a([0, 2, 0], U32)), [2**32 - 1, 3, 2**32 - 1], U32)


def test_signed_remainder_takes_the_dividends_sign_and_x_mod_0_is_x():
    x = a([7, -7, 7, -7, 5, INT32_MIN, INT32_MIN, -128], I32)
    y = a([2, 2, -2, -2, 0, -1, 7, 0], I32)
    same(run("remainder", x, y), [1, -1, 1, -1, 5, 0, -2, -128], I32)


def test_int8_remainder_of_the_minimum():
    same(run("remainder", a([-128, -128, -128], I8), a([-1, 0, 7], I8)), [0, -128, -2], I8)


def test_unsigned_remainder():
    same(run("remainder", a([7, 7, 2**32 - 1], U32), a([0, 4, 10], U32)), [7, 3, 5], U32)


def test_float_remainder_is_fmod():
    x = a([-7.5, 7.5, 1.0, INF, 1.0, -0.0], F32)
    y = a([2.0, -2.0, 0.0, 1.0, INF, 3.0], F32)
    same(run("remainder", x, y), [-1.5, 1.5, NAN, NAN, 1.0, -0.0], F32)


def test_float_divide_by_zero():
    same(run("divide", a([1, -1, 0, -0.0], F32), a([0, 0, 0, 1], F32)), [INF, -INF, NAN, -0.0],
         F32)


def test_bf16_divide_and_remainder_are_float_ops():
    x, y = a([1, 7, -7.5], BF16), a([2, 2, 2], BF16)
    same(run("divide", x, y), [0.5, 3.5, -3.75], BF16)
    same(run("remainder", x, y), [1, 1, -1.5], BF16)


# --- conversions ------------------------------------------------------------------------

def test_float_to_s32_saturates_and_sends_nan_to_zero():
    x = a([1.9, -1.9, NAN, INF, -INF, 3e9, -3e9, 2147483520.0, 2147483648.0, -0.0], F32)
    same(run("convert", x, shape=ArrayShape(DType.S32, (10,))),
         [1, -1, 0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, 2147483520, INT32_MAX, 0], I32)


def test_float_to_u8_saturates_at_zero_and_255():
    x = a([1.9, -1.9, NAN, INF, -INF, 300, 255.9, -0.5], F32)
    same(run("convert", x, shape=ArrayShape(DType.U8, (8,))), [1, 0, 0, 255, 0, 255, 255, 0], U8)


def test_f64_to_s64_saturates_at_the_edges():
    x = a([9.3e18, -9.3e18, 9223372036854774784.0, -9223372036854775808.0], np.float64)
    same(run("convert", x, shape=ArrayShape(DType.S64, (4,))),
         [INT64_MAX, INT64_MIN, 9223372036854774784, INT64_MIN], I64)


def test_bf16_to_s8_saturates():
    x = a([200, -200, NAN, 3.5], BF16)
    same(run("convert", x, shape=ArrayShape(DType.S8, (4,))), [127, -128, 0, 3], I8)


def test_int_to_int_wraps_and_float_to_pred_is_nonzero():
    same(run("convert", a([300, -129, 255], I32), shape=ArrayShape(DType.S8, (3,))),
         [44, 127, -1], I8)
    same(run("convert", a([NAN, -0.0, 0.5], F32), shape=ArrayShape(DType.PRED, (3,))),
         [True, False, True], np.bool_)


def test_narrowing_float_convert_overflows_to_inf():
    same(run("convert", a([70000, -70000, 1e-9], F32), shape=ArrayShape(DType.F16, (3,))),
         [INF, -INF, 0.0], np.float16)


# --- NaN in maximum, minimum and reductions ---------------------------------------------

def test_maximum_and_minimum_propagate_nan_from_either_side():
    x, y = a([NAN, 1.0, 2.0], F32), a([1.0, NAN, 3.0], F32)
    same(run("maximum", x, y), [NAN, NAN, 3.0], F32)
    same(run("minimum", x, y), [NAN, NAN, 2.0], F32)


def test_clamp_propagates_nan_and_clamps():
    lo, hi = a(0.0, F32), a(1.0, F32)
    same(run("clamp", lo, a([NAN, -1.0, 2.0, 0.5], F32), hi), [NAN, 0.0, 1.0, 0.5], F32)


def reduce_with(opcode: str, x: np.ndarray, init, dims, dtype=DType.F32):
    names = NameTable()
    reducer = scalar_computation(opcode, dtype, names)
    return run("reduce", x, np.asarray(init, dtype=x.dtype), attrs={"dimensions": dims},
               calls={"to_apply": reducer}, callees=[reducer])


@pytest.mark.parametrize("opcode", ["maximum", "minimum", "add", "multiply"])
def test_reductions_propagate_nan(opcode):
    x = a([[1.0, NAN, 3.0], [4.0, 5.0, 6.0]], F32)
    init = {"maximum": -INF, "minimum": INF, "add": 0.0, "multiply": 1.0}[opcode]
    out = reduce_with(opcode, x, init, (1,))
    assert np.isnan(out[0]) and not np.isnan(out[1])


def test_max_reduce_of_nothing_is_the_init_value():
    same(reduce_with("maximum", np.zeros((2, 0), F32), -INF, (1,)), [-INF, -INF], F32)


def test_and_or_reducers_are_bitwise_on_integers():
    x = a([[6, 3, 7], [12, 10, 9]], I32)
    same(reduce_with("and", x, -1, (1,), DType.S32), [2, 8], I32)
    same(reduce_with("or", x, 0, (1,), DType.S32), [7, 15], I32)


def argmax_reducer(names: NameTable, value: DType, smallest: bool = False) -> Computation:
    """JAX's argmax (argmin) body: a NaN wins, then the larger (smaller) value, then the
    lower index."""
    b = Builder("argmax", names)
    v, i = ArrayShape(value, ()), ArrayShape(DType.S32, ())
    acc_v, acc_i, x_v, x_i = b.parameter(0, v), b.parameter(1, i), b.parameter(2, v), \
        b.parameter(3, i)
    better = b.add("compare", [acc_v, x_v], {"direction": "LT" if smallest else "GT"})
    nan = b.add("compare", [acc_v, acc_v], {"direction": "NE"})
    keep = b.add("or", [better, nan])
    best_v = b.add("select", [keep, acc_v, x_v])
    tie = b.add("and", [b.add("compare", [acc_v, x_v], {"direction": "EQ"}),
                        b.add("compare", [acc_i, x_i], {"direction": "LT"})])
    best_i = b.add("select", [b.add("or", [keep, tie]), acc_i, x_i])
    return b.finish(b.add("tuple", [best_v, best_i]))


@pytest.mark.parametrize("smallest", [False, True], ids=["argmax", "argmin"])
def test_variadic_reduce_argmax_with_ties_and_nan(smallest):
    x = a([[1, 5, 5, 2], [NAN, 1, NAN, 7], [1, 2, NAN, 3], [-INF, -INF, -INF, -INF]], F32)
    names = NameTable()
    reducer = argmax_reducer(names, DType.F32, smallest)
    b = Builder("main", names)
    p = b.parameter(0, ArrayShape(DType.F32, (4, 4)))
    iota = b.add("iota", [], {"iota_dimension": 1}, shape=ArrayShape(DType.S32, (4, 4)))
    init_v = b.constant(np.float32(INF if smallest else -INF))
    init_i = b.constant(np.int32(0))
    both = b.add("reduce", [p, iota, init_v, init_i], {"dimensions": (1,)},
                 {"to_apply": reducer})
    module = Module("m", b.finish(both), [reducer])
    verify(module)
    values, indices = evaluate(module, [x])
    if smallest:
        same(values, [1, NAN, NAN, -INF], F32)
        same(indices, [0, 0, 2, 0], I32)
    else:
        same(values, [5, NAN, NAN, -INF], F32)
        same(indices, [1, 0, 2, 0], I32)


def test_generic_reducer_on_an_empty_kept_dimension():
    names = NameTable()
    b = Builder("max_plus_zero", names)
    s = ArrayShape(DType.F32, ())
    lhs, rhs = b.parameter(0, s), b.parameter(1, s)
    reducer = b.finish(b.add("maximum", [b.add("add", [lhs, b.constant(np.float32(0))]), rhs]))
    out = run("reduce", np.zeros((0, 3), F32), a(1.5, F32), attrs={"dimensions": (1,)},
              calls={"to_apply": reducer}, callees=[reducer])
    assert out.shape == (0,) and out.dtype == F32


# --- shifts past the bit width ----------------------------------------------------------

def test_shift_left_past_the_width_is_zero():
    x, k = a([1, 1, 1, 1, -1], I32), a([31, 32, 33, -1, 4], I32)
    same(run("shift-left", x, k), [INT32_MIN, 0, 0, 0, -16], I32)


def test_shift_right_arithmetic_fills_with_the_sign():
    x, k = a([-8, -8, 8, -8, INT32_MIN, 7], I32), a([1, 32, 32, 100, 31, -1], I32)
    same(run("shift-right-arithmetic", x, k), [-4, -1, 0, -1, -1, 0], I32)


def test_shift_right_logical_fills_with_zeros():
    x, k = a([-8, -1, -1, 16, -8], I32), a([28, 31, 32, 2, -3], I32)
    same(run("shift-right-logical", x, k), [15, 1, 0, 4, 0], I32)


def test_unsigned_shifts():
    x, k = a([255, 255, 128, 128, 255], U8), a([1, 8, 1, 8, 3], U8)
    same(run("shift-left", x, k), [254, 0, 0, 0, 248], U8)
    same(run("shift-right-logical", x, k), [127, 0, 64, 0, 31], U8)
    # Arithmetic shifts read the bits as signed, also on unsigned types (as XLA:CPU does).
    same(run("shift-right-arithmetic", x, k), [255, 255, 192, 255, 255], U8)


# --- pad ----------------------------------------------------------------------------------

def test_pad_interior_then_negative_low_edge():
    # [1,2,3] -interior 1-> [1,0,2,0,3] -low -1-> [0,2,0,3] -high 2-> [0,2,0,3,0,0]
    same(run("pad", a([1, 2, 3], F32), a(0, F32), attrs={"padding": ((-1, 2, 1),)}),
         [0, 2, 0, 3, 0, 0], F32)


def test_pad_two_dims_with_negative_and_interior_padding():
    # dim 0 (1,-1,1): [r0, r1] -> [r0, p, r1] -> [p, r0, p, r1] -> [p, r0, p]
    # dim 1 (-1,1,2): [x, y] -> [x, p, p, y] -> [p, p, y] -> [p, p, y, p]
    out = run("pad", a([[1, 2], [3, 4]], I32), a(9, I32),
              attrs={"padding": ((1, -1, 1), (-1, 1, 2))})
    same(out, [[9, 9, 9, 9], [9, 9, 2, 9], [9, 9, 9, 9]], I32)


def test_pad_can_cut_everything_away():
    out = run("pad", a([1, 2, 3], F32), a(0, F32), attrs={"padding": ((-2, -1, 0),)})
    assert out.shape == (0,)


def test_pad_interior_on_a_single_element_adds_nothing():
    same(run("pad", a([5], I8), a(0, I8), attrs={"padding": ((1, 1, 3),)}), [0, 5, 0], I8)


# --- gather / scatter in the forms JAX writes for x[idx] and x.at[idx].add(v) ------------

X = np.arange(15, dtype=F32).reshape(5, 3)
ROWS = {"offset_dims": (1,), "collapsed_slice_dims": (0,), "start_index_map": (0,),
        "index_vector_dim": 1, "slice_sizes": (1, 3)}


def test_gather_rows_with_duplicates_and_out_of_bounds_indices_clamped():
    idx = a([[0], [4], [4], [-1], [7], [-9], [2]], I32)
    same(run("gather", X, idx, attrs=ROWS), X[[0, 4, 4, 0, 4, 0, 2]], F32)


def test_gather_window_start_is_clamped_so_the_window_fits():
    attrs = {"offset_dims": (1,), "collapsed_slice_dims": (0,), "start_index_map": (0, 1),
             "index_vector_dim": 1, "slice_sizes": (1, 2)}
    idx = a([[1, 1], [4, 2], [-3, -3]], I32)
    # Column start 2 with a window of 2 in 3 columns is clamped to 1; -3 to 0.
    same(run("gather", X, idx, attrs=attrs), [[4, 5], [13, 14], [0, 1]], F32)


def test_gather_with_batching_dims_as_vmap_writes_it():
    x = np.arange(15, dtype=F32).reshape(3, 5)
    idx = a([[[1], [1]], [[0], [4]], [[9], [2]]], I32)
    attrs = {"offset_dims": (), "collapsed_slice_dims": (1,), "start_index_map": (1,),
             "operand_batching_dims": (0,), "start_indices_batching_dims": (0,),
             "index_vector_dim": 2, "slice_sizes": (1, 1)}
    same(run("gather", x, idx, attrs=attrs), [[1, 1], [5, 9], [14, 12]], F32)


def scatter(operand, indices, updates, reducer_opcode="add", extra=None, rows=True):
    names = NameTable()
    dtype = from_numpy(operand.dtype)
    if reducer_opcode == "assign":
        b = Builder("assign", names)
        b.parameter(0, ArrayShape(dtype, ()))
        reducer = b.finish(b.parameter(1, ArrayShape(dtype, ())))
    else:
        reducer = scalar_computation(reducer_opcode, dtype, names)
    attrs = {"update_window_dims": (1,), "inserted_window_dims": (0,),
             "scatter_dims_to_operand_dims": (0,), "index_vector_dim": 1} if rows else {}
    attrs.update(extra or {})
    return run("scatter", operand, indices, updates, attrs=attrs,
               calls={"to_apply": reducer}, callees=[reducer])


def test_scatter_add_accumulates_duplicates_and_drops_out_of_bounds():
    v = np.arange(1, 22, dtype=F32).reshape(7, 3)
    idx = a([[1], [3], [1], [-1], [5], [-7], [1]], I32)
    expected = np.zeros((5, 3), F32)
    expected[1] = v[0] + v[2] + v[6]
    expected[3] = v[1]
    same(scatter(np.zeros((5, 3), F32), idx, v), expected, F32)


def test_scatter_assign_puts_the_updates():
    v = np.arange(1, 7, dtype=I32).reshape(2, 3)
    expected = np.arange(15, dtype=I32).reshape(5, 3)
    operand = expected.copy()
    expected[4], expected[0] = v[0], v[1]
    same(scatter(operand, a([[4], [0]], I32), v, "assign"), expected, I32)


def test_scatter_drops_a_window_that_does_not_fit():
    # Windows of 2 columns: start column 2 would run past the 3 columns, so it is dropped
    # (gather clamps, scatter skips).
    extra = {"update_window_dims": (1,), "inserted_window_dims": (0,),
             "scatter_dims_to_operand_dims": (0, 1), "index_vector_dim": 1}
    v = a([[1, 2], [10, 20]], F32)
    out = scatter(np.zeros((2, 3), F32), a([[0, 1], [1, 2]], I32), v, extra=extra, rows=False)
    same(out, [[0, 1, 2], [0, 0, 0]], F32)


def test_scatter_with_batching_dims_as_vmap_writes_it():
    idx = a([[[1], [1]], [[0], [4]], [[9], [2]]], I32)
    extra = {"update_window_dims": (), "inserted_window_dims": (1,),
             "scatter_dims_to_operand_dims": (1,), "input_batching_dims": (0,),
             "scatter_indices_batching_dims": (0,), "index_vector_dim": 2}
    out = scatter(np.zeros((3, 5), F32), idx, np.ones((3, 2), F32), extra=extra, rows=False)
    same(out, [[0, 2, 0, 0, 0], [1, 0, 0, 0, 1], [0, 0, 1, 0, 0]], F32)


# --- dynamic slices are clamped into the operand ------------------------------------------

@pytest.mark.parametrize("start,expected", [(8, [6, 7, 8, 9]), (-3, [0, 1, 2, 3]),
                                            (2, [2, 3, 4, 5])])
def test_dynamic_slice_clamps_the_start(start, expected):
    out = run("dynamic-slice", np.arange(10, dtype=I32), a(start, I32),
              attrs={"dynamic_slice_sizes": (4,)})
    same(out, expected, I32)


def test_dynamic_slice_clamps_a_huge_unsigned_start_per_dimension():
    x = np.arange(12, dtype=F32).reshape(3, 4)
    out = run("dynamic-slice", x, a(4_000_000_000, U32), a(1, U32),
              attrs={"dynamic_slice_sizes": (2, 2)})
    same(out, [[5, 6], [9, 10]], F32)


def test_dynamic_update_slice_clamps_the_start():
    out = run("dynamic-update-slice", np.zeros(10, I32), a([1, 2, 3], I32), a(9, I32))
    same(out, [0, 0, 0, 0, 0, 0, 0, 1, 2, 3], I32)


# --- dot ------------------------------------------------------------------------------------

def test_dot_with_batch_dims_matches_einsum():
    rng = np.random.default_rng(0)
    lhs, rhs = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))
    out = run("dot", lhs, rhs, attrs={"lhs_batch_dims": (0,), "rhs_batch_dims": (0,),
                                      "lhs_contracting_dims": (2,),
                                      "rhs_contracting_dims": (1,)})
    np.testing.assert_allclose(out, np.einsum("bij,bjk->bik", lhs, rhs), rtol=1e-12)


def test_dot_with_batch_and_contracting_dims_in_odd_places():
    rng = np.random.default_rng(1)
    lhs, rhs = rng.normal(size=(4, 2, 3)), rng.normal(size=(5, 2, 4))
    out = run("dot", lhs, rhs, attrs={"lhs_batch_dims": (1,), "rhs_batch_dims": (1,),
                                      "lhs_contracting_dims": (0,),
                                      "rhs_contracting_dims": (2,)})
    assert out.shape == (2, 3, 5)  # batch, lhs free, rhs free
    np.testing.assert_allclose(out, np.einsum("jbi,kbj->bik", lhs, rhs), rtol=1e-12)


def test_dot_with_two_contracting_dims_and_no_batch():
    rng = np.random.default_rng(2)
    lhs, rhs = rng.normal(size=(3, 2, 4)), rng.normal(size=(4, 3))
    out = run("dot", lhs, rhs, attrs={"lhs_contracting_dims": (0, 2),
                                      "rhs_contracting_dims": (1, 0)})
    np.testing.assert_allclose(out, np.einsum("ibj,ji->b", lhs, rhs), rtol=1e-12)


def test_int8_dot_into_int32_does_not_wrap_at_8_bits():
    x = a([100, 100], I8)
    out = run("dot", x, x, attrs={"lhs_contracting_dims": (0,), "rhs_contracting_dims": (0,)},
              shape=ArrayShape(DType.S32, ()))
    same(out, 20000, I32)


def test_bf16_dot():
    x = a([[1, 2], [3, 4]], BF16)
    out = run("dot", x, x, attrs={"lhs_contracting_dims": (1,), "rhs_contracting_dims": (0,)})
    same(out, [[7, 10], [15, 22]], BF16)


def test_pred_dot_is_or_of_ands():
    x = a([[True, False], [False, False]], np.bool_)
    y = a([[True, True], [True, False]], np.bool_)
    out = run("dot", x, y, attrs={"lhs_contracting_dims": (1,), "rhs_contracting_dims": (0,)})
    same(out, [[True, True], [False, False]], np.bool_)


# --- elementwise details where numpy differs from XLA --------------------------------------

def test_sign_keeps_the_sign_of_zero_and_nan():
    same(run("sign", a([-0.0, 0.0, -3.0, 2.0, NAN, -INF], F32)), [-0.0, 0.0, -1, 1, NAN, -1],
         F32)
    same(run("sign", a([-5, 0, 7], I32)), [-1, 0, 1], I32)


def test_round_nearest_afz_is_exact():
    x = a([0.49999997, 0.5, -0.5, 1.5, -2.5, 8388609.0, -0.0, -0.3, INF, NAN], F32)
    same(run("round-nearest-afz", x), [0, 1, -1, 2, -3, 8388609.0, -0.0, -0.0, INF, NAN], F32)


def test_round_nearest_even():
    same(run("round-nearest-even", a([0.5, 1.5, 2.5, -0.5, -1.5], F32)),
         [0.0, 2.0, 2.0, -0.0, -2.0], F32)


def test_erf_of_a_scalar_and_of_f16():
    same(run("erf", a(0.0, F32)), 0.0, F32)
    out = run("erf", a([1.0, -INF], np.float16))
    same(out, [np.float16(math.erf(1.0)), -1.0], np.float16)


def test_integer_power_with_negative_exponents():
    x, y = a([2, -2, 1, -1, -1, 0, 3], I32), a([-1, -3, -5, -3, -4, 0, 4], I32)
    same(run("power", x, y), [0, 0, 1, -1, 1, 1, 81], I32)


def test_abs_and_negate_of_the_minimum_wrap():
    same(run("abs", a([INT32_MIN, -3], I32)), [INT32_MIN, 3], I32)
    same(run("negate", a([INT32_MIN, 0], I32)), [INT32_MIN, 0], I32)


def test_select_with_a_scalar_predicate():
    same(run("select", a(False, np.bool_), a([1, 2], I32), a([3, 4], I32)), [3, 4], I32)


def test_scatter_with_no_indices_leaves_the_operand():
    operand = np.arange(6, dtype=F32).reshape(2, 3)
    out = scatter(operand, np.zeros((0, 1), I32), np.zeros((0, 3), F32))
    same(out, operand, F32)
