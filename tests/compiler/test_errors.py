"""User mistakes give specific errors that name the shapes and the user's own line."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import ShapeError, TracerArrayConversionError, TracerBoolConversionError


def _line_of(marker: str) -> str:
    """`this_file:N` where the line holding `marker` is (the error must point there)."""
    source, start = inspect.getsourcelines(inspect.getmodule(_line_of))
    for offset, line in enumerate(source):
        if marker in line and "_line_of" not in line:
            return f"{__file__}:{start + offset}" if start else f"{__file__}:{offset + 1}"
    raise AssertionError(marker)


def test_matmul_shape_mismatch_names_shapes_and_line():
    def f(a, b):
        return a @ b  # MARK-matmul
    with pytest.raises(ShapeError) as info:
        flowjit.jit(f)(np.ones((3, 4), np.float32), np.ones((5, 6), np.float32))
    message = str(info.value)
    assert "(3, 4)" in message and "(5, 6)" in message
    assert _line_of("MARK-matmul") in message


def test_broadcast_mismatch_names_shapes_and_line():
    def f(a, b):
        return a + b  # MARK-broadcast
    with pytest.raises(ShapeError) as info:
        flowjit.jit(f)(np.ones((3, 4)), np.ones((2, 4)))
    assert "(3, 4)" in str(info.value) and "(2, 4)" in str(info.value)
    assert _line_of("MARK-broadcast") in str(info.value)


def test_eager_shape_errors_point_at_the_user_line():
    with pytest.raises(ShapeError) as info:
        fnp.add(np.ones(3), np.ones(4))  # MARK-eager
    assert _line_of("MARK-eager") in str(info.value)


def test_bad_axis():
    with pytest.raises(ShapeError, match="axis 2 is out of bounds for an array of dimension 2"):
        flowjit.jit(lambda x: x.sum(axis=2))(np.ones((2, 3)))


def test_python_if_on_traced_value_suggests_cond():
    def f(x):
        if x.sum() > 0:  # MARK-if
            return x
        return -x
    with pytest.raises(TracerBoolConversionError) as info:
        flowjit.jit(f)(np.ones(3))
    assert "flowjit.cond" in str(info.value)
    assert _line_of("MARK-if") in str(info.value)


def test_numpy_on_traced_value():
    with pytest.raises(TracerArrayConversionError, match="flowjit.numpy"):
        flowjit.jit(lambda x: np.sin(np.asarray(x)))(np.ones(3))


def test_unsupported_dtype_is_named():
    with pytest.raises(TypeError, match="complex128"):
        flowjit.jit(lambda x: x)(np.ones(3, np.complex128))


def test_non_array_argument_is_named():
    with pytest.raises(TypeError, match="'name'.*static_argnums|name.*str"):
        flowjit.jit(lambda x, name: x)(np.ones(3), "hello")


def test_eager_out_of_range_index():
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 3"):
        fnp.asarray(np.arange(3.0))[5]
    with pytest.raises(IndexError, match="index 7 is out of bounds"):
        fnp.take(np.arange(3.0), np.array([0, 7]))


def test_reshape_size_mismatch():
    with pytest.raises(ShapeError, match=r"cannot reshape array of size 6"):
        flowjit.jit(lambda x: x.reshape(4, 2))(np.ones((2, 3)))
