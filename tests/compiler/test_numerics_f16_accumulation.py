"""f16/bf16 sums, products and dots accumulate in f32 and round once, as XLA (and JAX) do:
eagerly, under jit at O0 and O2, and in the GPU kernels (run on the emulated device)."""
import ml_dtypes
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.ir.parser import parse_module

# 64-bit dtypes are tested as such (JAX too runs them with x64 enabled).
pytestmark = pytest.mark.usefixtures("x64")

BF16 = np.dtype(ml_dtypes.bfloat16)
HALF_TYPES = [np.dtype(np.float16), BF16]

# Each program, and its value on float64 inputs (the oracle, rounded to the dtype once).
PROGRAMS = {
    "dot": (lambda x: fnp.dot(x, x), lambda x: np.dot(x, x)),
    "sum": (lambda x: fnp.sum(x), lambda x: np.sum(x)),
    "sum_rows": (lambda x: fnp.sum(x.reshape(4, -1), axis=1),
                 lambda x: np.sum(x.reshape(4, -1), axis=1)),
    "sum_columns": (lambda x: fnp.sum(x.reshape(-1, 4), axis=0),
                    lambda x: np.sum(x.reshape(-1, 4), axis=0)),
    "mean": (lambda x: fnp.mean(x), lambda x: np.mean(x)),
    "var": (lambda x: fnp.var(x), lambda x: np.var(x)),
    "std": (lambda x: fnp.std(x), lambda x: np.std(x)),
    "cumsum_last": (lambda x: fnp.cumsum(x[:3000])[-1:], lambda x: np.cumsum(x[:3000])[-1:]),
    "batched_matmul": (lambda x: fnp.matmul(x.reshape(2, 4, -1), x.reshape(2, -1, 4)),
                       lambda x: np.matmul(x.reshape(2, 4, -1), x.reshape(2, -1, 4))),
    "prod": (lambda x: fnp.prod(x[:64].reshape(8, 8), axis=1),
             lambda x: np.prod(x[:64].reshape(8, 8), axis=1)),
}


def _runs(fn, opt_level):
    return {"eager": fn, "jit": flowjit.jit(fn, opt_level=opt_level)}


def _ulps(got, want, dtype) -> float:
    """|got - want| in units of the dtype's spacing at want."""
    want = np.asarray(want, np.float64)
    spacing = np.abs(np.asarray(want.astype(dtype).astype(np.float64)))
    eps = float(ml_dtypes.finfo(dtype).eps)
    tiny = float(ml_dtypes.finfo(dtype).smallest_normal)
    unit = np.maximum(spacing * eps, tiny)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want) / unit))


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=["f16", "bf16"])
def test_sum_and_dot_of_ones_count_past_2048(dtype, opt_level):
    """JAX: dot(ones(3000), ones(3000)) and sum(ones(5000)) are 3000 and 5000 in f16; in
    bf16 they round to 3008 and 4992 (8 bits of mantissa), not stop at 256."""
    want = {np.dtype(np.float16): (3000, 5000), BF16: (3008, 4992)}[dtype]
    ones3, ones5 = np.ones(3000, dtype), np.ones(5000, dtype)
    for how, dot in _runs(lambda x: fnp.dot(x, x), opt_level).items():
        assert float(dot(ones3)) == want[0], how
    for how, total in _runs(lambda x: fnp.sum(x), opt_level).items():
        assert float(total(ones5)) == want[1], how
    for how, column_sums in _runs(lambda x: fnp.sum(x, axis=0), opt_level).items():
        np.testing.assert_array_equal(np.asarray(column_sums(np.ones((5000, 3), dtype)),
                                                 np.float64), [want[1]] * 3, err_msg=how)


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=["f16", "bf16"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_half_precision_programs_round_once(name, dtype, opt_level):
    fn, oracle = PROGRAMS[name]
    x = np.random.default_rng(0).uniform(0.5, 1.5, 8000).astype(dtype)
    want = oracle(x.astype(np.float64))
    for how, run in _runs(fn, opt_level).items():
        got = np.asarray(run(x))
        assert got.dtype == dtype, (how, got.dtype)
        # f32 accumulation of 8000 terms is far inside one ulp of the dtype; the oracle's own
        # rounding to the dtype can land on the other neighbour: at most 1 ulp.
        assert _ulps(got, want, dtype) <= 1.0, (how, got, want)


def test_half_precision_matches_jax():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x = np.random.default_rng(1).uniform(0.5, 1.5, 8000).astype(np.float16)
    pairs = [(fnp.sum, jnp.sum), (fnp.mean, jnp.mean), (fnp.var, jnp.var),
             (lambda v: fnp.dot(v, v), lambda v: jnp.dot(v, v))]
    for ours, theirs in pairs:
        want = np.asarray(jax.jit(theirs)(x), np.float64)
        got = np.asarray(flowjit.jit(ours)(x), np.float64)
        assert _ulps(got, want, np.float16) <= 1.0, (ours, got, want)


_HLO_SUM_F16 = """HloModule sum_f16
%add_f16 {
  %a = f16[] parameter(0)
  %b = f16[] parameter(1)
  ROOT %s = f16[] add(%a, %b)
}
ENTRY %main {
  %x = f16[3000,2] parameter(0)
  %zero = f16[] constant(0)
  ROOT %r = f16[2] reduce(%x, %zero), dimensions={0}, to_apply=%add_f16
}
"""

# Two contracting dims: not the tiled GPU kernel but the loop kernel's elemental dot.
_HLO_DOT_F16 = """HloModule dot_f16
ENTRY %main {
  %x = f16[2,3,1000] parameter(0)
  %y = f16[3,1000,2] parameter(1)
  ROOT %d = f16[2,2] dot(%x, %y), lhs_contracting_dims={1,2}, rhs_contracting_dims={0,1}
}
"""


def test_hlo_f16_reduce_and_dot_on_the_reference_and_emulated_gpu():
    helpers = pytest.importorskip("tests.cuda.helpers")
    reduce_module = parse_module(_HLO_SUM_F16)
    x = np.ones((3000, 2), np.float16)
    x[0] = 2048   # 2048 + 1 is 2048 in f16: a thread folding its share in f16 loses the ones
    want = np.full(2, 2048 + 2999, np.float64).astype(np.float16)   # 5048
    for got in (helpers.reference(reduce_module, [x])[0],
                helpers.run_emulated(reduce_module, [x], max_blocks=1)[0][0]):
        np.testing.assert_array_equal(got, want)
    dot_module = parse_module(_HLO_DOT_F16)
    a, b = np.ones((2, 3, 1000), np.float16), np.ones((3, 1000, 2), np.float16)
    for got in (helpers.reference(dot_module, [a, b])[0],
                helpers.run_emulated(dot_module, [a, b], max_blocks=1)[0][0]):
        np.testing.assert_array_equal(got, np.full((2, 2), 3000, np.float16))
