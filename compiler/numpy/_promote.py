"""numpy's broadcasting and dtype promotion, applied to concrete and traced values alike."""
from __future__ import annotations

from typing import Any

import numpy as np

from flowjit import lax
from flowjit.config import canonicalize_dtype
from flowjit.core import Tracer, as_array, concrete
from flowjit.source_info import at_user_line
from flowjit.ir.errors import ShapeError

_PY_SCALARS = (bool, int, float)


def is_python_scalar(x: Any) -> bool:
    return isinstance(x, _PY_SCALARS) and not isinstance(x, np.generic)


def is_float_dtype(dtype: Any) -> bool:
    """True for float16, bfloat16, float32 and float64 (bfloat16's numpy kind is 'V')."""
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype.name == "bfloat16"


def inexact_dtype(*args: Any) -> np.dtype:
    """The float dtype exp(x), mean(x), ... compute in: float dtypes (bfloat16 and float16
    included) stay; integers and bools become the default float (float32 unless x64)."""
    dtype = result_type(*args)
    return dtype if is_float_dtype(dtype) else canonicalize_dtype(np.float64)


def dtype_of(x: Any) -> np.dtype:
    """x's dtype as flowjit holds it (canonical: 32-bit unless x64 is enabled)."""
    if isinstance(x, Tracer):
        return x.dtype
    return canonicalize_dtype(np.asarray(x).dtype)


def _weak(x: Any) -> bool:
    return is_python_scalar(x) or (isinstance(x, Tracer) and x.weak_type)


def _placeholder(x: Any):
    """What np.result_type should see for `x`: Python scalars stay weak (NEP 50)."""
    if _weak(x):
        kind = dtype_of(x).kind if isinstance(x, Tracer) else np.asarray(x).dtype.kind
        return {"b": False, "i": 0, "u": 0}.get(kind, 0.0)
    return dtype_of(x)


def result_type(*args: Any) -> np.dtype:
    """numpy's result dtype, canonicalized (32-bit unless x64 is enabled); Python scalars
    are weakly typed, so they do not widen arrays (f32 + 1.0 is f32)."""
    if all(_weak(a) for a in args):
        return canonicalize_dtype(np.result_type(*[dtype_of(a) if isinstance(a, Tracer)
                                                   else type(a) for a in args]))
    return canonicalize_dtype(np.result_type(*[_placeholder(a) for a in args]))


def asarray_or_tracer(x: Any, dtype=None) -> Any:
    """A Tracer stays as it is; anything else becomes a numpy array (of `dtype`)."""
    if isinstance(x, Tracer):
        return x if dtype is None else lax.convert_element_type(x, dtype)
    if isinstance(x, (list, tuple)) and any(isinstance(e, Tracer) for e in x):
        from flowjit.numpy.shape_ops import stack
        return asarray_or_tracer(stack(x), dtype)
    return concrete(np.asarray(x, dtype=dtype))


def promote(*args: Any, dtype=None) -> list:
    """Operands converted to their common dtype (or `dtype`)."""
    target = canonicalize_dtype(dtype if dtype is not None else result_type(*args))
    out = []
    for a in args:
        if isinstance(a, Tracer):
            out.append(lax.convert_element_type(a, target))
        else:
            out.append(np.asarray(a, dtype=target) if not isinstance(a, np.ndarray)
                       or a.dtype != target else a)
    return out


def shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tracer) else np.shape(x)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast result shape; ShapeError names the shapes when they don't fit."""
    rank = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(rank):
        sizes = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            shown = " and ".join(str(tuple(s)) for s in shapes)
            raise ShapeError(at_user_line(
                f"operands could not be broadcast together with shapes {shown}"))
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    src = shape_of(x)
    if tuple(src) == tuple(shape):
        return x
    broadcast_shapes(src, shape)
    if len(src) > len(shape) or any(s not in (1, t) for s, t in
                                    zip(src, shape[len(shape) - len(src):])):
        raise ShapeError(at_user_line(f"cannot broadcast shape {tuple(src)} to {tuple(shape)}"))
    dims = list(range(len(shape) - len(src), len(shape)))
    return lax.broadcast_in_dim(x, shape, dims)


def broadcast_arrays(*args: Any) -> list:
    shape = broadcast_shapes(*[shape_of(a) for a in args])
    return [broadcast_to(a, shape) for a in args]


def prepare(*args: Any, dtype=None) -> list:
    """Promote to a common dtype and broadcast to a common shape: numpy's binary-op rule."""
    args = promote(*args, dtype=dtype)
    return broadcast_arrays(*args)


def wrap(x: Any) -> Any:
    """Concrete results are returned as flowjit Arrays; traced ones as they are."""
    return x if isinstance(x, Tracer) else as_array(concrete(x))
