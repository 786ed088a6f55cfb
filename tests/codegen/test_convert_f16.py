"""f64 -> f16 conversion is correctly rounded (one rounding, as numpy does), and needs no
libgcc builtin: x86 has no such instruction, and LLVM's __truncdfhf2 call crashed the JIT."""
import numpy as np

from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from flowjit.runtime.executable import Executable

CONVERT = """HloModule m
ENTRY e {
  x = f64[%d] parameter(0)
  ROOT h = f16[%d] convert(x)
}"""


def _convert(x: np.ndarray) -> np.ndarray:
    module, _ = optimize(parse_module(CONVERT % (x.size, x.size)), opt_level=2)
    (h,) = Executable(module)(x)
    return h


def test_values_just_past_a_midpoint_round_away_from_it():
    # 1 + 2**-11 is halfway between two halves; a hair above it must round up. Rounding
    # to f32 first would land on the midpoint and then round to even (down): wrong.
    halves = np.arange(0, 0x7C00, 7, dtype=np.uint16).view(np.float16).astype(np.float64)
    ulp = np.spacing(halves.astype(np.float16)).astype(np.float64)
    midpoints = halves + ulp / 2
    x = np.concatenate([midpoints, midpoints + 2.0 ** -40 * np.maximum(halves, 1e-3),
                        midpoints - 2.0 ** -40 * np.maximum(halves, 1e-3), -midpoints])
    np.testing.assert_array_equal(_convert(x).view(np.uint16),
                                  x.astype(np.float16).view(np.uint16))


def test_random_doubles_and_special_values_match_numpy_bit_for_bit():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4000) * 10.0 ** rng.integers(-9, 6, 4000),
                        [0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, 1e300,
                         -1e300, 5.96e-8, 2.98e-8, 2.99e-8, 1e-300, np.nextafter(0, 1)]])
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    np.testing.assert_array_equal(_convert(x).view(np.uint16), want.view(np.uint16))
    assert np.isnan(_convert(np.array([np.nan]))[0])
