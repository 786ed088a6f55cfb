"""reduce-window and select-and-scatter in the IR: shape rules against JAX's (random
windows), printer/parser round trips, verifier errors that name the mismatch, and the numpy
reference semantics against JAX's own results."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")
from jax import lax as jax_lax  # noqa: E402
from jax._src.lax import windowed_reductions  # noqa: E402

from flowjit.ir.attributes import window  # noqa: E402
from flowjit.ir.builder import Builder, scalar_computation  # noqa: E402
from flowjit.ir.dtypes import DType  # noqa: E402
from flowjit.ir.errors import HloParseError, ShapeError, VerifierError  # noqa: E402
from flowjit.ir.module import Module  # noqa: E402
from flowjit.ir.ops import infer_shape  # noqa: E402
from flowjit.ir.parser import parse_module  # noqa: E402
from flowjit.ir.reference import evaluate  # noqa: E402
from flowjit.ir.shapes import ArrayShape, TupleShape  # noqa: E402
from flowjit.ir.verifier import verify  # noqa: E402

F32 = DType.F32
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def windows(draw, max_rank: int = 3, dilate: bool = True, min_size: int = 0):
    """(operand dims, window dims, strides, (lo, hi) pads, base dilation, window dilation)."""
    rank = draw(st.integers(1, max_rank))
    dims = tuple(draw(st.integers(min_size, 6)) for _ in range(rank))
    sizes = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(rank))
    base = tuple(draw(st.integers(1, 3)) if dilate else 1 for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) if dilate else 1 for _ in range(rank))
    return dims, sizes, strides, pads, base, dilation


# infer_shape wants each required computation named; the shape rules do not read them.
_CALLS = {"to_apply": None, "select": None, "scatter": None}


def _attrs(sizes, strides, pads, base, dilation):
    return {"window": window(sizes, strides, pads, dilation, base)}


def _reduce_window_module(dims, sizes, strides, pads, base, dilation, reducer="maximum",
                          init=-np.inf) -> Module:
    b = Builder("main")
    x = b.parameter(0, ArrayShape(F32, dims), "x")
    comp = scalar_computation(reducer, F32, b.names)
    out = b.add("reduce-window", [x, b.constant(np.float32(init))],
                _attrs(sizes, strides, pads, base, dilation), {"to_apply": comp})
    return Module("m", b.finish(out), [comp])


# --- shape rules ------------------------------------------------------------------------

@SETTINGS
@given(windows())
def test_reduce_window_shape_is_jaxs(case):
    dims, sizes, strides, pads, base, dilation = case
    want = jax_lax.reduce_window_shape_tuple(dims, sizes, strides, pads, base, dilation)
    shapes = [ArrayShape(F32, dims), ArrayShape(F32, ())]
    got = infer_shape("reduce-window", shapes, _attrs(sizes, strides, pads, base, dilation),
                      _CALLS)
    assert got == ArrayShape(F32, tuple(want))


def test_variadic_reduce_window_gives_a_tuple_of_each_operands_type():
    shapes = [ArrayShape(F32, (5, 4)), ArrayShape(DType.S32, (5, 4)), ArrayShape(F32, ()),
              ArrayShape(DType.S32, ())]
    got = infer_shape("reduce-window", shapes, _attrs((2, 2), (1, 2), None, None, None), _CALLS)
    assert got == TupleShape((ArrayShape(F32, (4, 2)), ArrayShape(DType.S32, (4, 2))))


@pytest.mark.parametrize("attrs, shapes, message", [
    (_attrs((2,), None, None, None, None), [(3, 3), ()], "window has 1 dimensions, the "
     "operand 2"),
    (_attrs((0, 1), None, None, None, None), [(3, 3), ()], "window size 0 in dimension 0"),
    (_attrs((1, 1), (1, 0), None, None, None), [(3, 3), ()], "stride 0 in dimension 1"),
    (_attrs((1, 1), None, ((-5, 0), (0, 0)), None, None), [(3, 3), ()], "crops more"),
    (_attrs((1, 1), None, None, None, None), [(3, 3), (1,)], "init values must be scalars"),
    (_attrs((1, 1), None, None, None, None), [(3, 3)], "as many init values as operands"),
])
def test_reduce_window_shape_errors_name_the_problem(attrs, shapes, message):
    with pytest.raises(ShapeError, match=message):
        infer_shape("reduce-window", [ArrayShape(F32, s) for s in shapes], attrs, _CALLS)


def test_select_and_scatter_source_must_match_the_window_positions():
    attrs = _attrs((2, 2), (2, 2), None, None, None)
    shapes = [ArrayShape(F32, (4, 6)), ArrayShape(F32, (2, 3)), ArrayShape(F32, ())]
    assert infer_shape("select-and-scatter", shapes, attrs, _CALLS) == ArrayShape(F32, (4, 6))
    shapes[1] = ArrayShape(F32, (2, 2))
    with pytest.raises(ShapeError, match=r"source dims \[2, 2\] must be .* \[2, 3\]"):
        infer_shape("select-and-scatter", shapes, attrs, _CALLS)


# --- text -------------------------------------------------------------------------------

_SELECT_AND_SCATTER = """HloModule m

ge {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = pred[] compare(a, b), direction=GE
}

add {
  a.1 = f32[] parameter(0)
  b.1 = f32[] parameter(1)
  ROOT s = f32[] add(a.1, b.1)
}

ENTRY main {
  x = f32[SHAPE] parameter(0)
  g = f32[OUT] parameter(1)
  zero = f32[] constant(0)
  ROOT r = f32[SHAPE] select-and-scatter(x, g, zero), window={WINDOW}, select=ge, scatter=add
}
"""


def _select_and_scatter_text(dims, window_text: str, out) -> str:
    return (_SELECT_AND_SCATTER.replace("SHAPE", ",".join(map(str, dims)))
            .replace("OUT", ",".join(map(str, out))).replace("WINDOW", window_text))


@SETTINGS
@given(windows())
def test_reduce_window_print_parse_print_is_identity(case):
    module = _reduce_window_module(*case)
    verify(module)
    text = module.to_text()
    parsed = parse_module(text)
    assert parsed.to_text() == text
    assert parsed.entry.root.attrs["window"] == module.entry.root.attrs["window"]


@SETTINGS
@given(windows(dilate=False, min_size=1))
def test_select_and_scatter_print_parse_print_is_identity(case):
    dims, sizes, strides, pads, _, _ = case
    out = jax_lax.reduce_window_shape_tuple(dims, sizes, strides, pads)
    win = window(sizes, strides, pads)
    from flowjit.ir.printer import FORMATTERS
    from flowjit.ir.attributes import AttrKind
    text = _select_and_scatter_text(dims, FORMATTERS[AttrKind.WINDOW](win)[1:-1], out)
    module = parse_module(text)
    assert module.entry.root.attrs["window"] == win
    assert parse_module(module.to_text()).to_text() == module.to_text()


def test_jax_spelling_of_reduce_window_parses():
    text = """HloModule jit_f
region_0.1 {
  Arg_0.2 = f32[] parameter(0)
  Arg_1.3 = f32[] parameter(1)
  ROOT maximum.4 = f32[] maximum(Arg_0.2, Arg_1.3)
}
ENTRY main.6 {
  Arg_0.1 = f32[8,9,9,3]{3,2,1,0} parameter(0)
  constant.1 = f32[] constant(-inf)
  ROOT reduce-window.5 = f32[8,5,5,3]{3,2,1,0} reduce-window(Arg_0.1, constant.1), window={size=1x3x3x1 stride=1x2x2x1 pad=0_0x1_1x1_1x0_0}, to_apply=region_0.1
}
"""
    root = parse_module(text).entry.root
    assert [(w.size, w.stride, w.padding_low, w.padding_high)
            for w in root.attrs["window"]] == [(1, 1, 0, 0), (3, 2, 1, 1), (3, 2, 1, 1),
                                               (1, 1, 0, 0)]


# --- verifier ---------------------------------------------------------------------------

def test_verifier_names_a_reducer_of_the_wrong_type():
    module = _reduce_window_module((4, 4), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), (1, 1))
    b = Builder("bad")
    p = b.parameter(0, ArrayShape(DType.S32, ()), "a")
    q = b.parameter(1, ArrayShape(DType.S32, ()), "b")
    bad = b.finish(b.add("add", [p, q]))
    module.entry.root.calls["to_apply"] = bad
    module.computations.append(bad)
    with pytest.raises(VerifierError, match=r"to_apply=%bad\S* is \(s32\[\], s32\[\]\) -> s32\[\], "
                                            r"needs \(f32\[\], f32\[\]\) -> f32\[\]"):
        verify(module)


def test_verifier_names_a_select_that_does_not_give_a_pred():
    text = _select_and_scatter_text((4, 6), "size=2x2 stride=2x2", (2, 3)).replace(
        "select=ge", "select=add")
    with pytest.raises(VerifierError, match=r"select=%add is .* needs \(f32\[\], f32\[\]\) "
                                            r"-> pred\[\]"):
        parse_module(text)


def test_parser_rejects_dilation_in_select_and_scatter_at_its_line():
    text = _select_and_scatter_text((4, 6), "size=2x2 stride=2x2 rhs_dilate=2x1", (1, 3))
    with pytest.raises(HloParseError, match=r"^19:\d+: .*window dilation is not allowed"):
        parse_module(text)


# --- reference semantics ----------------------------------------------------------------

@SETTINGS
@given(windows(max_rank=2), st.sampled_from(["add", "maximum", "minimum"]),
       st.integers(0, 2 ** 31 - 1))
def test_reference_matches_jax(case, reducer, seed):
    dims, sizes, strides, pads, base, dilation = case
    x = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    init, jax_fn = {"add": (0.0, jax_lax.add), "maximum": (-np.inf, jax_lax.max),
                    "minimum": (np.inf, jax_lax.min)}[reducer]
    module = _reduce_window_module(dims, sizes, strides, pads, base, dilation, reducer, init)
    got = evaluate(module, [x])
    want = jax_lax.reduce_window(x, np.float32(init), jax_fn, sizes, strides, pads, base,
                                 dilation)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_a_non_identity_init_counts_once_and_padding_is_skipped():
    # Hand-computed: windows of 2 with stride 1 over [1, 2, 3] padded by one on each side
    # see [pad, 1], [1, 2], [2, 3], [3, pad]; each sum starts from 10.
    module = _reduce_window_module((3,), (2,), (1,), ((1, 1),), (1,), (1,), "add", 10.0)
    got = evaluate(module, [np.array([1, 2, 3], np.float32)])
    np.testing.assert_array_equal(got, [11, 13, 15, 13])


def test_generic_reducer_folds_in_window_order():
    # acc * 2 + value is not associative: the fold order is visible. Window of 3 over
    # [1, 2, 3, 4] from 0: ((0*2+1)*2+2)*2+3 = 11, ((0*2+2)*2+3)*2+4 = 18.
    b = Builder("main")
    r = Builder("fold", b.names)
    acc = r.parameter(0, ArrayShape(F32, ()), "acc")
    value = r.parameter(1, ArrayShape(F32, ()), "value")
    fold = r.finish(r.add("add", [r.add("multiply", [acc, r.constant(np.float32(2))]),
                                  value]))
    x = b.parameter(0, ArrayShape(F32, (4,)), "x")
    out = b.add("reduce-window", [x, b.constant(np.float32(0))],
                _attrs((3,), None, None, None, None), {"to_apply": fold})
    module = Module("m", b.finish(out), [fold])
    verify(module)
    np.testing.assert_array_equal(evaluate(module, [np.arange(1, 5, dtype=np.float32)]),
                                  [11, 18])


@SETTINGS
@given(windows(max_rank=2, dilate=False, min_size=1), st.integers(0, 2 ** 31 - 1))
def test_select_and_scatter_reference_matches_jax(case, seed):
    dims, sizes, strides, pads, _, _ = case
    out = jax_lax.reduce_window_shape_tuple(dims, sizes, strides, pads)
    rng = np.random.default_rng(seed)
    # Few distinct values, so windows hold ties: the first maximum must win, as in XLA.
    x = rng.integers(0, 3, dims).astype(np.float32)
    source = rng.standard_normal(out).astype(np.float32)
    from flowjit.ir.printer import FORMATTERS
    from flowjit.ir.attributes import AttrKind
    text = _select_and_scatter_text(dims, FORMATTERS[AttrKind.WINDOW](
        window(sizes, strides, pads))[1:-1], out)
    got = evaluate(parse_module(text), [x, source])
    want = windowed_reductions._select_and_scatter_add(source, x, jax_lax.ge_p, sizes,
                                                         strides, pads)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)
