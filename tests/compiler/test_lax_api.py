"""flowjit.lax against jax.lax: every public function that both have takes the same
parameters (names, order, kinds, defaults), and JAX's calling conventions (dimension
numbers, Python scalars, scalar bounds) give JAX's values."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.lax as flax

jax = pytest.importorskip("jax")
jlax = jax.lax

pytestmark = pytest.mark.usefixtures("no_x64")

# JAX-only keyword arguments about placement; flowjit has one device per jit, no shardings.
PLACEMENT_KEYWORDS = {"out_sharding", "sharding"}
# Functions whose signature differs from jax.lax's on purpose, and why.
EXCEPTIONS = {
    "reduce": "computation is a monoid (lax.add, lax.max, ... or an opcode name), not any "
              "traced function",
}


def _public_functions():
    names = []
    for name in sorted(dir(flax)):
        value = getattr(flax, name)
        if name.startswith("_") or not callable(value) or isinstance(value, type):
            continue
        if getattr(value, "__module__", None) not in ("flowjit.lax", "flowjit.lax_more"):
            continue
        names.append(name)
    return names


def _parameters(fn):
    # A bare object() default is a "not given" sentinel: equal to any other.
    return [(p.name, p.kind, "<sentinel>" if type(p.default) is object else p.default)
            for p in inspect.signature(fn).parameters.values()
            if p.name not in PLACEMENT_KEYWORDS]


def test_every_shared_function_is_checked():
    shared = [n for n in _public_functions() if callable(getattr(jlax, n, None))]
    # A guard against an empty comparison: most of flowjit.lax is jax.lax.
    assert len(shared) >= 60 and {"dot_general", "iota", "clamp", "pad", "scatter"} <= set(
        shared)


@pytest.mark.parametrize("name", [n for n in _public_functions()
                                  if callable(getattr(jlax, n, None))])
def test_signature_is_jaxs(name):
    if name in EXCEPTIONS:
        pytest.skip(EXCEPTIONS[name])
    ours, theirs = _parameters(getattr(flax, name)), _parameters(getattr(jlax, name))
    # Defaults compare by value (JAX's enums compare equal to ours by their value).
    normalize = [(n, k, getattr(d, "value", d)) for n, k, d in theirs]
    assert [(n, k, getattr(d, "value", d)) for n, k, d in ours] == normalize


def _both(fn, *args, **kwargs):
    """fn(flowjit.lax) eagerly and under jit, and fn(jax.lax)."""
    eager = fn(flax, *args, **kwargs)
    jitted = flowjit.jit(lambda *a: fn(flax, *a, **kwargs))(*args)
    theirs = fn(jlax, *args, **kwargs)
    return np.asarray(eager), np.asarray(jitted), np.asarray(theirs)


def _check(fn, *args, **kwargs):
    for got in _both(fn, *args, **kwargs)[:2]:
        expected = _both(fn, *args, **kwargs)[2]
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_dot_general_takes_jaxs_dimension_numbers():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    _check(lambda L, a, b: L.dot_general(a, b, (((2,), (0,)), ((), ()))), a, b)
    c = rng.standard_normal((2, 4, 5)).astype(np.float32)
    _check(lambda L, a, c: L.dot_general(a, c, (((2,), (1,)), ((0,), (0,)))), a, c)
    _check(lambda L, a, c: L.dot_general(a, c, (((2,), (1,)), ((0,), (0,))),
                                         preferred_element_type=np.float32), a, c)


def test_iota_and_broadcasted_iota():
    for dtype in (np.int32, np.float32, np.uint8):
        np.testing.assert_array_equal(flax.iota(dtype, 5), jlax.iota(dtype, 5))
        assert flax.iota(dtype, 5).dtype == jlax.iota(dtype, 5).dtype
    np.testing.assert_array_equal(flax.broadcasted_iota(np.int32, (2, 3), 1),
                                  jlax.broadcasted_iota(np.int32, (2, 3), 1))


def test_clamp_with_python_scalar_bounds():
    x = np.linspace(-1, 1, 9).astype(np.float32)
    _check(lambda L, x: L.clamp(-0.5, x, 0.5), x)
    _check(lambda L, x: L.clamp(np.float32(-0.5), x, np.float32(0.5)), x)


def test_pad_with_a_python_scalar_and_negative_low_high():
    v = np.arange(1.0, 4.0, dtype=np.float32)
    _check(lambda L, v: L.pad(v, 0.0, ((1, 2, 1),)), v)
    _check(lambda L, v: L.pad(v, -1.0, ((-1, 1, 0),)), v)
    m = np.arange(6, dtype=np.int32).reshape(2, 3)
    _check(lambda L, m: L.pad(m, 7, ((0, 1, 0), (2, 0, 1))), m)


def test_python_scalars_are_weakly_typed_in_elementwise_ops():
    x = np.arange(4, dtype=np.float32)
    for op in ("add", "mul", "sub", "max", "min", "pow"):
        _check(lambda L, x: getattr(L, op)(x, 2.0), x)
        _check(lambda L, x: getattr(L, op)(2.0, x), x)
    _check(lambda L, x: L.select(x > 1, x, L.mul(x, 0.0)), x)
    _check(lambda L, x: L.reduce(x, 0.0, L.add, (0,)), x)
    _check(lambda L, x: L.reduce(x, -np.inf, L.max, (0,)), x)


def test_full_round_and_comparisons():
    _check(lambda L: L.full((2, 3), 1.5))
    _check(lambda L: L.full((2,), 3, np.int8))
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], np.float32)
    _check(lambda L, x: L.round(x), x)
    _check(lambda L, x: L.round(x, L.RoundingMethod.TO_NEAREST_EVEN), x)
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        _check(lambda L, x: getattr(L, op)(x, 0.5), x)


def test_dynamic_slice_counts_negative_starts_from_the_end():
    x = np.arange(10, dtype=np.float32)
    _check(lambda L, x: L.dynamic_slice(x, (-3,), (2,)), x)
    _check(lambda L, x: L.dynamic_update_slice(x, np.ones(2, np.float32), (-3,)), x)
    _check(lambda L, x: L.dynamic_slice(x, (8,), (4,)), x)       # clamped to fit


def test_gather_and_scatter_modes():
    x = np.arange(5, dtype=np.float32) * 10
    idx = np.array([[7], [-1], [2], [4]], np.int32)
    gnums = (jlax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(0,),
                                         start_index_map=(0,)),
             flax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(0,),
                                         start_index_map=(0,)))
    snums = (jlax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                          scatter_dims_to_operand_dims=(0,)),
             flax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                          scatter_dims_to_operand_dims=(0,)))
    updates = np.array([1, 2, 3, 4], np.float32)
    for mode in (None, "clip", "fill", "promise_in_bounds"):
        if mode != "promise_in_bounds":   # out-of-bounds gathers are unspecified there
            ours = flax.gather(x, idx, gnums[1], (1,), mode=mode)
            theirs = jlax.gather(x, idx, gnums[0], (1,), mode=mode)
            np.testing.assert_array_equal(ours, theirs, err_msg=f"gather {mode}")
        for name in ("scatter", "scatter_add", "scatter_mul", "scatter_min", "scatter_max"):
            ours = getattr(flax, name)(x, idx, updates, snums[1], mode=mode)
            theirs = getattr(jlax, name)(x, idx, updates, snums[0], mode=mode)
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{name} {mode}")
