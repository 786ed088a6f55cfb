"""The inline polynomial exp / log / tanh / logistic / erf / sin / cos, bounded in ulp
against numpy and scipy, for each CPU feature set (the AVX-512 and the AVX2 code)."""
import numpy as np
import pytest
import scipy.special

import flowjit
import flowjit.lax as lax
import flowjit.numpy as fnp
import flowjit.nn as nn

# float64 / int64 against 64-bit oracles at 64-bit tolerances: 64-bit types on, as JAX needs.
pytestmark = pytest.mark.usefixtures("x64")

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e-30]


def _ulp_distance(got: np.ndarray, want: np.ndarray) -> int:
    """Largest distance in units in the last place; NaN must meet NaN."""
    assert got.dtype == want.dtype
    both_nan = np.isnan(got) & np.isnan(want)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    int_type = np.int32 if got.dtype == np.float32 else np.int64
    # Map the sign-magnitude bit patterns onto a monotonic integer line.
    def line(a):
        bits = a.view(int_type).astype(np.int64)
        return np.where(bits < 0, np.iinfo(int_type).min - bits, bits)
    distance = np.abs(line(got) - line(want))
    distance[both_nan] = 0
    return int(distance.max())


def _inputs(dtype, lo, hi):
    grid = np.linspace(lo, hi, 200_001)
    return np.concatenate([grid, SPECIALS]).astype(dtype)


def _logistic_oracle(x):
    """1 / (1 + e**-x) without overflow (scipy's expit flushes x < -709 to 0)."""
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1.0) / (1.0 + e)


def _sin_cos_inputs(dtype, lo, hi):
    """A dense grid, and large arguments up to the largest float, where the reduction by
    pi/2 is hard."""
    large = np.geomspace(1e4, 3e38, 40_001)
    return np.concatenate([_inputs(dtype, lo, hi), large, -large]).astype(dtype)


@pytest.mark.parametrize("cpu_features", ["host", "avx2"])
@pytest.mark.parametrize("name, ours, theirs, lo, hi, dtype, max_ulp", [
    ("exp", fnp.exp, np.exp, -110, 90, np.float32, 3),
    ("exp", fnp.exp, np.exp, -750, 710, np.float64, 3),
    ("log", fnp.log, np.log, 0, 1e4, np.float32, 2),
    ("log", fnp.log, np.log, -1, 1e-30, np.float32, 2),
    ("tanh", fnp.tanh, np.tanh, -20, 20, np.float32, 3),
    ("logistic", nn.sigmoid, lambda x: 1 / (1 + np.exp(-x.astype(np.float64))), -90, 90,
     np.float32, 4),
    ("logistic", nn.sigmoid, _logistic_oracle, -750, 750, np.float64, 4),
    # XLA's rational erf, as JAX has it: JAX's own erf is 5 ulp off at worst too.
    ("erf", lax.erf, scipy.special.erf, -6, 6, np.float32, 5),
    ("sin", fnp.sin, np.sin, -100, 100, np.float32, 1),
    ("cos", fnp.cos, np.cos, -100, 100, np.float32, 1),
])
def test_inline_math_is_accurate(name, ours, theirs, lo, hi, dtype, max_ulp, cpu_features):
    make_inputs = _sin_cos_inputs if name in ("sin", "cos") else _inputs
    x = make_inputs(dtype, lo, hi)
    with np.errstate(all="ignore"):
        want = np.asarray(theirs(x.astype(np.float64))).astype(dtype)
    with flowjit.config.override("cpu_features", cpu_features):
        got = np.asarray(flowjit.jit(ours)(x))
    assert _ulp_distance(got, want) <= max_ulp, name


def _instructions(assembly: str) -> list[str]:
    return [line.split()[0] for line in assembly.splitlines()
            if line.startswith("\t") and not line.startswith("\t.")]


@pytest.mark.parametrize("cpu_features, vector", [("host", None), ("avx2", "ymm")])
@pytest.mark.parametrize("name, fn, dtype", [
    ("exp", fnp.exp, np.float32), ("exp", fnp.exp, np.float64),
    ("log", fnp.log, np.float32), ("tanh", fnp.tanh, np.float32),
    ("logistic", nn.sigmoid, np.float32), ("logistic", nn.sigmoid, np.float64),
    ("erf", lax.erf, np.float32), ("sin", fnp.sin, np.float32), ("cos", fnp.cos, np.float32),
])
def test_inline_math_vectorizes_with_no_calls(name, fn, dtype, cpu_features, vector):
    """A libm call (or an LLVM intrinsic it scalarizes into one) would keep the loop scalar."""
    x = np.linspace(0.5, 2.0, 4096).astype(dtype)
    with flowjit.config.override("cpu_features", cpu_features):
        assembly = flowjit.jit(fn).lower(x).compile().executable.assembly
    instructions = _instructions(assembly)
    assert not [i for i in instructions if i.startswith("call")], name
    # sin and cos of f32 compute in double lanes.
    suffix = "pd" if dtype == np.float64 or name in ("sin", "cos") else "ps"
    packed = [i for i in instructions if i.startswith(("vfmadd", "vfnmadd", "vmul", "vadd"))
              and i.endswith(suffix)]
    assert packed, f"{name}: no packed {suffix} arithmetic"
    if vector:
        assert vector in assembly and "zmm" not in assembly
