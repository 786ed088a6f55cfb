"""The `convolution` op: its dim_labels attribute, shape rule (against the shapes JAX
computes), verifier messages, printer/parser round trip and reference semantics (against a
convolution written from its definition, tests/conv_oracle.py)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from flowjit.ir.attributes import ConvDimensionLabels, window
from flowjit.ir.builder import Builder
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import HloParseError, ShapeError, VerifierError
from flowjit.ir.ops import infer_shape
from flowjit.ir.parser import parse_module
from flowjit.ir.printer import format_instruction
from flowjit.ir.reference import evaluate_instruction
from flowjit.ir.shapes import ArrayShape
from flowjit.ir.verifier import verify
from tests import conv_oracle

F32 = DType.F32


@st.composite
def configs(draw, valid=True):
    """A random convolution: 1 to 3 spatial dims, any layouts, strides, padding (negative
    too), both dilations, and feature or batch groups. `valid`: padding never more
    negative than the input is large."""
    n = draw(st.integers(1, 3))
    rank = n + 2
    labels = ConvDimensionLabels(*(tuple(draw(st.permutations(range(rank))))
                                   for _ in range(3)))
    groups = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["feature", "batch"]))
    feature_groups, batch_groups = (groups, 1) if kind == "feature" else (1, groups)
    kernel_in = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2)) * batch_groups
    out_features = draw(st.integers(1, 2)) * groups
    spatial = [draw(st.integers(1, 6)) for _ in range(n)]
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    base_dilation = [draw(st.integers(1, 3)) for _ in range(n)]
    padding = [(draw(st.integers(-1, 3)), draw(st.integers(-1, 3))) for _ in range(n)]
    if valid:
        padding = [(lo, hi) if (size - 1) * d + 1 + lo + hi >= 0 else (0, 0)
                   for (lo, hi), size, d in zip(padding, spatial, base_dilation)]
    dims = window(kernel, [draw(st.integers(1, 3)) for _ in range(n)], padding,
                  [draw(st.integers(1, 3)) for _ in range(n)], base_dilation)
    lhs = [0] * rank
    lhs[labels.lhs[0]], lhs[labels.lhs[1]] = batch, kernel_in * feature_groups
    rhs = [0] * rank
    rhs[labels.rhs[0]], rhs[labels.rhs[1]] = out_features, kernel_in
    for k in range(n):
        lhs[labels.lhs[2 + k]], rhs[labels.rhs[2 + k]] = spatial[k], kernel[k]
    attrs = {"window": dims, "dim_labels": labels}
    if feature_groups > 1:
        attrs["feature_group_count"] = feature_groups
    if batch_groups > 1:
        attrs["batch_group_count"] = batch_groups
    return ArrayShape(F32, tuple(lhs)), ArrayShape(F32, tuple(rhs)), attrs


def _jax_shape(lhs, rhs, attrs):
    jax = pytest.importorskip("jax")
    labels, dims = attrs["dim_labels"], attrs["window"]
    out = jax.eval_shape(
        lambda x, w: jax.lax.conv_general_dilated(
            x, w, [d.stride for d in dims], [(d.padding_low, d.padding_high) for d in dims],
            [d.base_dilation for d in dims], [d.window_dilation for d in dims],
            jax.lax.ConvDimensionNumbers(labels.lhs, labels.rhs, labels.out),
            attrs.get("feature_group_count", 1), attrs.get("batch_group_count", 1)),
        jax.ShapeDtypeStruct(lhs.dims, np.float32), jax.ShapeDtypeStruct(rhs.dims, np.float32))
    return tuple(out.shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(valid=False))
def test_shape_rule_matches_jax(config):
    lhs, rhs, attrs = config
    try:
        expected = _jax_shape(lhs, rhs, attrs)
    except ValueError:   # padding more negative than the input is large
        with pytest.raises(ShapeError, match="more negative"):
            infer_shape("convolution", [lhs, rhs], attrs, {})
        return
    assert infer_shape("convolution", [lhs, rhs], attrs, {}).dims == expected


@settings(max_examples=40, deadline=None)
@given(configs())
def test_dim_labels_and_window_print_and_parse_back(config):
    lhs, rhs, attrs = config
    b = Builder("conv")
    conv = b.add("convolution", [b.parameter(0, lhs), b.parameter(1, rhs)], attrs)
    line = format_instruction(conv, is_root=True).replace(
        f"%{conv.operands[0].name}", "%p").replace(f"%{conv.operands[1].name}", "%q")
    module_text = (f"HloModule m\n\nENTRY %e {{\n  %p = {lhs} parameter(0)\n"
                   f"  %q = {rhs} parameter(1)\n  {line}\n}}\n")
    module = parse_module(module_text)
    root = module.entry.root
    assert root.attrs == conv.attrs and root.shape == conv.shape
    assert module.to_text() == module_text


@given(st.integers(2, 6).flatmap(lambda rank: st.tuples(
    *(st.permutations(range(rank)) for _ in range(3)))))
def test_dim_labels_text_round_trips(specs):
    labels = ConvDimensionLabels(*(tuple(s) for s in specs))
    assert ConvDimensionLabels.parse(labels.text()) == labels


def test_dim_labels_spell_xla_layouts():
    nhwc = ConvDimensionLabels((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    assert nhwc.text() == "b01f_01io->b01f"
    assert ConvDimensionLabels.parse("bf01_oi01->bf01").lhs == (0, 1, 2, 3)
    assert ConvDimensionLabels.parse("f01b_i01o->01bf").out == (2, 3, 0, 1)


CONV = """HloModule m
ENTRY %e {
  %x = f32[2,5,5,6] parameter(0)
  %w = f32[3,3,KERNEL] parameter(1)
  ROOT %c = f32[OUT] convolution(%x, %w), window={size=3x3 pad=1_1x1_1}, dim_labels=LABELS EXTRA
}
"""


def conv_text(kernel="6,4", out="2,5,5,4", labels="b01f_01io->b01f", extra=""):
    return (CONV.replace("KERNEL", kernel).replace("OUT", out).replace("LABELS", labels)
            .replace(" EXTRA", extra))


def test_a_good_convolution_verifies():
    verify(parse_module(conv_text()))
    verify(parse_module(conv_text("2,6", "2,5,5,6", extra=", feature_group_count=3")))


@pytest.mark.parametrize("kernel, out, labels, extra, message", [
    ("5,4", "2,5,5,4", "b01f_01io->b01f", "",
     r"input features \(6\) / feature_group_count \(1\) must equal the kernel's input "
     r"features \(5\)"),
    ("6,4", "2,5,5,4", "b01f_01io->b01f", ", feature_group_count=2, batch_group_count=2",
     "cannot both be above 1"),
    ("2,4", "2,5,5,4", "b01f_01io->b01f", ", feature_group_count=3",
     r"kernel output features \(4\) must be a multiple of feature_group_count \(3\)"),
    ("6,4", "1,5,5,4", "b01f_01io->b01f", ", batch_group_count=4",
     r"batch \(2\) must be a multiple of batch_group_count \(4\)"),
    ("6,4", "2,5,5,4", "b01f_o01i->b01f", "",
     "window size 3 in spatial dimension 1 differs from the kernel's 6"),
    ("6,4", "2,5,5,4", "b0f_0io->b0f", "", "is for rank 3 operands"),
])
def test_shape_errors_name_the_mismatch_and_the_shapes(kernel, out, labels, extra, message):
    with pytest.raises((ShapeError, HloParseError), match=message) as error:
        parse_module(conv_text(kernel, out, labels, extra))
    assert "f32[2,5,5,6]" in str(error.value)


def test_a_wrong_declared_shape_is_rejected():
    with pytest.raises((ShapeError, HloParseError, VerifierError), match="f32"):
        parse_module(conv_text(out="2,5,5,3"))


@pytest.mark.parametrize("labels", ["b01f_01io->b0f", "b01f_01io", "b01x_01io->b01f",
                                    "b01f_01ii->b01f", "bb1f_01io->b01f"])
def test_malformed_dim_labels_give_line_and_column(labels):
    with pytest.raises(HloParseError) as error:
        parse_module(conv_text(labels=labels))
    assert "5:" in str(error.value) and "dim_labels" in str(error.value)


def test_the_verifier_rejects_labels_that_are_not_permutations():
    module = parse_module(conv_text())
    module.entry.root.attrs["dim_labels"] = ConvDimensionLabels((0, 3, 1, 1), (3, 2, 0, 1),
                                                                (0, 3, 1, 2))
    with pytest.raises(VerifierError, match="dim_labels"):
        verify(module)


def _evaluate(lhs_shape, rhs_shape, attrs, x, w):
    b = Builder("conv")
    inst = b.add("convolution", [b.parameter(0, lhs_shape), b.parameter(1, rhs_shape)], attrs)
    return evaluate_instruction(inst, [x, w])


@settings(max_examples=40, deadline=None)
@given(configs(), st.integers(0, 2**31 - 1))
def test_reference_matches_convolution_by_definition(config, seed):
    lhs, rhs, attrs = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(lhs.dims).astype(np.float32)
    w = rng.standard_normal(rhs.dims).astype(np.float32)
    labels, dims = attrs["dim_labels"], attrs["window"]
    expected = conv_oracle.conv(
        x, w, [d.stride for d in dims], [(d.padding_low, d.padding_high) for d in dims],
        [d.base_dilation for d in dims], [d.window_dilation for d in dims],
        (labels.lhs, labels.rhs, labels.out), attrs.get("feature_group_count", 1),
        attrs.get("batch_group_count", 1))
    got = _evaluate(lhs, rhs, attrs, x, w)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_rhs_reversal_is_the_flipped_kernel():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    labels = ConvDimensionLabels((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))
    dims = window((3, 2), padding=((1, 1), (0, 1)), reversal=(True, False))
    got = _evaluate(ArrayShape(DType.F64, x.shape), ArrayShape(DType.F64, w.shape),
                    {"window": dims, "dim_labels": labels}, x, w)
    np.testing.assert_allclose(got, conv_oracle.conv(x, np.flip(w, 2), (1, 1),
                                                     [(1, 1), (0, 1)]), rtol=1e-12)


def test_integer_convolution_is_exact():
    x = np.arange(2 * 1 * 6, dtype=np.int32).reshape(2, 1, 6) - 5
    w = np.array([[[1, -2, 3]]], np.int32)
    labels = ConvDimensionLabels((0, 1, 2), (0, 1, 2), (0, 1, 2))
    got = _evaluate(ArrayShape(DType.S32, x.shape), ArrayShape(DType.S32, w.shape),
                    {"window": window((3,)), "dim_labels": labels}, x, w)
    # Hand-computed: out[i] = x[i] - 2 x[i+1] + 3 x[i+2] (a correlation).
    want = x[:, :, :-2] - 2 * x[:, :, 1:-1] + 3 * x[:, :, 2:]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(configs(), st.sampled_from(["kernel_in", "out_features"]))
def test_shape_rule_rejects_what_jax_rejects(config, broken):
    """One feature count made inconsistent: JAX refuses the convolution, so does the rule."""
    lhs, rhs, attrs = config
    labels = attrs["dim_labels"]
    dims = list(rhs.dims)
    groups = max(attrs.get("feature_group_count", 1), attrs.get("batch_group_count", 1))
    dims[labels.rhs[0] if broken == "out_features" and groups > 1 else labels.rhs[1]] += 1
    rhs = ArrayShape(F32, tuple(dims))
    with pytest.raises(Exception):
        _jax_shape(lhs, rhs, attrs)
    with pytest.raises(ShapeError):
        infer_shape("convolution", [lhs, rhs], attrs, {})
