"""LAPACK custom calls and HLO cholesky / triangular-solve in the IR: typed attributes that
round-trip, result shapes by hand-derived rules (LAPACK's documented outputs, JAX's FFI
result tuples), clear errors for what does not fit, reference values against numpy."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowjit.ir.attributes import OperandLayout, column_major
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import HloParseError, ShapeError, VerifierError
from flowjit.ir.lapack_targets import lapack_result_shape
from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.ir.shapes import ArrayShape, TupleShape
from flowjit.ir.verifier import verify_compilable

F32, S32 = DType.F32, DType.S32
# The parser checks shapes as it reads (a located error); the verifier checks built modules.
_REJECTED = (HloParseError, VerifierError)


def _call(target: str, operands: list[str], result: str, extra: str = "") -> str:
    params = "\n".join(f"  %p{k} = {shape} parameter({k})" for k, shape in enumerate(operands))
    args = ", ".join(f"%p{k}" for k in range(len(operands)))
    return (f"HloModule m\n\nENTRY %main {{\n{params}\n  ROOT %c = {result} custom-call({args}), "
            f'custom_call_target="{target}"{extra}\n}}\n')


def _config(**options) -> str:
    entries = ", ".join(f"{k} = {ord(v)} : ui8" for k, v in sorted(options.items()))
    return f", backend_config={{{entries}}}"


# --- typed attributes ------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(batch=st.lists(st.integers(1, 4), max_size=2), n=st.integers(1, 6),
       uplo=st.sampled_from("LU"))
def test_layouts_and_config_round_trip_as_typed_attributes(batch, n, uplo):
    dims = ",".join(map(str, batch + [n, n]))
    rank = len(batch) + 2
    order = ",".join(map(str, column_major(rank)))
    text = _call("lapack_spotrf_ffi", [f"f32[{dims}]"],
                 f"(f32[{dims}], s32[{','.join(map(str, batch))}])",
                 f", operand_layout_constraints={{f32[{dims}]{{{order}}}}}" + _config(uplo=uplo))
    module = parse_module(text)
    root = module.entry.root
    assert root.attrs["operand_layout_constraints"] == (
        OperandLayout("f32", tuple(batch + [n, n]), column_major(rank)),)
    assert root.attrs["ffi_config"] == (("uplo", ord(uplo), "ui8"),)
    printed = module.to_text()
    assert parse_module(printed).to_text() == printed


def test_a_shape_printed_without_a_layout_has_the_default_one():
    # XLA prints a scalar's layout as nothing at all.
    text = _call("my_kernel", ["f32[2,3]", "f32[]"], "f32[2,3]",
                 ", operand_layout_constraints={f32[2,3]{1,0}, f32[]}")
    layouts = parse_module(text).entry.root.attrs["operand_layout_constraints"]
    assert layouts == (OperandLayout("f32", (2, 3), (1, 0)), OperandLayout("f32", (), ()))


def test_column_major_is_xla_minor_to_major_of_batched_matrices():
    # XLA prints LAPACK operands as f32[2,5,3]{1,2,0}: rows fastest, then columns, batch.
    assert column_major(3) == (1, 2, 0)
    assert column_major(2) == (0, 1)
    assert column_major(1) == (0,)


def test_a_json_backend_config_stays_verbatim_and_gives_no_options():
    config = ', backend_config="{\\"x\\": 1}"'
    root = parse_module(_call("my_kernel", ["f32[2]"], "f32[2]", config)).entry.root
    assert root.extra_attrs["backend_config"] == '"{\\"x\\": 1}"'
    assert "ffi_config" not in root.attrs
    with pytest.raises(_REJECTED, match="backend_config needs uplo"):
        parse_module(_call("lapack_spotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[])", config))


# --- result shapes (LAPACK's outputs, as jaxlib's FFI kernels return them) -------------------

def _shape(dtype, *dims):
    return ArrayShape(dtype, dims)


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(st.integers(1, 3), max_size=2), m=st.integers(1, 7),
       n=st.integers(1, 7), mode=st.sampled_from("ASN"))
def test_gesdd_and_getrf_and_geqrf_shapes(batch, m, n, mode):
    batch = tuple(batch)
    a = _shape(F32, *batch, m, n)
    k = min(m, n)
    u, vt = ((m, k), (k, n)) if mode == "S" else ((m, m), (n, n))
    svd = lapack_result_shape("lapack_sgesdd_ffi", [a], {"ffi_config": (("mode", ord(mode),
                                                                          "ui8"),)})
    assert svd == TupleShape((a, _shape(F32, *batch, k), _shape(F32, *batch, *u),
                              _shape(F32, *batch, *vt), _shape(S32, *batch)))
    assert lapack_result_shape("lapack_sgetrf_ffi", [a], {}) == TupleShape(
        (a, _shape(S32, *batch, k), _shape(S32, *batch)))
    assert lapack_result_shape("lapack_sgeqrf_ffi", [a], {}) == TupleShape(
        (a, _shape(F32, *batch, k)))


def test_trsm_side_decides_which_dim_of_b_a_matches():
    a, b = _shape(DType.F64, 3, 3), _shape(DType.F64, 3, 5)
    config = {"side": "L", "uplo": "L", "trans_x": "N", "diag": "N"}
    attrs = {"ffi_config": tuple((k, ord(v), "ui8") for k, v in config.items())}
    assert lapack_result_shape("lapack_dtrsm_ffi", [a, b], attrs) == b
    config["side"] = "R"
    attrs = {"ffi_config": tuple((k, ord(v), "ui8") for k, v in config.items())}
    with pytest.raises(ShapeError, match="side R"):
        lapack_result_shape("lapack_dtrsm_ffi", [a, b], attrs)


# --- errors: clear, naming what does not fit -------------------------------------------------

@pytest.mark.parametrize("target, operands, result, extra, message", [
    ("lapack_sfoo_ffi", ["f32[2,2]"], "f32[2,2]", "", "unknown LAPACK routine 'foo'"),
    ("lapack_cpotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[])", "", "complex"),
    ("lapack_spotrf_ffi", ["f64[2,2]"], "(f64[2,2], s32[])", _config(uplo="L"),
     "operands must be f32"),
    ("lapack_spotrf_ffi", ["f32[2,3]"], "(f32[2,3], s32[])", _config(uplo="L"),
     "square matrices"),
    ("lapack_spotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[])", _config(uplo="X"),
     "uplo = one of 76 (L), 85 (U)"),
    ("lapack_spotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[])",
     ", operand_layout_constraints={f32[2,2]{1,0}}" + _config(uplo="L"),
     "LAPACK needs {0,1} (column-major matrices)"),
    ("lapack_sorgqr_ffi", ["f32[4,3]"], "f32[4,3]", "", "takes 2 operands, got 1"),
    ("lapack_spotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[3])", _config(uplo="L"),
     "the operands give"),
])
def test_malformed_lapack_calls_are_rejected_with_a_reason(target, operands, result, extra,
                                                           message):
    with pytest.raises(_REJECTED) as info:
        parse_module(_call(target, operands, result, extra))
    assert message in str(info.value)
    assert "%c" in str(info.value)


def test_an_unknown_target_is_rejected_before_compiling():
    module = parse_module(_call("my_kernel", ["f32[2]"], "f32[2]"))
    with pytest.raises(VerifierError, match="'my_kernel' is not one flowjit runs"):
        verify_compilable(module)


def test_a_malformed_layout_points_at_its_line_and_column():
    text = _call("lapack_spotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[])",
                 ", operand_layout_constraints={f32[2,2]{0,x}}")
    with pytest.raises(HloParseError) as info:
        parse_module(text)
    line = text.splitlines()[info.value.line - 1]
    assert line[info.value.column - 1:].startswith("operand_layout_constraints")


def test_layouts_naming_another_shape_are_rejected():
    text = _call("lapack_spotrf_ffi", ["f32[2,2]"], "(f32[2,2], s32[])",
                 ", operand_layout_constraints={f32[3,3]{0,1}}" + _config(uplo="L"))
    with pytest.raises(_REJECTED, match="names another shape"):
        parse_module(text)


@pytest.mark.parametrize("text, message", [
    ("ROOT %c = f32[2,3] cholesky(%a)", "square"),
    ("ROOT %c = s32[2,2] cholesky(%i)", "float"),
    ("ROOT %c = f32[2,3] triangular-solve(%s, %a), left_side=true",
     "a's size must equal b's rows"),
    ("ROOT %c = f32[3,2] triangular-solve(%s, %b), left_side=true, transpose_a=SIDEWAYS",
     "transpose_a must be one of"),
])
def test_malformed_cholesky_and_triangular_solve(text, message):
    module = ("HloModule m\n\nENTRY %main {\n  %a = f32[2,3] parameter(0)\n"
              "  %b = f32[3,2] parameter(1)\n  %i = s32[2,2] parameter(2)\n"
              "  %s = f32[3,3] parameter(3)\n  " + text + "\n}\n")
    with pytest.raises(_REJECTED, match=message):
        parse_module(module)


# --- reference semantics against numpy --------------------------------------------------------

def _spd(rng, *shape):
    a = rng.normal(size=shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


@pytest.mark.parametrize("lower", [True, False])
def test_cholesky_reference_is_numpys_factor(lower):
    rng = np.random.default_rng(0)
    a = _spd(rng, 2, 4, 4)
    text = ("HloModule m\n\nENTRY %main {\n  %a = f64[2,4,4] parameter(0)\n"
            f"  ROOT %c = f64[2,4,4] cholesky(%a), lower={'true' if lower else 'false'}\n}}\n")
    want = np.linalg.cholesky(a)
    got = evaluate(parse_module(text), [a])
    np.testing.assert_allclose(got, want if lower else np.swapaxes(want, -1, -2), atol=1e-12)


def test_cholesky_reference_of_an_indefinite_matrix_is_nan():
    text = ("HloModule m\n\nENTRY %main {\n  %a = f64[2,2] parameter(0)\n"
            "  ROOT %c = f64[2,2] cholesky(%a), lower=true\n}\n")
    assert np.isnan(evaluate(parse_module(text), [np.array([[1.0, 2.0], [2.0, 1.0]])])).all()


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose", ["NO_TRANSPOSE", "TRANSPOSE"])
@pytest.mark.parametrize("unit", [False, True])
def test_triangular_solve_reference_is_numpys_solve(left, lower, transpose, unit):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 3, 3)) + 4 * np.eye(3)
    b = rng.normal(size=(2, 3, 5) if left else (2, 5, 3))
    text = ("HloModule m\n\nENTRY %main {\n  %a = f64[2,3,3] parameter(0)\n"
            f"  %b = f64[{','.join(map(str, b.shape))}] parameter(1)\n"
            f"  ROOT %x = f64[{','.join(map(str, b.shape))}] triangular-solve(%a, %b), "
            f"left_side={str(left).lower()}, lower={str(lower).lower()}, "
            f"unit_diagonal={str(unit).lower()}, transpose_a={transpose}\n}}\n")
    t = np.tril(a) if lower else np.triu(a)
    if unit:
        t = t - np.diagonal(t, axis1=1, axis2=2)[..., None] * np.eye(3) + np.eye(3)
    if transpose == "TRANSPOSE":
        t = np.swapaxes(t, -1, -2)
    want = (np.linalg.solve(t, b) if left
            else np.swapaxes(np.linalg.solve(np.swapaxes(t, -1, -2), np.swapaxes(b, -1, -2)),
                             -1, -2))
    np.testing.assert_allclose(evaluate(parse_module(text), [a, b]), want, rtol=1e-10)
