"""JAX's dtype rules: 32-bit defaults, weakly typed Python scalars, 64-bit inputs
canonicalized to 32-bit unless flowjit.config's enable_x64 is on; the creation functions
take jax.numpy's parameters and give its dtypes and values, with x64 off and on."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy

CREATION = ["zeros", "ones", "full", "empty", "eye", "identity", "arange", "linspace",
            "zeros_like", "ones_like", "full_like", "asarray", "array"]
# Keyword-only parameters of jax.numpy about placement (flowjit places by jit(device=)).
PLACEMENT = {"device", "out_sharding"}


def _parameters(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in PLACEMENT and p.kind != p.VAR_POSITIONAL]


@pytest.mark.parametrize("name", CREATION)
def test_creation_signature_is_jaxs(name):
    assert _parameters(getattr(fnp, name)) == _parameters(getattr(jnp, name))


CALLS = [("zeros", (3,), {}), ("zeros", ((2, 2),), {"dtype": int}), ("ones", (3,), {}),
         ("ones", (2,), {"dtype": np.float64}), ("full", (3, 1.5), {}), ("full", (3, 2), {}),
         ("full", (2, True), {}), ("full", (2, np.float16(1)), {}), ("empty", (2,), {}),
         ("eye", (3,), {}), ("eye", (3, 4, 1), {}), ("eye", (2,), {"dtype": int}),
         ("identity", (2,), {}), ("arange", (5,), {}), ("arange", (5.0,), {}),
         ("arange", (2, 9), {}), ("arange", (0, 1, 0.1), {}), ("arange", (-2.5, 3.1, 0.3), {}),
         ("arange", (np.int64(4),), {}), ("arange", (3,), {"dtype": np.int8}),
         ("linspace", (0, 1, 7), {}), ("linspace", (-3.3, 17.1, 50), {}),
         ("linspace", (0, 10, 5), {"dtype": int}), ("linspace", (0, 1, 5), {"endpoint": False}),
         ("linspace", (2, 3, 1), {}), ("linspace", (np.zeros(2), np.ones(2), 4), {"axis": 1}),
         ("zeros_like", (np.zeros(3),), {}), ("ones_like", (np.zeros(3, np.int64),), {}),
         ("full_like", (np.zeros(2, np.float32), 7), {}), ("asarray", (np.zeros(3),), {}),
         ("asarray", ([1, 2],), {}), ("asarray", (1.5,), {}), ("array", ([1.0, 2.0],), {}),
         ("array", (np.arange(3, dtype=np.uint64),), {})]


def _check_creation(x64: bool):
    for name, args, kwargs in CALLS:
        ours = np.asarray(getattr(fnp, name)(*args, **kwargs))
        theirs = np.asarray(getattr(jnp, name)(*args, **kwargs))
        what = f"{name}{args} {kwargs} x64={x64}"
        assert ours.dtype == theirs.dtype, what
        assert ours.shape == theirs.shape, what
        # linspace: XLA may contract start * (1 - t) + stop * t into an FMA: an ulp of the
        # largest value apart (also near 0, where the two products cancel).
        ulp = np.spacing(np.abs(theirs).max()) if theirs.size and theirs.dtype.kind == "f" \
            else 0
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2 * ulp, err_msg=what)


def test_creation_dtypes_and_values_are_jaxs(no_x64):
    with jax.enable_x64(False):
        _check_creation(False)


def test_creation_dtypes_and_values_with_x64_are_jaxs(x64):
    with jax.enable_x64(True):
        _check_creation(True)


def test_python_scalars_and_defaults_do_not_widen_float32(no_x64):
    x = np.ones(3, np.float32)
    assert (x + fnp.zeros(3)).dtype == np.float32
    assert fnp.add(x, fnp.arange(3)).dtype == np.float32
    assert fnp.multiply(x, 2.5).dtype == np.float32
    assert flowjit.jit(lambda s: fnp.ones(3) * s)(2.5).dtype == np.float32
    assert flowjit.jit(lambda s, x: x * s)(2.5, x).dtype == np.float32
    assert flowjit.jit(lambda x: x + 1.0)(x).dtype == np.float32
    assert fnp.exp(2.0).dtype == np.float32 and fnp.add(1, 2).dtype == np.int32
    text = flowjit.jit(lambda x: x * 2.0 + fnp.zeros(3)).lower(x).as_text()
    assert "f64" not in text


def test_64_bit_inputs_become_32_bit_without_x64(no_x64):
    cases = [(np.float64, np.float32), (np.int64, np.int32), (np.uint64, np.uint32),
             (np.float16, np.float16), (np.int8, np.int8)]
    for given, held in cases:
        x = np.arange(4).astype(given)
        assert fnp.asarray(x).dtype == held
        assert fnp.negative(x).dtype == np.dtype(held)
        out = flowjit.jit(lambda x: x * 2)(x)
        assert out.dtype == held, given
        np.testing.assert_array_equal(out, (x * 2).astype(held))
    # The oracle in float64, the comparison at float32's precision.
    x = np.linspace(-2, 2, 11)
    np.testing.assert_allclose(fnp.exp(x), np.exp(x), rtol=2e-7)
    assert jnp.exp(x).dtype == fnp.exp(x).dtype


def test_reductions_take_jaxs_dtypes(no_x64):
    for x in (np.arange(6, dtype=np.int8), np.arange(6, dtype=np.uint8), np.arange(6),
              np.arange(6.0), np.array([True, False])):
        # (cumsum is left out: JAX keeps int8 there, flowjit follows numpy's sum rule.)
        for name in ("sum", "prod", "mean", "argmax", "argmin", "max"):
            if name == "max" and x.dtype == np.bool_:
                continue   # max of booleans is not supported yet (reported separately)
            with jax.enable_x64(False):
                expected = getattr(jnp, name)(x).dtype
            assert getattr(fnp, name)(x).dtype == expected, (name, x.dtype)
            assert flowjit.jit(getattr(fnp, name))(x).dtype == expected, (name, x.dtype)


def test_argmax_is_int64_with_x64(x64):
    assert fnp.argmax(np.arange(3.0)).dtype == np.int64
    assert fnp.zeros(2).dtype == np.float64 and fnp.arange(3).dtype == np.int64
    assert flowjit.jit(lambda x: x * 2.0)(np.ones(2)).dtype == np.float64


def test_config_reads_updates_and_names_unknown_options(no_x64):
    assert flowjit.config.enable_x64 is False and flowjit.config.read("enable_x64") is False
    flowjit.config.update("jax_enable_x64", True)    # jax.config's spelling works too
    try:
        assert flowjit.config.enable_x64 is True
        assert fnp.ones(1).dtype == np.float64
    finally:
        flowjit.config.update("enable_x64", False)
    assert fnp.ones(1).dtype == np.float32
    with pytest.raises(AttributeError, match="enable_x64"):
        flowjit.config.update("enable_x46", True)


def test_environment_variable_enables_x64():
    code = ("import flowjit, flowjit.numpy as fnp; "
            "print(flowjit.config.enable_x64, fnp.zeros(1).dtype, fnp.arange(2).dtype)")
    env = dict(os.environ, FLOWJIT_ENABLE_X64="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "float64", "int64"]
    env["FLOWJIT_ENABLE_X64"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "float32", "int32"]
