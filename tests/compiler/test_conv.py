"""flowjit.lax's convolutions and flowjit.numpy.convolve against JAX's: the same signatures,
and the same values on the same inputs, eagerly and through jit; the lower-convolution pass
(HLO text in, ops out); JAX-printed convolutions through `flowjit run`."""
import inspect
import os

import numpy as np
import pytest

import flowjit
import flowjit.lax as flax
import flowjit.numpy as fnp
from flowjit.cli import main
from flowjit.ir.errors import ShapeError
from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from flowjit.passes.lower_convolution import run as lower_convolution

jax = pytest.importorskip("jax")
jlax, jnp = jax.lax, jax.numpy

pytestmark = pytest.mark.usefixtures("no_x64")
NHWC = ("NHWC", "HWIO", "NHWC")
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


@pytest.mark.parametrize("ours, theirs", [
    (flax.conv_general_dilated, jlax.conv_general_dilated), (flax.conv, jlax.conv),
    (flax.conv_with_general_padding, jlax.conv_with_general_padding),
    (flax.conv_transpose, jlax.conv_transpose),
    (flax.conv_dimension_numbers, jlax.conv_dimension_numbers),
    (flax.padtype_to_pads, jlax.padtype_to_pads), (fnp.convolve, jnp.convolve)],
    ids=lambda f: f.__name__)
def test_signature_is_jaxs(ours, theirs):
    def parameters(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    assert parameters(ours) == parameters(theirs)


def test_dimension_numbers_are_jaxs():
    assert flax.ConvDimensionNumbers._fields == jlax.ConvDimensionNumbers._fields
    for specs in [NHWC, ("NCHW", "OIHW", "NCHW"), ("NHWC", "OIHW", "NCHW"),
                  ("NWC", "WIO", "NWC"), ("NCDHW", "DHWIO", "NDHWC"), None]:
        rank = 3 if specs and len(specs[0]) == 3 else 5 if specs and len(specs[0]) == 5 else 4
        shape = (1,) * rank
        assert tuple(flax.conv_dimension_numbers(shape, shape, specs)) == tuple(
            jlax.conv_dimension_numbers(shape, shape, specs))


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


API_CASES = {
    "same-nchw": (((2, 3, 6, 5), (4, 3, 3, 3)), lambda lax: lambda x, w: lax.conv(
        x, w, (1, 1), "SAME")),
    "valid-strided": (((2, 3, 7, 6), (4, 3, 3, 2)), lambda lax: lambda x, w: lax.conv(
        x, w, (2, 3), "VALID")),
    "same-lower": (((1, 7, 6, 2), (4, 2, 2, 3)), lambda lax: lambda x, w:
                   lax.conv_general_dilated(x, w, (2, 2), "SAME_LOWER",
                                            dimension_numbers=NHWC)),
    "general-padding": (((2, 2, 5, 5), (3, 2, 3, 2)), lambda lax: lambda x, w:
                        lax.conv_with_general_padding(x, w, (1, 2), ((2, -1), (0, 3)),
                                                      (2, 1), (1, 2))),
    "mixed-layouts": (((2, 5, 2, 6), (3, 2, 6, 4)), lambda lax: lambda x, w:
                      lax.conv_general_dilated(x, w, (1, 1), "SAME", rhs_dilation=(2, 1),
                                               dimension_numbers=("NHCW", "HIWO", "CNWH"))),
    "dimension-numbers-object": (((1, 5, 5, 4), (3, 3, 2, 6)), lambda lax: lambda x, w:
                                 lax.conv_general_dilated(
                                     x, w, (1, 1), "SAME", feature_group_count=2,
                                     dimension_numbers=lax.ConvDimensionNumbers(
                                         (0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)))),
    "depthwise": (((2, 6, 6, 5), (3, 3, 1, 5)), lambda lax: lambda x, w:
                  lax.conv_general_dilated(x, w, (2, 1), "SAME", dimension_numbers=NHWC,
                                           feature_group_count=5)),
    "batch-groups": (((4, 3, 5, 5), (6, 3, 2, 2)), lambda lax: lambda x, w:
                     lax.conv_general_dilated(x, w, (1, 1), "VALID", batch_group_count=2)),
    "conv-1d": (((2, 3, 9), (4, 3, 4)), lambda lax: lambda x, w: lax.conv_general_dilated(
        x, w, (2,), "SAME", rhs_dilation=(2,))),
    "conv-3d": (((1, 4, 4, 5, 2), (2, 3, 2, 2, 3)), lambda lax: lambda x, w:
                lax.conv_general_dilated(x, w, (1, 2, 1), "SAME",
                                         dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))),
    "1x1": (((2, 6, 6, 8), (1, 1, 8, 5)), lambda lax: lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), "VALID", dimension_numbers=NHWC)),
    "1x1-strided": (((2, 7, 7, 8), (1, 1, 8, 5)), lambda lax: lambda x, w:
                    lax.conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=NHWC)),
    "transpose-same": (((1, 4, 5, 3), (3, 3, 3, 2)), lambda lax: lambda x, w:
                       lax.conv_transpose(x, w, (2, 2), "SAME")),
    "transpose-valid": (((1, 4, 5, 3), (3, 2, 3, 2)), lambda lax: lambda x, w:
                        lax.conv_transpose(x, w, (2, 3), "VALID", rhs_dilation=(1, 2))),
    "transpose-explicit": (((1, 4, 5, 3), (3, 3, 3, 2)), lambda lax: lambda x, w:
                           lax.conv_transpose(x, w, (2, 2), ((1, 2), (0, 1)))),
    "transpose-consistent": (((1, 4, 5, 3), (3, 3, 3, 2)), lambda lax: lambda x, w:
                             lax.conv_transpose(x, w, (2, 2), ((1, 1), (1, 1)),
                                                use_consistent_padding=True)),
    "transpose-kernel": (((2, 3, 4, 4), (3, 2, 3, 3)), lambda lax: lambda x, w:
                         lax.conv_transpose(x, w, (2, 2), "SAME",
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                            transpose_kernel=True)),
}


@pytest.mark.parametrize("name", sorted(API_CASES))
def test_values_are_jaxs_eagerly_and_under_jit(name):
    shapes, make = API_CASES[name]
    args = _arrays(*shapes)
    want = np.asarray(jax.jit(make(jlax))(*args))
    eager = make(flax)(*args)
    compiled = flowjit.jit(make(flax))(*args)
    for got in (eager, compiled):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_preferred_element_type_widens_the_result():
    x = np.arange(12, dtype=np.int8).reshape(1, 1, 12)
    w = np.array([[[100, -100, 50]]], np.int8)
    got = flowjit.jit(lambda x, w: flax.conv(x, w, (1,), "VALID",
                                             preferred_element_type=np.int32))(x, w)
    want = jlax.conv(x, w, (1,), "VALID", preferred_element_type=np.int32)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("lengths", [(7, 3), (3, 7), (6, 4), (5, 1)])
def test_numpy_convolve_is_jaxs_and_numpys(mode, lengths):
    a, v = _arrays(*[(n,) for n in lengths])
    got = fnp.convolve(a, v, mode)
    np.testing.assert_allclose(got, jnp.convolve(a, v, mode), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, np.convolve(a.astype(np.float64), v, mode), rtol=1e-5,
                               atol=1e-6)
    traced = flowjit.jit(lambda a, v: fnp.convolve(a, v, mode=mode))(a, v)
    np.testing.assert_allclose(traced, got, rtol=1e-6, atol=1e-6)


def test_numpy_convolve_of_integers_is_float_as_in_jax():
    got = fnp.convolve(np.array([1, 2, 3, 2, 1]), np.array([4, 1, 2]))
    assert got.dtype == jnp.convolve(jnp.array([1, 2, 3, 2, 1]), jnp.array([4, 1, 2])).dtype
    np.testing.assert_array_equal(got, [4, 9, 16, 15, 12, 5, 2])   # numpy's docs example


def test_a_feature_mismatch_names_the_shapes_and_the_users_line():
    x, w = _arrays((1, 3, 5, 5), (4, 2, 3, 3))
    here = inspect.currentframe().f_lineno
    eager = lambda: flax.conv(x, w, (1, 1), "SAME")   # noqa: E731 - line here + 1
    traced = lambda x, w: flax.conv(x, w, (1, 1), "SAME")   # noqa: E731 - line here + 2
    for run, line in ((eager, here + 1), (lambda: flowjit.jit(traced)(x, w), here + 2)):
        with pytest.raises(ShapeError) as error:
            run()
        message = str(error.value)
        assert "f32[1,3,5,5]" in message and "f32[4,2,3,3]" in message
        assert "input features (3)" in message and f"test_conv.py:{line}" in message


def test_a_wrong_number_of_strides_is_a_clear_error():
    x, w = _arrays((1, 3, 5, 5), (4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"window_strides=\[1\] needs 2 entries"):
        flax.conv(x, w, (1,), "SAME")
    with pytest.raises(TypeError, match="must contain the characters 'N' and 'C'"):
        flax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWX", "HWIO",
                                                                           "NHWC"))


# --- the lower-convolution pass: HLO in, ops out ----------------------------------------

def _lowered(text: str):
    module = parse_module(text)
    assert lower_convolution(module)
    return module, [i.opcode for i in module.entry.instructions]


def test_a_1x1_convolution_is_a_dot():
    module, ops = _lowered("""HloModule m
ENTRY %e {
  %x = f32[2,6,6,8] parameter(0)
  %w = f32[1,1,8,5] parameter(1)
  ROOT %c = f32[2,6,6,5] convolution(%x, %w), window={size=1x1}, dim_labels=b01f_01io->b01f
}
""")
    assert ops == ["parameter", "parameter", "reshape", "dot"]
    dot = module.entry.root
    assert dot.attrs == {"lhs_contracting_dims": (3,), "rhs_contracting_dims": (0,)}


def test_a_3x3_convolution_is_one_pad_nine_slices_a_tree_of_concatenates_and_a_dot():
    module, ops = _lowered("""HloModule m
ENTRY %e {
  %x = f32[2,6,6,3] parameter(0)
  %w = f32[3,3,3,4] parameter(1)
  ROOT %c = f32[2,3,3,4] convolution(%x, %w),
      window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=b01f_01io->b01f
}
""")
    assert ops.count("pad") == 1 and ops.count("slice") == 9
    concatenates = [i for i in module.entry.instructions if i.opcode == "concatenate"]
    assert len(concatenates) == 4 and all(len(c.operands) == 3 for c in concatenates)
    assert ops.count("dot") == 1
    assert "convolution" not in ops
    assert module.entry.root.opcode == "dot" and module.entry.root.shape.dims == (2, 3, 3, 4)


def test_a_window_larger_than_the_output_slices_once_per_output_position():
    # A kernel's gradient: 6x6 window taps (36) over 2x2 output positions (4).
    module, ops = _lowered("""HloModule m
ENTRY %e {
  %x = f32[3,7,7,2] parameter(0)
  %g = f32[6,6,2,4] parameter(1)
  ROOT %c = f32[3,2,2,4] convolution(%x, %g), window={size=6x6}, dim_labels=b01f_01io->b01f
}
""")
    assert ops.count("slice") == 4 and ops.count("dot") == 1


def test_a_depthwise_convolution_is_a_multiply_and_a_reduce_not_a_dot():
    module, ops = _lowered("""HloModule m
ENTRY %e {
  %x = f32[2,6,6,4] parameter(0)
  %w = f32[3,3,1,4] parameter(1)
  ROOT %c = f32[2,6,6,4] convolution(%x, %w), window={size=3x3 pad=1_1x1_1},
      dim_labels=b01f_01io->b01f, feature_group_count=4
}
""")
    assert "dot" not in ops and ops.count("multiply") == 1 and ops.count("reduce") == 1
    (reduce,) = [i for i in module.entry.instructions if i.opcode == "reduce"]
    assert reduce.attrs["dimensions"] == (3,)      # the taps of [2, 6, 6, 9, 4, 1]


def test_groups_become_the_dots_batch_dimension():
    module, ops = _lowered("""HloModule m
ENTRY %e {
  %x = f32[2,4,6,6] parameter(0)
  %w = f32[8,1,3,3] parameter(1)
  ROOT %c = f32[2,8,6,6] convolution(%x, %w), window={size=3x3 pad=1_1x1_1},
      dim_labels=bf01_oi01->bf01, feature_group_count=4
}
""")
    (dot,) = [i for i in module.entry.instructions if i.opcode == "dot"]
    assert dot.attrs["lhs_batch_dims"] == (0,) and dot.shape.dims[0] == 4


def test_every_pipeline_lowers_convolutions(opt_level):
    text = open(os.path.join(FIXTURES, "cnn_grad.hlo")).read()
    module, _ = optimize(parse_module(text), opt_level=opt_level)
    assert "convolution" not in module.to_text()


@pytest.mark.parametrize("name", ["conv_nchw", "conv_depthwise", "conv_transpose"])
def test_flowjit_run_matches_jax_on_a_fixture(name, opt_level, tmp_path, capsys):
    with np.load(os.path.join(FIXTURES, f"{name}.npz")) as data:
        inputs = {f"a{k}": data[f"arg{k}"] for k in range(2)}
        want = data["out0"]
    np.savez(tmp_path / "in.npz", **inputs)
    assert main(["run", os.path.join(FIXTURES, f"{name}.hlo"), "--inputs",
                 str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz"), "--check",
                 "--opt-level", str(opt_level)]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["r0"], want, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("lhs, rhs", [((0, 3, 5, 5), (4, 3, 3, 3)), ((2, 3, 2, 2), (4, 3, 3, 3)),
                                      ((2, 0, 5, 5), (4, 0, 3, 3))])
def test_empty_inputs_and_outputs_are_jaxs(lhs, rhs):
    x, w = _arrays(lhs, rhs)
    want = np.asarray(jlax.conv(x, w, (1, 1), "VALID"))
    got = flowjit.jit(lambda x, w: flax.conv(x, w, (1, 1), "VALID"))(x, w)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
