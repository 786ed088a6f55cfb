"""Counter-based random numbers: threefry-2x32 (20 rounds) written in integer primitives.

A key is a u32[2] array. Every draw is a pure function of (key, position), computed with
ordinary u32 adds, xors and shifts, so the bits are the same eagerly, compiled, at any
opt_level and on any device. JAX's API: key, split, fold_in, bits, uniform, normal,
bernoulli, randint, permutation.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from compiler import lax
from compiler.core import shape_of
from compiler.numpy._promote import wrap

_U32 = np.uint32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _u32(value) -> np.ndarray:
    return np.asarray(value, dtype=_U32)


def _rotate_left(x, amount: int):
    return lax.bitwise_or(lax.shift_left(x, _u32(amount)),
                          lax.shift_right_logical(x, _u32(32 - amount)))


def threefry2x32(key, x0, x1):
    """The Threefry-2x32 block cipher (20 rounds) on counter words x0, x1 (u32 arrays)."""
    k0 = lax.reshape(lax.slice(key, [0], [1]), ())
    k1 = lax.reshape(lax.slice(key, [1], [2]), ())
    k2 = lax.bitwise_xor(lax.bitwise_xor(k0, k1), _u32(0x1BD11BDA))
    schedule = [k0, k1, k2]
    x0 = lax.add(x0, k0)
    x1 = lax.add(x1, k1)
    for block in range(5):
        for rotation in _ROTATIONS[block % 2]:
            x0 = lax.add(x0, x1)
            x1 = lax.bitwise_xor(_rotate_left(x1, rotation), x0)
        x0 = lax.add(x0, schedule[(block + 1) % 3])
        x1 = lax.add(lax.add(x1, schedule[(block + 2) % 3]), _u32(block + 1))
    return x0, x1


def key(seed: int):
    """A key from an integer seed."""
    seed = int(seed)
    return wrap(np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], dtype=_U32))


PRNGKey = key


def _counter_bits(key, count: int):
    """2*ceil(count/2) fresh u32 words for `key`."""
    half = max(1, -(-count // 2))
    counter = lax.iota(_U32, (half,), 0)
    hi, lo = threefry2x32(key, lax.broadcast_in_dim(_u32(0), (half,), []), counter)
    return lax.concatenate([hi, lo], 0)


def split(key, num: int = 2):
    """`num` new independent keys (an array u32[num, 2])."""
    words = _counter_bits(key, 2 * num)
    return wrap(lax.reshape(lax.slice(words, [0], [2 * num]), (num, 2)))


def fold_in(key, data: int):
    """A new key mixing `data` into `key`."""
    hi, lo = threefry2x32(key, _u32([0]), lax.reshape(lax.convert_element_type(
        data, _U32) if not isinstance(data, int) else _u32(data & 0xFFFFFFFF), (1,)))
    return wrap(lax.concatenate([hi, lo], 0))


def bits(key, shape: Sequence[int] = ()):
    """Uniform random u32 words of `shape`."""
    shape = tuple(shape)
    count = math.prod(shape)
    words = _counter_bits(key, count)
    return wrap(lax.reshape(lax.slice(words, [0], [count]), shape))


def uniform(key, shape: Sequence[int] = (), dtype=np.float32, minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval): 23 random mantissa bits under exponent 0."""
    words = bits(key, shape)
    mantissa = lax.bitwise_or(lax.shift_right_logical(words, _u32(9)), _u32(0x3F800000))
    one_to_two = lax.bitcast_convert(mantissa, np.float32)
    unit = lax.sub(one_to_two, np.float32(1.0))
    unit = lax.convert_element_type(unit, np.dtype(dtype))
    scale = np.asarray(maxval - minval, dtype)
    return wrap(lax.add(lax.mul(unit, scale), np.asarray(minval, dtype)))


def normal(key, shape: Sequence[int] = (), dtype=np.float32):
    """Standard normal samples (Box–Muller on two uniform streams)."""
    k1, k2 = split(key)
    u1 = lax.sub(np.asarray(1.0, dtype), uniform(k1, shape, dtype))   # (0, 1]
    u2 = uniform(k2, shape, dtype)
    radius = lax.sqrt(lax.mul(np.asarray(-2.0, dtype), lax.log(u1)))
    angle = lax.mul(np.asarray(2 * math.pi, dtype), u2)
    return wrap(lax.mul(radius, lax.cos(angle)))


def bernoulli(key, p=0.5, shape: Sequence[int] = ()):
    """Booleans that are True with probability p."""
    return wrap(lax.compare(uniform(key, shape), np.asarray(p, np.float32), "LT"))


def randint(key, shape: Sequence[int], minval: int, maxval: int, dtype=np.int32):
    """Integers uniform in [minval, maxval)."""
    span = np.uint32(maxval - minval)
    words = bits(key, shape)
    offset = lax.rem(words, lax.broadcast_in_dim(span, tuple(shape), []) if shape else span)
    return wrap(lax.add(lax.convert_element_type(offset, np.dtype(dtype)),
                        np.asarray(minval, dtype)))


def permutation(key, x):
    """A random permutation of x (an int n means arange(n)), by ranking random words."""
    import compiler.numpy as fnp
    values = fnp.arange(x) if isinstance(x, int) else x
    n = shape_of(values).dims[0]
    words = bits(key, (n,))
    ties = lax.iota(_U32, (n,), 0)
    # rank[i] = #{j : (w[j], j) < (w[i], i)}: a sort-free, fully traceable shuffle.
    wi = lax.broadcast_in_dim(words, (n, n), [0])
    wj = lax.broadcast_in_dim(words, (n, n), [1])
    ii = lax.broadcast_in_dim(ties, (n, n), [0])
    jj = lax.broadcast_in_dim(ties, (n, n), [1])
    before = lax.bitwise_or(lax.compare(wj, wi, "LT"), lax.bitwise_and(
        lax.compare(wj, wi, "EQ"), lax.compare(jj, ii, "LT")))
    rank = fnp.sum(fnp.astype(before, np.int32), axis=1).astype(np.int32)
    order = fnp.zeros((n,), np.int32).at[rank].set(fnp.arange(n).astype(np.int32))
    from compiler.indexing import getitem
    return getitem(values, order)
