"""The rest of what jax.lax users call there (issue 15): *_in_dim slicing, named reductions,
argmax, integer_pow, lgamma/digamma, inverse trig, batch_matmul, and the control flow and
stop_gradient that flowjit keeps at its top level, each with jax.lax's signature. Imported
at the end of `flowjit.lax`; composed of the primitives there."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from flowjit import lax
from flowjit.core import shape_of

_MISSING = object()


def _dims(x) -> tuple[int, ...]:
    return tuple(shape_of(x).dims)


def _numpy_dtype(x) -> np.dtype:
    return np.dtype(shape_of(x).dtype.to_numpy())


def _like(value, x):
    return lax.broadcast_in_dim(np.asarray(value, _numpy_dtype(x)), _dims(x), [])


def square(x):
    """x * x."""
    return lax.mul(x, x)


def integer_pow(x, y: int):
    """x ** y for a static integer y, by repeated squaring (1 / x ** -y when y < 0)."""
    y = int(y)
    result, base, n = None, x, abs(y)
    while n:
        if n & 1:
            result = base if result is None else lax.mul(result, base)
        n >>= 1
        if n:
            base = lax.mul(base, base)
    if result is None:
        return _like(1, x)
    return lax.div(_like(1, x), result) if y < 0 else result


# Lanczos approximation (g = 7, 9 terms), as XLA's lgamma and digamma.
_LANCZOS_G = 7.0
_LANCZOS_BASE = 0.99999999999980993227684700473478
_LANCZOS = (676.520368121885098567009190444019, -1259.13921672240287047156078755283,
            771.3234287776530788486528258894, -176.61502916214059906584551354,
            12.507343278686904814458936853, -0.13857109526572011689554707,
            9.984369578019570859563e-6, 1.50563273514931155834e-7)


def _widen(fn):
    """fn computed in f32 for f16 arguments, rounded back once."""
    def wrapped(x):
        if _numpy_dtype(x).itemsize >= 4:
            return fn(x)
        return lax.convert_element_type(fn(lax.convert_element_type(x, np.float32)),
                                         _numpy_dtype(x))
    wrapped.__doc__ = fn.__doc__
    wrapped.__name__ = fn.__name__
    return wrapped


def _reflected(x):
    """(x < 0.5, z): Lanczos works on z = x - 1, or on -x after reflection."""
    reflect = lax.lt(x, _like(0.5, x))
    return reflect, lax.select(reflect, lax.neg(x), lax.sub(x, _like(1, x)))


@_widen
def lgamma(x):
    """log |Gamma(x)|: Lanczos for x >= 0.5, the reflection formula below."""
    reflect, z = _reflected(x)
    series = _like(_LANCZOS_BASE, x)
    for i, c in enumerate(_LANCZOS):
        series = lax.add(series, lax.div(_like(c, x), lax.add(z, _like(i + 1, x))))
    t = lax.add(z, _like(_LANCZOS_G + 0.5, x))
    log_t = lax.add(_like(math.log(_LANCZOS_G + 0.5), x),
                    lax.log1p(lax.div(z, _like(_LANCZOS_G + 0.5, x))))
    log_y = lax.add(lax.add(_like(0.5 * math.log(2 * math.pi), x),
                            lax.mul(lax.sub(lax.add(z, _like(0.5, x)), lax.div(t, log_t)),
                                    log_t)),
                    lax.log(series))
    # Gamma(x) Gamma(1 - x) = pi / sin(pi x), with sin taken of the reduced fraction.
    a = lax.abs(x)
    frac = lax.sub(a, lax.floor(a))
    frac = lax.select(lax.gt(frac, _like(0.5, x)), lax.sub(_like(1, x), frac), frac)
    log_sin = lax.log(lax.sin(lax.mul(_like(math.pi, x), frac)))
    reflection = lax.select(lax.is_finite(log_sin),
                            lax.sub(lax.sub(_like(math.log(math.pi), x), log_sin), log_y),
                            lax.neg(log_sin))
    out = lax.select(reflect, reflection, log_y)
    return lax.select(lax.eq(a, _like(np.inf, x)), _like(np.inf, x), out)


@_widen
def digamma(x):
    """d/dx lgamma(x): the Lanczos series' derivative, reflected below 0.5 (NaN at the
    non-positive integers)."""
    reflect, z = _reflected(x)
    num, den = _like(0, x), _like(_LANCZOS_BASE, x)
    for i, c in enumerate(_LANCZOS):
        shifted = lax.add(z, _like(i + 1, x))
        den = lax.add(den, lax.div(_like(c, x), shifted))
        num = lax.sub(num, lax.div(_like(c, x), lax.mul(shifted, shifted)))
    t = lax.add(z, _like(_LANCZOS_G + 0.5, x))
    log_t = lax.add(_like(math.log(_LANCZOS_G + 0.5), x),
                    lax.log1p(lax.div(z, _like(_LANCZOS_G + 0.5, x))))
    y = lax.add(lax.sub(log_t, lax.div(_like(_LANCZOS_G, x), t)), lax.div(num, den))
    # psi(1 - x) - psi(x) = pi / tan(pi x), with tan taken of the reduced fraction.
    reduced = lax.sub(x, lax.floor(lax.add(x, _like(0.5, x))))
    reflection = lax.sub(y, lax.div(_like(math.pi, x),
                                    lax.tan(lax.mul(_like(math.pi, x), reduced))))
    out = lax.select(reflect, reflection, y)
    pole = lax.bitwise_and(lax.le(x, _like(0, x)), lax.eq(x, lax.floor(x)))
    return lax.select(pole, _like(np.nan, x), out)


def erf_inv(x):
    """The inverse error function on (-1, 1) (+-inf at +-1)."""
    from flowjit.random import erf_inv as inverse
    return inverse(x)


def erfc(x):
    """1 - erf(x)."""
    return lax.sub(_like(1, x), lax.erf(x))


def _numpy_function(name: str):
    def op(x):
        from flowjit import numpy as fnp
        return getattr(fnp, name)(x)
    return op


asin = _numpy_function("arcsin")
acos = _numpy_function("arccos")
atan = _numpy_function("arctan")
sinh = _numpy_function("sinh")
cosh = _numpy_function("cosh")
asinh = _numpy_function("arcsinh")
acosh = _numpy_function("arccosh")
atanh = _numpy_function("arctanh")
for _name, _doc in [("asin", "Inverse sine."), ("acos", "Inverse cosine."),
                    ("atan", "Inverse tangent."), ("sinh", "Hyperbolic sine."),
                    ("cosh", "Hyperbolic cosine."), ("asinh", "Inverse hyperbolic sine."),
                    ("acosh", "Inverse hyperbolic cosine."),
                    ("atanh", "Inverse hyperbolic tangent.")]:
    globals()[_name].__name__, globals()[_name].__doc__ = _name, _doc


# --- slicing along one dim ------------------------------------------------------------------

def slice_in_dim(operand, start_index: Optional[int], limit_index: Optional[int],
                 stride: int = 1, axis: int = 0):
    """operand[start:limit:stride] along `axis` (static bounds, numpy's negatives)."""
    dims = _dims(operand)
    start, limit, _ = slice(start_index, limit_index).indices(dims[axis])
    starts, limits, strides = [0] * len(dims), list(dims), [1] * len(dims)
    starts[axis], limits[axis], strides[axis] = start, max(start, limit), stride
    return lax.slice(operand, starts, limits, strides)


def index_in_dim(operand, index: int, axis: int = 0, keepdims: bool = True):
    """operand[index] along `axis` (a static index), keeping that dim as size 1 or not."""
    size = _dims(operand)[axis]
    index = index + size if index < 0 else index
    out = slice_in_dim(operand, index, index + 1, 1, axis)
    return out if keepdims else squeeze(out, (axis,))


def dynamic_slice_in_dim(operand, start_index, slice_size: int, axis: int = 0, *,
                         allow_negative_indices: bool = True):
    """A dynamic_slice along one dim; the start may be traced."""
    starts = [np.int32(0)] * len(_dims(operand))
    starts[axis] = start_index
    sizes = list(_dims(operand))
    sizes[axis] = slice_size
    return lax.dynamic_slice(operand, starts, sizes,
                             allow_negative_indices=allow_negative_indices)


def dynamic_index_in_dim(operand, index, axis: int = 0, keepdims: bool = True, *,
                         allow_negative_indices: bool = True):
    """operand[index] along `axis` for a traced index."""
    out = dynamic_slice_in_dim(operand, index, 1, axis,
                               allow_negative_indices=allow_negative_indices)
    return out if keepdims else squeeze(out, (axis,))


def dynamic_update_slice_in_dim(operand, update, start_index, axis: int, *,
                                allow_negative_indices: bool = True):
    """A dynamic_update_slice along one dim; the start may be traced."""
    starts = [np.int32(0)] * len(_dims(operand))
    starts[axis] = start_index
    return lax.dynamic_update_slice(operand, update, starts,
                                    allow_negative_indices=allow_negative_indices)


def expand_dims(array, dimensions: Sequence[int]):
    """array with size-1 dims inserted at `dimensions` (of the result)."""
    shape = list(_dims(array))
    rank = len(shape) + len(dimensions)
    for d in sorted(d % rank for d in dimensions):
        shape.insert(d, 1)
    return lax.reshape(array, shape)


def squeeze(array, dimensions: Sequence[int]):
    """array without the size-1 `dimensions`."""
    dims = _dims(array)
    drop = {d % len(dims) for d in dimensions}
    if any(dims[d] != 1 for d in drop):
        from flowjit.ir.errors import ShapeError
        from flowjit.source_info import at_user_line
        raise ShapeError(at_user_line(f"squeeze: dims {sorted(drop)} of shape {dims} are not "
                                      f"all of size 1"))
    return lax.reshape(array, [n for d, n in enumerate(dims) if d not in drop])


# --- named reductions and argmax ---------------------------------------------------------------

def _named_reduction(opcode: str, identity: Callable[[np.dtype], Any], name: str, doc: str):
    def reduction(operand, axes: Sequence[int]):
        dtype = _numpy_dtype(operand)
        return lax.reduce(operand, np.asarray(identity(dtype), dtype), opcode, tuple(axes))
    reduction.__name__, reduction.__doc__ = name, doc
    return reduction


def _lowest(dtype: np.dtype):
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _highest(dtype: np.dtype):
    if dtype.kind == "f":
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


reduce_max = _named_reduction("maximum", _lowest, "reduce_max", "Maximum over `axes`.")
reduce_min = _named_reduction("minimum", _highest, "reduce_min", "Minimum over `axes`.")
reduce_prod = _named_reduction("multiply", lambda dt: 1, "reduce_prod", "Product over `axes`.")
reduce_and = _named_reduction("and", lambda dt: True, "reduce_and", "All over `axes`.")
reduce_or = _named_reduction("or", lambda dt: False, "reduce_or", "Any over `axes`.")
_sum = _named_reduction("add", lambda dt: 0, "reduce_sum", "Sum over `axes`.")


def reduce_sum(operand, axes: Sequence[int], *, out_sharding=None):
    """Sum over `axes`."""
    return _sum(operand, axes)


def _arg(direction: str, name: str):
    def arg(operand, axis: int, index_dtype):
        from flowjit import numpy as fnp
        out = getattr(fnp, name)(operand, axis=axis)
        return lax.convert_element_type(out, index_dtype)
    arg.__name__ = name
    arg.__doc__ = f"Index of the first {direction} along `axis`, as `index_dtype`."
    return arg


argmax = _arg("maximum", "argmax")
argmin = _arg("minimum", "argmin")


def batch_matmul(lhs, rhs, precision=None):
    """Matrix products over the leading (batch) dims: [..., m, k] @ [..., k, n]."""
    rank = len(_dims(lhs))
    if rank < 2 or rank != len(_dims(rhs)):
        from flowjit.ir.errors import ShapeError
        from flowjit.source_info import at_user_line
        raise ShapeError(at_user_line(f"batch_matmul: operands of equal rank >= 2 needed, got "
                                      f"shapes {_dims(lhs)} and {_dims(rhs)}"))
    batch = tuple(range(rank - 2))
    return lax.dot_general(lhs, rhs, (((rank - 1,), (rank - 2,)), (batch, batch)),
                           precision=precision)


# --- control flow and stop_gradient, where jax.lax users look for them -----------------------

def stop_gradient(x):
    """x, but gradients do not flow through it."""
    from flowjit.ad import stop_gradient as stop
    return stop(x)


def cond(pred, true_fun: Callable, false_fun: Callable, *operands, operand=_MISSING):
    """true_fun(*operands) if pred else false_fun(*operands), both traced."""
    from flowjit.control_flow import cond as run
    return run(pred, true_fun, false_fun, *(operands if operand is _MISSING else (operand,)))


def switch(index, branches: Sequence[Callable], *operands, operand=_MISSING):
    """branches[clamp(index)](*operands), every branch traced."""
    from flowjit.control_flow import switch as run
    return run(index, branches, *(operands if operand is _MISSING else (operand,)))


def while_loop(cond_fun: Callable, body_fun: Callable, init_val):
    """Repeat body_fun while cond_fun holds."""
    from flowjit.control_flow import while_loop as run
    return run(cond_fun, body_fun, init_val)


def fori_loop(lower, upper, body_fun: Callable, init_val, *, unroll=None):
    """body_fun(i, val) for i in [lower, upper) (unroll is accepted and ignored)."""
    from flowjit.control_flow import fori_loop as run
    return run(lower, upper, body_fun, init_val)


def scan(f: Callable, init, xs=None, length: Optional[int] = None, reverse: bool = False,
         unroll=1, _split_transpose: bool = False):
    """carry, ys = f(carry, x) over the leading dim of xs (unroll accepted and ignored)."""
    from flowjit.control_flow import scan as run
    return run(f, init, xs, length=length, reverse=reverse)


def map(f: Callable, xs, *, batch_size: Optional[int] = None):  # noqa: A001 - jax.lax's name
    """[f(x) for x in xs] stacked, as one scan (batch_size changes nothing but speed in
    JAX; the result is the same here)."""
    _, ys = scan(lambda carry, x: (carry, f(x)), np.zeros((), np.int32), xs)
    return ys
