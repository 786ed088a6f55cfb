"""bfloat16 and float16 inputs stay bfloat16 / float16 through every unary function and
reduction of flowjit.numpy (computed in float32 inside where that is more accurate), with
JAX's result dtypes and values, eagerly and under jit."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy
ml_dtypes = pytest.importorskip("ml_dtypes")

pytestmark = pytest.mark.usefixtures("no_x64")

LOW = {"bfloat16": np.dtype(ml_dtypes.bfloat16), "float16": np.dtype(np.float16)}
# name: input domain
UNARY = {
    "abs": "any", "absolute": "any", "negative": "any", "positive": "any", "sign": "any",
    "square": "any", "reciprocal": "nonzero", "exp": "any", "exp2": "any", "expm1": "any",
    "log": "positive", "log1p": "positive", "log2": "positive", "log10": "positive",
    "sqrt": "positive", "cbrt": "any", "tanh": "any", "sin": "any", "cos": "any",
    "tan": "small", "sinh": "any", "cosh": "any", "floor": "any", "ceil": "any",
    "rint": "any", "round": "any", "around": "any", "isfinite": "any", "isinf": "any",
    "isnan": "any", "nan_to_num": "any",
}
REDUCTIONS = ("sum", "mean", "var", "std", "max", "min", "prod", "argmax", "argmin", "cumsum")


def test_every_unary_function_is_covered():
    import inspect
    import flowjit.numpy.elementwise as elementwise
    names = {n for n, f in vars(elementwise).items() if callable(f) and hasattr(fnp, n)
             and not n.startswith("_") and getattr(f, "__module__", "") == elementwise.__name__}
    unary = {n for n in names if len([p for p in inspect.signature(getattr(fnp, n)).parameters
                                      .values() if p.default is p.empty]) == 1}
    # logical_not / invert take bools and integers; clip and where, more than one array.
    others = {"logical_not", "invert", "bitwise_not", "clip", "where"}
    assert unary - set(UNARY) - others == set()


def _input(domain, dtype):
    x = np.linspace(-3, 3, 13).astype(np.float32)
    if domain == "positive":
        x = np.abs(x) + 0.25
    if domain == "nonzero":
        x = np.where(x == 0, 0.5, x)
    if domain == "small":
        x = x / 3
    return x.astype(dtype)


def _close(ours, theirs, dtype, what):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype, f"{what}: {ours.dtype} != JAX's {theirs.dtype}"
    if ours.dtype == np.bool_ or ours.dtype.kind in "iu":
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
        return
    # One rounding to the low-precision type apart at most (2**-8 relative for bf16).
    rtol = 2 ** -7 if dtype == LOW["bfloat16"] else 2 ** -10
    np.testing.assert_allclose(ours.astype(np.float32), theirs.astype(np.float32),
                               rtol=rtol, atol=rtol, err_msg=what)


@pytest.mark.parametrize("dtype", sorted(LOW))
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_keeps_the_low_precision_dtype(name, dtype):
    dtype = LOW[dtype]
    x = _input(UNARY[name], dtype)
    theirs = getattr(jnp, name)(x)
    _close(getattr(fnp, name)(x), theirs, dtype, f"{name} eager")
    _close(flowjit.jit(getattr(fnp, name))(x), theirs, dtype, f"{name} jit")


@pytest.mark.parametrize("dtype", sorted(LOW))
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_keep_the_low_precision_dtype(name, dtype):
    dtype = LOW[dtype]
    x = _input("small", dtype)
    theirs = getattr(jnp, name)(x)
    _close(getattr(fnp, name)(x), theirs, dtype, f"{name} eager")
    _close(flowjit.jit(getattr(fnp, name))(x), theirs, dtype, f"{name} jit")


@pytest.mark.parametrize("dtype", sorted(LOW))
def test_binary_ops_with_python_scalars_keep_the_dtype(dtype):
    dtype = LOW[dtype]
    x = _input("positive", dtype)
    for name in ("add", "multiply", "divide", "power", "maximum", "arctan2", "logaddexp"):
        _close(getattr(fnp, name)(x, 2.0), getattr(jnp, name)(x, 2.0), dtype, name)
