"""Errors a user can make with loops and branches: clear, naming both types and their line."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import TracerBoolConversionError, cond, fori_loop, scan, switch, while_loop

HERE = __file__


def test_python_if_on_a_traced_value_suggests_cond():
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(TracerBoolConversionError, match=r"flowjit\.cond") as info:
        flowjit.jit(f)(1.0)
    assert f"{HERE}:" in str(info.value)


def test_python_while_on_a_traced_value_suggests_while_loop():
    def f(x):
        while x < 10:
            x = x * 2
        return x
    with pytest.raises(TracerBoolConversionError, match=r"flowjit\.while_loop"):
        flowjit.jit(f)(1.0)


def test_body_changing_the_carry_type_names_both_types_and_the_line(x64):
    def f(x):
        return fori_loop(0, 3, lambda i, v: v * np.float64(2), x)  # f32 * f64 -> f64
    with pytest.raises(TypeError, match=r"takes \(s32\[\], f32\[2\]\) but returns "
                                        r"\(s32\[\], f64\[2\]\)") as info:
        flowjit.jit(f)(np.ones(2, np.float32))
    assert f"computed at {HERE}:" in str(info.value)


def test_body_changing_the_carry_shape():
    with pytest.raises(TypeError, match=r"f32\[2,2\], expected f32\[2\]"):
        flowjit.jit(lambda x: while_loop(lambda v: v.sum() < 5, lambda v: fnp.outer(v, v),
                                          x))(np.ones(2, np.float32))


def test_body_changing_the_carry_structure():
    with pytest.raises(TypeError, match="structure"):
        flowjit.jit(lambda x: while_loop(lambda s: s[0] < 5, lambda s: [s[0] + 1, s[1]],
                                          (x, x)))(np.float32(1))


def test_cond_fun_must_return_a_scalar_bool():
    with pytest.raises(TypeError, match=r"scalar bool, got \(pred\[3\]\)"):
        flowjit.jit(lambda x: while_loop(lambda v: v < 5, lambda v: v + 1, x))(np.ones(3))


def test_branch_types_must_match(x64):
    with pytest.raises(TypeError, match=r"true_fun returns \(f32\[\]\).*false_fun returns "
                                        r"\(f64\[\]\)") as info:
        flowjit.jit(lambda p, x: cond(p, lambda: x, lambda: x.astype(np.float64)))(
            np.bool_(True), np.float32(1))
    assert f"{HERE}:" in str(info.value)
    with pytest.raises(TypeError, match=r"branch 0 returns \(f32\[\]\) but branch 2 returns "
                                        r"\(f32\[2\]\)"):
        flowjit.jit(lambda i, x: switch(i, [lambda: x, lambda: x, lambda: fnp.stack([x, x])]))(
            np.int32(0), np.float32(1))
    with pytest.raises(TypeError, match="same structure"):
        flowjit.jit(lambda p, x: cond(p, lambda: (x, x), lambda: x))(np.bool_(True), 1.0)


def test_predicates_and_indices_must_be_scalars():
    with pytest.raises(TypeError, match="cond's pred must be a scalar"):
        cond(np.array([True, False]), lambda: 1, lambda: 2)
    with pytest.raises(TypeError, match="switch's index must be an integer"):
        flowjit.jit(lambda i: switch(i, [lambda: 1.0, lambda: 2.0]))(np.float32(1))


def test_scan_f_must_return_a_pair():
    with pytest.raises(TypeError, match=r"pair \(carry, y\)"):
        flowjit.jit(lambda xs: scan(lambda c, x: c + x, 0.0, xs))(np.ones(3))


def test_reverse_mode_through_a_while_loop_is_a_clear_error():
    with pytest.raises(TypeError, match="while"):
        flowjit.grad(lambda x: while_loop(lambda v: v < 10, lambda v: v * 2, x))(1.0)
