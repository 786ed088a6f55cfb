"""Counter-based random numbers: threefry-2x32 (20 rounds) written in u32 integer primitives.

A key is a uint32[2] array. Every draw is a pure function of (key, position in the output),
computed with ordinary u32 adds, xors and shifts, so it traces, fuses and compiles like any
other code and gives the same bits eagerly, compiled at any opt_level and on any device.

The streams are jax.random's (threefry, `jax_threefry_partitionable=True`, JAX's default):
`key`, `split`, `fold_in`, `bits`, `uniform`, `bernoulli` and `randint` return JAX's values bit
for bit; `normal` uses XLA's erf_inv polynomial, so it agrees with JAX to rounding.
`permutation` and `choice` sort by random keys as JAX does, so they match JAX's too.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from flowjit import lax
from flowjit.core import Tracer, as_array, shape_of
from flowjit.config import canonicalize_dtype
from flowjit.numpy._promote import is_float_dtype, is_python_scalar
from flowjit.source_info import at_user_line
from flowjit.ir import dtypes
from flowjit.ir.shapes import ArrayShape

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA        # threefry's key-schedule constant (Random123)
_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _u32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.uint32)


def _wrap(x: Any) -> Any:
    return x if isinstance(x, Tracer) else as_array(np.asarray(x))


def _rotate_left(x, amount: int):
    return lax.bitwise_or(lax.shift_left(x, _u32(amount)),
                          lax.shift_right_logical(x, _u32(32 - amount)))


def _threefry(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds: key words k0, k1 (u32 scalars), counters x0, x1 (u32)."""
    schedule = [k0, k1, lax.bitwise_xor(lax.bitwise_xor(k0, k1), _u32(_PARITY))]
    x0, x1 = lax.add(x0, k0), lax.add(x1, k1)
    for block in range(5):
        for rotation in _ROTATIONS[block % 2]:
            x0 = lax.add(x0, x1)
            x1 = lax.bitwise_xor(_rotate_left(x1, rotation), x0)
        # Key injection after every four rounds, with the block number against slide attacks.
        x0 = lax.add(x0, schedule[(block + 1) % 3])
        x1 = lax.add(lax.add(x1, schedule[(block + 2) % 3]), _u32(block + 1))
    return x0, x1


def _key_words(key) -> tuple[Any, Any]:
    shape = shape_of(key)
    if shape != ArrayShape(dtypes.DType.U32, (2,)):
        raise TypeError(at_user_line(f"expected a random key, a u32[2] array (random.key(seed)),"
                                     f" got {shape}"))
    return tuple(lax.reshape(lax.slice(key, [k], [k + 1]), ()) for k in range(2))


def threefry2x32(key, x0, x1):
    """Threefry-2x32 (20 rounds) of the counter words x0, x1 (u32 arrays) under `key`."""
    k0, k1 = _key_words(key)
    x0, x1 = (x if isinstance(x, Tracer) else _u32(x) for x in (x0, x1))
    return tuple(_wrap(word) for word in _threefry(k0, k1, x0, x1))


def _counters(shape: tuple[int, ...]):
    """The row-major position of every element of `shape`, as (high, low) u32 words."""
    size = math.prod(shape)
    if size >= 2 ** 32:
        raise ValueError(at_user_line(f"cannot draw {size} values from one key; split it"))
    if size == 0:
        low = lax.broadcast_in_dim(_u32(0), shape, [])
    else:
        low = lax.reshape(lax.iota(np.uint32, size), shape)
    high = lax.broadcast_in_dim(_u32(0), shape, [])
    return high, low


def _bits_pair(key, shape: tuple[int, ...]):
    k0, k1 = _key_words(key)
    high, low = _counters(shape)
    return _threefry(k0, k1, high, low)


def _stack_words(w0, w1, shape: tuple[int, ...]):
    column = shape + (1,)
    return lax.concatenate([lax.reshape(w0, column), lax.reshape(w1, column)], len(shape))


def key(seed: Any):
    """A key (u32[2]) from an integer seed, as jax.random.key / PRNGKey."""
    if is_python_scalar(seed) or (not isinstance(seed, Tracer) and np.ndim(seed) == 0
                                  and np.asarray(seed).dtype.kind in "iu"):
        seed = int(seed)
        # JAX reads a seed that fits in 32 bits as int32 (high word 0), a wider one as int64.
        high = 0 if -2 ** 31 <= seed < 2 ** 32 else (seed >> 32) & 0xFFFFFFFF
        return as_array(np.array([high, seed & 0xFFFFFFFF], np.uint32))
    shape = shape_of(seed)
    if shape.rank != 0 or not shape.dtype.is_int:
        raise TypeError(at_user_line(f"a seed must be an integer scalar, got {shape}"))
    low = lax.convert_element_type(seed, np.uint32)  # keeps the low 32 bits
    if shape.dtype.bits == 64:
        high = lax.convert_element_type(
            lax.shift_right_logical(seed, np.asarray(32, shape.dtype.to_numpy())), np.uint32)
    else:
        high = _u32(0)
    return _wrap(_stack_words(high, low, ()))


PRNGKey = key


def split(key, num: int = 2):
    """`num` new independent keys, a u32[num, 2] array."""
    k0, k1 = _key_words(key)
    high, low = _counters((int(num),))
    return _wrap(_stack_words(*_threefry(k0, k1, high, low), (int(num),)))


def fold_in(key, data: Any):
    """A new key that mixes the integer `data` into `key`."""
    k0, k1 = _key_words(key)
    if isinstance(data, Tracer):
        word = lax.convert_element_type(data, np.uint32)
    else:
        word = _u32(int(data) & 0xFFFFFFFF)
    return _wrap(_stack_words(*_threefry(k0, k1, _u32(0), word), ()))


def bits(key, shape: Sequence[int] = (), dtype=np.uint32):
    """Uniformly random unsigned integers of `shape` (uint8/16/32/64)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    if dtype.kind != "u":
        raise TypeError(at_user_line(f"bits needs an unsigned dtype, got {dtype}"))
    w0, w1 = _bits_pair(key, shape)
    if dtype.itemsize == 8:
        high = lax.convert_element_type(w0, np.uint64)
        out = lax.bitwise_or(lax.shift_left(high, np.asarray(32, np.uint64)),
                             lax.convert_element_type(w1, np.uint64))
    else:
        out = lax.convert_element_type(lax.bitwise_xor(w0, w1), dtype)
    return _wrap(out)


def _float_dtype(dtype) -> np.dtype:
    dtype = canonicalize_dtype(dtype)
    if not is_float_dtype(dtype):
        raise TypeError(at_user_line(f"expected a floating dtype, got {dtype}"))
    return dtype


def _as(value, dtype: np.dtype, shape: tuple[int, ...]):
    """`value` converted to `dtype` and broadcast to `shape`."""
    import flowjit.numpy as fnp
    if isinstance(value, Tracer):
        value = lax.convert_element_type(value, dtype)
    else:
        value = np.asarray(value, dtype)
    return fnp.broadcast_to(value, shape)


def uniform(key, shape: Sequence[int] = (), dtype=np.float32, minval=0.0, maxval=1.0):
    """Floats uniform in [minval, maxval): random mantissa bits under the exponent of 1.0."""
    shape, dtype = tuple(shape), _float_dtype(dtype)
    info = np.finfo(dtype)
    nbits, nmant = info.bits, info.nmant
    rng_bits = nbits if nmant >= 8 else 8
    uint = _UINT[nbits]
    words = lax.convert_element_type(bits(key, shape, _UINT[rng_bits]), uint)
    one = np.array(1.0, dtype).view(uint)
    mantissa = lax.bitwise_or(lax.shift_right_logical(words, np.asarray(rng_bits - nmant, uint)),
                              one)
    unit = lax.sub(lax.bitcast_convert(mantissa, dtype), np.asarray(1.0, dtype))
    low, high = _as(minval, dtype, shape), _as(maxval, dtype, shape)
    scaled = lax.add(lax.mul(unit, lax.sub(high, low)), low)
    return _wrap(lax.max(low, scaled))


# XLA's ErfInv for f32 (M. Giles, "Approximating the erfinv function"), one polynomial in
# w = -log(1 - x^2) for the centre (w < 5) and one in sqrt(w) for the tails.
_ERFINV_CENTRE = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def erf_inv(x):
    """The inverse error function on (-1, 1), elementwise (±inf at ±1)."""
    dtype = np.dtype(shape_of(x).dtype.to_numpy())
    c = lambda v: np.asarray(v, dtype)  # noqa: E731
    w = lax.neg(lax.log1p(lax.neg(lax.mul(x, x))))
    centre = lax.compare(w, c(5.0), "LT")
    w = lax.select(centre, lax.sub(w, c(2.5)), lax.sub(lax.sqrt(w), c(3.0)))
    p = None
    for a, b in zip(_ERFINV_CENTRE, _ERFINV_TAIL):
        coefficient = lax.select(centre, lax.broadcast_in_dim(c(a), shape_of(x).dims, []),
                                 lax.broadcast_in_dim(c(b), shape_of(x).dims, []))
        p = coefficient if p is None else lax.add(coefficient, lax.mul(p, w))
    y = lax.mul(p, x)
    if dtype.itemsize > 4:
        # The polynomial is good to f32; two Newton steps on erf(y) = x reach f64.
        for _ in range(2):
            slope = lax.mul(c(2 / math.sqrt(math.pi)), lax.exp(lax.neg(lax.mul(y, y))))
            y = lax.sub(y, lax.div(lax.sub(lax.erf(y), x), slope))
    edge = lax.compare(lax.abs(x), c(1.0), "EQ")
    return _wrap(lax.select(edge, lax.mul(x, c(np.inf)), y))


def normal(key, shape: Sequence[int] = (), dtype=np.float32):
    """Standard normal samples: sqrt(2) * erf_inv of a uniform draw on (-1, 1), as JAX."""
    shape, dtype = tuple(shape), _float_dtype(dtype)
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = uniform(key, shape, dtype, low, 1.0)
    return _wrap(lax.mul(np.asarray(math.sqrt(2), dtype), erf_inv(u)))


def bernoulli(key, p: Any = 0.5, shape: Optional[Sequence[int]] = None):
    """Booleans that are True with probability p (of shape `shape`, default p's shape)."""
    p_shape = shape_of(p)
    dtype = p_shape.dtype.to_numpy() if p_shape.dtype.is_float and not is_python_scalar(p) \
        else np.dtype(np.float32)
    shape = p_shape.dims if shape is None else tuple(shape)
    return _wrap(lax.compare(uniform(key, shape, dtype), _as(p, dtype, shape), "LT"))


def randint(key, shape: Sequence[int], minval: Any, maxval: Any, dtype=np.int32):
    """Integers uniform in [minval, maxval) (JAX's algorithm: two words per draw, so the bias
    of the final remainder is below 2**-32)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"randint needs an integer dtype, got {dtype}"))
    info = np.iinfo(dtype)
    nbits = info.bits
    uint = _UINT[nbits]
    too_big = (not isinstance(maxval, Tracer)) and np.any(np.asarray(maxval) > info.max)
    low, high = (_as(_clip(v, info), dtype, shape) for v in (minval, maxval))
    k1, k2 = (lax.reshape(lax.slice(split(key), [k, 0], [k + 1, 2]), (2,)) for k in range(2))
    higher, lower = bits(k1, shape, uint), bits(k2, shape, uint)
    span = lax.convert_element_type(lax.sub(high, low), uint)
    ones = lax.broadcast_in_dim(np.asarray(1, uint), shape, [])
    empty = lax.compare(high, low, "LE")
    span = lax.select(empty, ones, span)
    if too_big:
        # maxval past the dtype's range: the span is one more than high - low can say.
        span = lax.select(lax.bitwise_not(empty), lax.add(span, ones), span)
    # 2**nbits % span without overflow: (2**(nbits/2) % span)**2 % span.
    multiplier = lax.rem(lax.broadcast_in_dim(np.asarray(2 ** (nbits // 2), uint), shape, []),
                         span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher, span), multiplier), lax.rem(lower, span))
    offset = lax.rem(offset, span)
    return _wrap(lax.add(low, lax.convert_element_type(offset, dtype)))


def _clip(value, info):
    if isinstance(value, Tracer):
        return value
    return np.clip(np.asarray(value), info.min, info.max)


def _stable_sort_ranks(sort_keys, n: int):
    """Where each element lands in a stable ascending sort by `sort_keys` (u32[n]): the
    number of smaller keys plus the number of equal keys before it (O(n^2) compares, which
    fuse into one reduction: flowjit has no sort op)."""
    import flowjit.numpy as fnp
    row = lax.broadcast_in_dim(sort_keys, (n, n), [1])      # [i, j] = key[j]
    column = lax.broadcast_in_dim(sort_keys, (n, n), [0])   # [i, j] = key[i]
    j = lax.broadcasted_iota(np.int32, (n, n), 1)
    i = lax.broadcasted_iota(np.int32, (n, n), 0)
    before = lax.bitwise_or(lax.lt(row, column),
                            lax.bitwise_and(lax.eq(row, column), lax.lt(j, i)))
    return fnp.sum(before, axis=1, dtype=np.int32)


def _sort_by(sort_keys, values, n: int):
    """`values` (1-D, length n) reordered by a stable sort of `sort_keys`: JAX's
    lax.sort_key_val."""
    ranks = lax.reshape(_stable_sort_ranks(sort_keys, n), (n, 1))
    numbers = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                          scatter_dims_to_operand_dims=(0,))
    return lax.scatter(values, ranks, values, numbers, mode="promise_in_bounds")


def _shuffled_range(key, n: int):
    """arange(n) (int32) shuffled as jax.random does: rounds of sorting by fresh random
    32-bit keys, enough rounds that equal keys are unlikely (tjablin's rule, exponent 3)."""
    order = lax.iota(np.int32, n)
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        keys = split(key)
        key = lax.reshape(lax.slice(keys, [0, 0], [1, 2]), (2,))
        subkey = lax.reshape(lax.slice(keys, [1, 0], [2, 2]), (2,))
        order = _sort_by(bits(subkey, (n,)), order, n)
    return order



def permutation(key, x: Any, axis: int = 0, independent: bool = False):
    """A random permutation of x along `axis` (an int n means arange(n)), the same one
    jax.random.permutation gives for the same key."""
    from flowjit.numpy import take
    if is_python_scalar(x) or (not isinstance(x, Tracer) and np.ndim(x) == 0):
        if not np.issubdtype(np.asarray(x).dtype, np.integer):
            raise TypeError(at_user_line("x must be an integer or at least 1-dimensional"))
        return _wrap(_shuffled_range(key, int(x)))
    shape = shape_of(x)
    if shape.rank == 0:
        raise TypeError(at_user_line("x must be an integer or at least 1-dimensional"))
    axis = axis % shape.rank
    if independent and shape.rank > 1:
        raise NotImplementedError("permutation(..., independent=True) of an array with more "
                                  "than one dimension")
    return _wrap(take(x, _shuffled_range(key, shape.dims[axis]), axis=axis))


def choice(key, a: Any, shape: Sequence[int] = (), replace: bool = True, p: Any = None,
           axis: int = 0, mode: Optional[str] = None):
    """A random sample of `a` (an int n means arange(n)) of `shape`, as jax.random.choice
    draws it for the same key (without `p`: uniform draws; with `p`, replace=True only)."""
    import flowjit.numpy as fnp
    if not isinstance(shape, Sequence):
        raise TypeError(at_user_line(f"shape argument of choice must be a sequence, got "
                                     f"{shape}"))
    scalar = is_python_scalar(a) or (not isinstance(a, Tracer) and np.ndim(a) == 0)
    arr = None if scalar else fnp.asarray(a)
    n_inputs = int(a) if scalar else shape_of(arr).dims[axis % shape_of(arr).rank]
    axis = 0 if scalar else axis % shape_of(arr).rank
    n_draws = math.prod(shape)
    if n_draws == 0:
        return fnp.zeros(shape, np.int32 if scalar else fnp.dtype(arr.dtype))
    if n_inputs <= 0:
        raise ValueError(at_user_line("a must be greater than 0 unless no samples are taken"))
    if not replace and n_draws > n_inputs:
        raise ValueError(at_user_line(
            f"Cannot take a larger sample (size {n_draws}) than population (size {n_inputs}) "
            "when 'replace=False'"))
    if p is None and replace:
        index = randint(key, shape, 0, n_inputs)
        result = index if scalar else fnp.take(arr, index, axis=axis)
    elif p is None:
        population = n_inputs if scalar else arr
        picked = permutation(key, population, axis)
        result = picked[(slice(None),) * axis + (slice(n_draws),)]
    elif replace:
        p = fnp.asarray(p)
        cumulative = fnp.cumsum(p)
        r = cumulative[-1] * (1 - uniform(key, shape, dtype=fnp.dtype(p.dtype)))
        # searchsorted(cumulative, r, side="left"): how many sums lie below each draw.
        below = fnp.less(cumulative, fnp.expand_dims(r, -1))
        index = fnp.sum(below, axis=-1, dtype=np.int32)
        result = index if scalar else fnp.take(arr, index, axis=axis)
    else:
        raise NotImplementedError("choice(..., p=..., replace=False) (JAX's Gumbel top-k)")
    out_shape = tuple(shape) if scalar else (shape_of(arr).dims[:axis] + tuple(shape)
                                             + shape_of(arr).dims[axis + 1:])
    return _wrap(fnp.reshape(result, out_shape))


# --- more of jax.random's samplers (issue 15): JAX's algorithms on JAX's uniform bits, so
# the same key gives JAX's values (to rounding, where erf_inv or log enter). ---------------

def _sampler_dtype(dtype, name: str) -> np.dtype:
    dtype = canonicalize_dtype(np.float32 if dtype is None else dtype)
    if not is_float_dtype(dtype):
        raise ValueError(at_user_line(f"dtype argument to `{name}` must be a float dtype, "
                                      f"got {dtype}"))
    return dtype


def exponential(key, shape: Sequence[int] = (), dtype=None, *, out_sharding=None):
    """Exponential(1) samples: -log1p(-u) for u uniform in [0, 1)."""
    dtype = _sampler_dtype(dtype, "exponential")
    u = uniform(key, tuple(shape), dtype)
    return _wrap(lax.neg(lax.log1p(lax.neg(u))))


def laplace(key, shape: Sequence[int] = (), dtype=None, *, out_sharding=None):
    """Laplace(0, 1) samples: sign(u) * log1p(-|u|) for u uniform in (-1, 1)."""
    dtype = _sampler_dtype(dtype, "laplace")
    u = uniform(key, tuple(shape), dtype, -1.0 + np.finfo(dtype).epsneg, 1.0)
    return _wrap(lax.mul(lax.sign(u), lax.log1p(lax.neg(lax.abs(u)))))


def gumbel(key, shape: Sequence[int] = (), dtype=None, mode: Optional[str] = None, *,
           out_sharding=None):
    """Gumbel samples -log(-log(u)), u uniform in [tiny, 1) (JAX's "low" mode, its
    default; "high" draws two uniforms for more range in the tail)."""
    dtype = _sampler_dtype(dtype, "gumbel")
    shape = tuple(shape)
    mode = "low" if mode is None else mode
    if mode not in ("low", "high", "highest"):
        raise ValueError(f"Must provide valid mode for gumbel got: {mode}")
    info = np.finfo(dtype)
    if mode == "low":
        u = uniform(key, shape, dtype, float(info.tiny), 1.0)
        return _wrap(lax.neg(lax.log(lax.neg(lax.log(u)))))
    if mode == "highest" and dtype == np.float32:
        raise NotImplementedError("gumbel(mode='highest') for float32")
    pair = uniform(key, (2,) + shape, dtype)
    high = lax.reshape(lax.slice(pair, (0,) + (0,) * len(shape), (1,) + shape), shape)
    low = lax.reshape(lax.slice(pair, (1,) + (0,) * len(shape), (2,) + shape), shape)
    c = lambda v: np.asarray(v, dtype)  # noqa: E731
    nudged = lax.add(lax.add(high, lax.mul(c(2.0 ** -info.nmant), low)), c(info.tiny))
    x = lax.select(lax.ge(high, lax.broadcast_in_dim(c(0.5), shape, [])), high, nudged)
    return _wrap(lax.neg(lax.log(lax.neg(lax.log1p(lax.neg(x))))))


def categorical(key, logits, axis: int = -1, shape: Optional[Sequence[int]] = None,
                replace: bool = True, mode: Optional[str] = None, *, out_sharding=None):
    """Indices drawn with probabilities softmax(logits) along `axis`: argmax of logits plus
    Gumbel noise (the Gumbel-max trick, as JAX)."""
    import flowjit.numpy as fnp
    if not replace:
        raise NotImplementedError("categorical(replace=False) needs top_k")
    logits = fnp.asarray(logits)
    rank = logits.ndim
    axis = axis % rank
    batch_shape = tuple(d for k, d in enumerate(logits.shape) if k != axis)
    shape = batch_shape if shape is None else tuple(shape)
    if shape[len(shape) - len(batch_shape):] != batch_shape:
        raise ValueError(at_user_line(f"categorical: shape {shape} must end with the logits' "
                                      f"batch shape {batch_shape}"))
    prefix = shape[:len(shape) - len(batch_shape)]
    noise_shape = list(shape[len(shape) - len(batch_shape):])
    noise_shape.insert(axis, logits.shape[axis])
    noise = gumbel(key, prefix + tuple(noise_shape), fnp.dtype(logits.dtype), mode=mode)
    expanded = fnp.reshape(logits, (1,) * len(prefix) + tuple(logits.shape))
    return fnp.argmax(noise + expanded, axis=axis + len(prefix))


def _step_toward(x, toward: float):
    """The float next to x in the direction of `toward` (+-inf), as numpy.nextafter."""
    if not isinstance(x, Tracer):
        return np.nextafter(np.asarray(x), np.asarray(toward, np.asarray(x).dtype))
    dtype = np.dtype(shape_of(x).dtype.to_numpy())
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[dtype.itemsize]
    bits = lax.bitcast_convert_type(x, ints)
    full = lambda v, t: lax.broadcast_in_dim(np.asarray(v, t), shape_of(x).dims, [])  # noqa
    one = full(1, ints)
    # away from zero adds one to the magnitude's bits, toward zero takes one off
    away = lax.eq(lax.lt(x, full(0, dtype)), np.float64(toward) < 0)
    stepped = lax.bitcast_convert_type(lax.select(away, lax.add(bits, one),
                                                  lax.sub(bits, one)), dtype)
    smallest = full(np.copysign(np.finfo(dtype).smallest_subnormal, toward), dtype)
    return lax.select(lax.eq(x, full(0, dtype)), smallest, stepped)


def truncated_normal(key, lower, upper, shape: Optional[Sequence[int]] = None, dtype=None, *,
                     out_sharding=None):
    """Normal samples conditioned on lower < x < upper: erf_inv of a uniform draw between
    erf(lower / sqrt 2) and erf(upper / sqrt 2), clipped strictly inside the bounds."""
    import flowjit.numpy as fnp
    from flowjit.ad import stop_gradient
    dtype = _sampler_dtype(dtype, "truncated_normal")
    if shape is None:
        shape = fnp.broadcast_shapes(np.shape(lower) if not isinstance(lower, Tracer)
                                     else lower.shape,
                                     np.shape(upper) if not isinstance(upper, Tracer)
                                     else upper.shape)
    shape = tuple(shape)
    sqrt2 = np.asarray(math.sqrt(2), dtype)
    lower = fnp.asarray(lower).astype(dtype)
    upper = fnp.asarray(upper).astype(dtype)
    a = lax.erf(lax.div(lower, sqrt2))
    b = lax.erf(lax.div(upper, sqrt2))
    u = uniform(key, shape, dtype, a, b)
    out = lax.mul(sqrt2, erf_inv(u))
    lo = _step_toward(stop_gradient(lower), np.inf)
    hi = _step_toward(stop_gradient(upper), -np.inf)
    return fnp.clip(out, lo, hi)


def logistic(key, shape: Sequence[int] = (), dtype=None, *, out_sharding=None):
    """Standard logistic samples: log(u) - log1p(-u) for u uniform in [tiny, 1)."""
    dtype = _sampler_dtype(dtype, "logistic")
    u = uniform(key, tuple(shape), dtype, float(np.finfo(dtype).tiny), 1.0)
    return _wrap(lax.sub(lax.log(u), lax.log1p(lax.neg(u))))
