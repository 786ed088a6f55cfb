"""The sort and topk ops in the IR: shape rules against JAX's (hypothesis), the verifier's
comparator check, HLO text in and out as JAX prints it, parse errors with line:column, and
the reference semantics against hand-computed values and numpy."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowjit.ir.dtypes import DType
from flowjit.ir.errors import HloParseError, ShapeError, VerifierError
from flowjit.ir.ops import infer_shape
from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.ir.shapes import ArrayShape, TupleShape
from flowjit.ir.sorting import sort_key, total_order_keys
from flowjit.ir.verifier import verify

jax = pytest.importorskip("jax")

F32, S32 = DType.F32, DType.S32
_COMPARATOR = {"to_apply": None}   # shape rules do not look at it (the verifier does)


def _jax_dtype(dtype: DType):
    return np.int32 if dtype is S32 else np.float32


# --- shape rules, against JAX's -------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3), st.data())
def test_sort_shape_is_jaxs(dims, data):
    count = data.draw(st.integers(1, 3))
    dtypes = data.draw(st.lists(st.sampled_from([F32, S32]), min_size=count,
                                max_size=count))
    axis = data.draw(st.integers(-len(dims), len(dims) - 1))
    shapes = [ArrayShape(d, tuple(dims)) for d in dtypes]
    ours = infer_shape("sort", shapes, {"dimensions": (axis % len(dims),)}, _COMPARATOR)
    args = [jax.ShapeDtypeStruct(tuple(dims), _jax_dtype(d)) for d in dtypes]
    theirs = jax.eval_shape(lambda *a: jax.lax.sort(a, dimension=axis, num_keys=1), *args)
    want = [ArrayShape(d, tuple(t.shape)) for d, t in zip(dtypes, theirs)]
    assert ours == (want[0] if count == 1 else TupleShape(tuple(want)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=3), st.integers(0, 6))
def test_topk_shape_is_jaxs(dims, k):
    shape = ArrayShape(F32, tuple(dims))
    operand = jax.ShapeDtypeStruct(tuple(dims), np.float32)
    try:
        theirs = jax.eval_shape(lambda x: jax.lax.top_k(x, k), operand)
    except (ValueError, TypeError):
        with pytest.raises(ShapeError, match="topk"):
            infer_shape("topk", [shape], {"k": k}, {})
        return
    ours = infer_shape("topk", [shape], {"k": k, "largest": True}, {})
    assert ours == TupleShape((ArrayShape(F32, tuple(theirs[0].shape)),
                               ArrayShape(S32, tuple(theirs[1].shape))))


@pytest.mark.parametrize("opcode, shapes, attrs, message", [
    ("sort", [ArrayShape(F32, (3, 4)), ArrayShape(S32, (4, 3))], {"dimensions": (0,)},
     "equal dims"),
    ("sort", [ArrayShape(F32, (3, 4))], {"dimensions": (2,)}, r"dimensions=\[2\]"),
    ("sort", [ArrayShape(F32, (3, 4))], {"dimensions": (0, 1)}, "one dimension"),
    ("sort", [ArrayShape(F32, ())], {"dimensions": (0,)}, "rank-0"),
    ("topk", [ArrayShape(F32, (3, 4))], {"k": 5}, r"k=5 must be in \[0, 4\]"),
    ("topk", [ArrayShape(F32, ())], {"k": 0}, "at least one dimension"),
    ("topk", [ArrayShape(DType.PRED, (4,))], {"k": 1}, "not allowed"),
])
def test_shape_rule_rejects_with_the_shapes_named(opcode, shapes, attrs, message):
    with pytest.raises(ShapeError, match=message) as error:
        infer_shape(opcode, shapes, attrs, _COMPARATOR if opcode == "sort" else {})
    assert opcode in str(error.value) and "operands:" in str(error.value)


# --- HLO text ---------------------------------------------------------------------------------

def module(body: str) -> str:
    return "HloModule m\n\n" + textwrap.dedent(body).lstrip("\n")


# What jax 0.10 prints for jnp.argsort (comparator trimmed of its canonicalization).
ARGSORT = module("""
    %cmp (a: f32[], b: f32[], i: s32[], j: s32[]) -> pred[] {
      %i = s32[] parameter(2)
      %j = s32[] parameter(3)
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %lt = pred[] compare(%a, %b), direction=LT, type=TOTALORDER
    }

    ENTRY %main (x: f32[2,5]) -> (f32[2,5], s32[2,5]) {
      %x = f32[2,5]{1,0} parameter(0)
      %iota = s32[2,5]{1,0} iota(), iota_dimension=1
      ROOT %sort = (f32[2,5]{1,0}, s32[2,5]{1,0}) sort(%x, %iota), dimensions={1}, is_stable=true, to_apply=%cmp
    }
    """)
TOPK = module("""
    ENTRY %main (x: f32[2,5]) -> (f32[2,3], s32[2,3]) {
      %x = f32[2,5]{1,0} parameter(0)
      ROOT %top = (f32[2,3]{1,0}, s32[2,3]{1,0}) topk(%x), k=3, largest=true
    }
    """)


def test_jax_style_sort_and_topk_print_as_they_parse():
    for text in (ARGSORT, TOPK):
        parsed = parse_module(text)
        verify(parsed)
        printed = parsed.to_text()
        assert parse_module(printed).to_text() == printed
    assert "dimensions={1}, is_stable=true, to_apply=%cmp" in parse_module(ARGSORT).to_text()
    assert "topk(%x), k=3, largest=true" in parse_module(TOPK).to_text()


def test_hand_computed_argsort_and_topk():
    x = np.array([[3.0, -0.0, np.nan, 0.0, -1.0], [2.0, 2.0, -np.inf, 1.0, 2.0]], np.float32)
    values, order = evaluate(parse_module(ARGSORT), [x])
    # TOTALORDER puts -0.0 before 0.0 and NaN last; equal keys keep their order.
    np.testing.assert_array_equal(order, [[4, 1, 3, 0, 2], [2, 3, 0, 1, 4]])
    assert np.signbit(values[0, 1]) and not np.signbit(values[0, 2])
    top, where = evaluate(parse_module(TOPK), [x])
    np.testing.assert_array_equal(where, [[2, 0, 3], [0, 1, 4]])
    np.testing.assert_array_equal(top, np.array([[np.nan, 3, 0], [2, 2, 2]], np.float32))


@pytest.mark.parametrize("comparator, message", [
    # Too few parameters for two operands.
    ("""%cmp (a: f32[], b: f32[]) -> pred[] {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          ROOT %lt = pred[] compare(%a, %b), direction=LT
        }""", r"needs \(f32\[\], f32\[\], s32\[\], s32\[\]\) -> pred\[\]"),
    # A result that is not pred.
    ("""%cmp (a: f32[], b: f32[], i: s32[], j: s32[]) -> f32[] {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          %i = s32[] parameter(2)
          %j = s32[] parameter(3)
          ROOT %d = f32[] subtract(%a, %b)
        }""", r"-> pred\[\]"),
    # Parameters of the wrong element type.
    ("""%cmp (a: f32[], b: f32[], i: f32[], j: f32[]) -> pred[] {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          %i = f32[] parameter(2)
          %j = f32[] parameter(3)
          ROOT %lt = pred[] compare(%a, %b), direction=LT
        }""", "s32"),
])
def test_verifier_rejects_a_comparator_of_the_wrong_signature(comparator, message):
    text = module(comparator + """

        ENTRY %main {
          %x = f32[2,5] parameter(0)
          %iota = s32[2,5] iota(), iota_dimension=1
          ROOT %sort = (f32[2,5], s32[2,5]) sort(%x, %iota), dimensions={1}, to_apply=%cmp
        }
        """)
    with pytest.raises(VerifierError, match=message) as error:
        parse_module(text)
    assert "%sort" in str(error.value) and "to_apply=%cmp" in str(error.value)


def test_a_bad_topk_attribute_is_a_parse_error_at_its_line_and_column():
    text = module("""
        ENTRY %main {
          %x = f32[2,5] parameter(0)
          ROOT %top = (f32[2,3], s32[2,3]) topk(%x), k=three, largest=true
        }
        """)
    with pytest.raises(HloParseError, match=r"^5:\d+") as error:
        parse_module(text)
    assert "k" in str(error.value)


def test_a_topk_whose_declared_shape_is_wrong_is_rejected():
    text = TOPK.replace("(f32[2,3]{1,0}, s32[2,3]{1,0}) topk",
                        "(f32[2,3]{1,0}, f32[2,3]{1,0}) topk")
    with pytest.raises(HloParseError, match=r"^5:\d+: %top: declared shape"):
        parse_module(text)


# --- what a comparator means --------------------------------------------------------------

def _comparator(body: str):
    text = module(body + """

        ENTRY %main {
          %x = f32[4] parameter(0)
          %y = s32[4] parameter(1)
          ROOT %s = (f32[4], s32[4]) sort(%x, %y), dimensions={0}, to_apply=%cmp
        }
        """)
    return parse_module(text).computations[0]


def test_a_keyed_comparator_is_recognised_and_others_are_not():
    keyed = _comparator("""%cmp {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          %i = s32[] parameter(2)
          %j = s32[] parameter(3)
          %na = f32[] negate(%a)
          %nb = f32[] negate(%b)
          ROOT %gt = pred[] compare(%na, %nb), direction=GT, type=TOTALORDER
        }""")
    found = sort_key(keyed)
    assert found.operand == 0 and found.descending and found.total_order
    assert found.key.opcode == "negate"
    by_second = _comparator("""%cmp {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          %i = s32[] parameter(2)
          %j = s32[] parameter(3)
          ROOT %lt = pred[] compare(%i, %j), direction=LT
        }""")
    assert sort_key(by_second).operand == 1 and not sort_key(by_second).descending
    crossed = _comparator("""%cmp {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          %i = s32[] parameter(2)
          %j = s32[] parameter(3)
          %ai = f32[] convert(%i)
          %sum = f32[] add(%a, %ai)
          ROOT %lt = pred[] compare(%sum, %b), direction=LT
        }""")
    assert sort_key(crossed) is None


def test_a_comparator_that_is_not_keyed_sorts_by_calling_it():
    """Sorting by x + y (two operands in one key): the reference calls the comparator."""
    x = np.array([0.5, 3.0, -1.0, 2.0], np.float32)
    y = np.array([4, -3, 1, 0], np.int32)
    got_x, got_y = evaluate(parse_module(_sum_sort_text()), [x, y])
    order = np.argsort(x + y, kind="stable")
    np.testing.assert_array_equal(got_x, x[order])
    np.testing.assert_array_equal(got_y, y[order])


def _sum_sort_text() -> str:
    return module("""
        %cmp {
          %a = f32[] parameter(0)
          %b = f32[] parameter(1)
          %i = s32[] parameter(2)
          %j = s32[] parameter(3)
          %ai = f32[] convert(%i)
          %bj = f32[] convert(%j)
          %left = f32[] add(%a, %ai)
          %right = f32[] add(%b, %bj)
          ROOT %lt = pred[] compare(%left, %right), direction=LT
        }

        ENTRY %main {
          %x = f32[4] parameter(0)
          %y = s32[4] parameter(1)
          ROOT %s = (f32[4], s32[4]) sort(%x, %y), dimensions={0}, to_apply=%cmp
        }
        """)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, -1.5, np.inf, -np.inf, np.nan, -np.nan,
                                 1e-45, -3e38]), min_size=1, max_size=12))
def test_total_order_keys_order_floats_as_xla_totalorder(values):
    """-NaN < -inf < ... < -0.0 < 0.0 < ... < inf < NaN, by sign and magnitude."""
    x = np.array(values, np.float32)
    keys = total_order_keys(x)

    def rank(v):
        v = np.float32(v)
        sign = -1 if np.signbit(v) else 1
        magnitude = 3 if np.isnan(v) else (2 if np.isinf(v) else 1)
        return (sign, sign * magnitude, sign * abs(float(v)) if magnitude == 1 else 0)
    for a, ka in zip(x, keys):
        for b, kb in zip(x, keys):
            assert (ka < kb) == (rank(a) < rank(b)), (a, b)
