"""lax.population_count and lax.clz (XLA's popcnt, clz) on every integer type, eagerly and
compiled, against Python's own bit counts and against jax.lax where JAX is installed."""
import numpy as np
import pytest

import flowjit
import flowjit.lax as lax

# float64 / int64 against 64-bit oracles at 64-bit tolerances: 64-bit types on, as JAX needs.
pytestmark = pytest.mark.usefixtures("x64")

INT_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def values(dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(7)
    edges = [0, 1, 2, 3, info.max, info.min, info.max // 2 + 1]
    drawn = rng.integers(info.min, info.max, size=40, dtype=dtype, endpoint=True)
    return np.concatenate([np.array(edges, dtype=dtype), drawn])


def by_python(x: np.ndarray, count) -> np.ndarray:
    bits = x.dtype.itemsize * 8
    unsigned = [int(v) % (1 << bits) for v in x.tolist()]    # two's-complement bits
    return np.array([count(u, bits) for u in unsigned], dtype=x.dtype)


CASES = {
    "population_count": (lax.population_count, lambda u, bits: u.bit_count()),
    "clz": (lax.clz, lambda u, bits: bits - u.bit_length()),
}


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_bit_counts_match_python(name, dtype, opt_level):
    ours, count = CASES[name]
    x = values(dtype)
    want = by_python(x, count)
    eager = ours(x)
    compiled = flowjit.jit(ours, opt_level=opt_level)(x)
    for got in (eager, compiled):
        assert np.asarray(got).dtype == x.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_bit_counts_match_jax(name, dtype):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x = values(dtype)
    ours = np.asarray(flowjit.jit(CASES[name][0])(x))
    np.testing.assert_array_equal(ours, np.asarray(getattr(jax.lax, name)(x)))


def test_bit_counts_are_not_differentiable_and_refuse_floats():
    with pytest.raises(flowjit.ShapeError, match="popcnt"):
        lax.population_count(np.float32(1.0))
