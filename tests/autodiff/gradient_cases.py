"""The gradient spec table: one row per VJP rule (or composite), written once against a
library namespace so the same function runs on flowjit and, where installed, on JAX."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

IDX = np.array([2, 0, 2])
F64, F32 = np.float64, np.float32


@dataclass(frozen=True)
class Lib:
    """What a case may use: numpy-, lax- and nn-style modules and the control flow."""

    np: Any
    lax: Any
    nn: Any
    cond: Callable
    switch: Callable
    fori_loop: Callable
    scan: Callable
    custom_vjp: Callable


def flowjit_lib() -> Lib:
    import flowjit
    import flowjit.nn
    import flowjit.numpy as fnp
    from flowjit import lax
    return Lib(fnp, lax, flowjit.nn, flowjit.cond, flowjit.switch, flowjit.fori_loop,
               flowjit.scan, flowjit.custom_vjp)


def jax_lib() -> Lib:
    import jax
    jax.config.update("jax_enable_x64", True)
    return Lib(jax.numpy, jax.lax, jax.nn, jax.lax.cond, jax.lax.switch, jax.lax.fori_loop,
               jax.lax.scan, jax.custom_vjp)


@dataclass(frozen=True)
class Case:
    """make(lib) -> f(*arrays) -> array; arguments drawn from `domain` with `shapes`."""

    name: str
    make: Callable[[Lib], Callable]
    shapes: tuple
    domain: str = "any"           # any, positive, small
    orders: tuple = (1, 2)        # checked against finite differences at these orders
    dtypes: tuple = (F64, F32)    # F32: the gradient keeps float32 and is close to float64's


def _softmax_ce(lib, z):
    labels = lib.nn.one_hot(np.array([1, 0]), 3, dtype=z.dtype)
    return -lib.np.mean(lib.np.sum(lib.nn.log_softmax(z, axis=-1) * labels, axis=-1))


def _log1pexp(lib):
    f = lib.custom_vjp(lambda x: lib.np.log(1.0 + lib.np.exp(x)))
    f.defvjp(lambda x: (f(x), x),
             lambda x, g: (g * (1.0 - 1.0 / (1.0 + lib.np.exp(x))),))
    return f


def _fori(lib):
    return lambda x, y: lib.fori_loop(0, 3, lambda i, c: lib.np.sin(c) * y + c, x)


def _scan(lib):
    def f(x, xs):
        def step(c, xi):
            return lib.np.tanh(c * xi + 0.5), c * xi
        carry, ys = lib.scan(step, x, xs)
        return lib.np.concatenate([carry, lib.np.reshape(ys, (-1,))])
    return f


def _cond(threshold):
    def make(lib):
        return lambda x, y: lib.cond(x[0] > threshold, lambda a: lib.np.sin(a[0]) * a[1],
                                     lambda a: a[0] * a[1] ** 2, (x, y))
    return make


CASES = [
    Case("add", lambda lib: lambda x, y: x + y, ((3,), (3,))),
    Case("subtract", lambda lib: lambda x, y: x - y, ((3,), (3,))),
    Case("multiply", lambda lib: lambda x, y: x * y, ((2, 3), (2, 3))),
    Case("divide", lambda lib: lambda x, y: x / y, ((3,), (3,)), "positive"),
    Case("power", lambda lib: lambda x, y: lib.np.power(x, y), ((3,), (3,)), "positive"),
    Case("maximum", lambda lib: lambda x, y: lib.np.maximum(x, y), ((4,), (4,))),
    Case("minimum", lambda lib: lambda x, y: lib.np.minimum(x, y), ((4,), (4,))),
    Case("atan2", lambda lib: lambda y, x: lib.np.arctan2(y, x), ((3,), (3,)), "positive"),
    Case("remainder", lambda lib: lambda x, y: lib.np.fmod(x, y), ((3,), (3,)), "positive"),
    Case("negate", lambda lib: lambda x: -x, ((3,),)),
    Case("exponential", lambda lib: lib.np.exp, ((3,),)),
    Case("exponential-minus-one", lambda lib: lib.np.expm1, ((3,),)),
    Case("log", lambda lib: lib.np.log, ((3,),), "positive"),
    Case("log-plus-one", lambda lib: lib.np.log1p, ((3,),), "positive"),
    Case("sqrt", lambda lib: lib.np.sqrt, ((3,),), "positive"),
    Case("rsqrt", lambda lib: lib.lax.rsqrt, ((3,),), "positive"),
    Case("cbrt", lambda lib: lib.np.cbrt, ((3,),), "positive"),
    Case("tanh", lambda lib: lib.np.tanh, ((3,),)),
    Case("logistic", lambda lib: lib.lax.logistic, ((3,),)),
    Case("sine", lambda lib: lib.np.sin, ((3,),)),
    Case("cosine", lambda lib: lib.np.cos, ((3,),)),
    Case("tan", lambda lib: lib.np.tan, ((3,),), "small"),
    Case("erf", lambda lib: lib.lax.erf, ((3,),)),
    Case("abs", lambda lib: lambda x: lib.np.abs(x) * x, ((4,),)),
    Case("select", lambda lib: lambda x, y: lib.np.where(x > y, x * 2, y * 3), ((4,), (4,))),
    Case("clamp", lambda lib: lambda x: lib.lax.clamp(np.array(-0.5, x.dtype), x,
                                                   np.array(0.5, x.dtype)) * x, ((5,),)),
    Case("broadcast", lambda lib: lambda x: lib.np.broadcast_to(x, (4, 2, 3))
         * np.arange(24.).reshape(4, 2, 3), ((2, 3),)),
    Case("reshape", lambda lib: lambda x: lib.np.reshape(x, (3, 2)) ** 2, ((2, 3),)),
    Case("transpose", lambda lib: lambda x: lib.np.transpose(x, (2, 0, 1))
         * np.arange(24.).reshape(4, 2, 3), ((2, 3, 4),)),
    Case("slice", lambda lib: lambda x: x[1:, ::2] ** 3, ((4, 5),)),
    Case("pad", lambda lib: lambda x: lib.np.pad(x, ((1, 2), (0, 1))) ** 2
         * np.arange(42.).reshape(6, 7), ((3, 6),)),
    Case("pad-interior", lambda lib: lambda x, v: lib.lax.pad(x, v, ((1, 0, 2),)) ** 2,
         ((3,), ())),
    Case("concatenate", lambda lib: lambda x, y: lib.np.concatenate([x, y * 2], axis=0) ** 2,
         ((2, 3), (1, 3))),
    Case("reverse", lambda lib: lambda x: lib.np.flip(x, axis=0) * x, ((3,),)),
    Case("reduce-sum", lambda lib: lambda x: lib.np.sum(x ** 2, axis=1), ((3, 4),)),
    Case("reduce-max", lambda lib: lambda x: lib.np.max(x, axis=0) ** 2, ((3, 4),)),
    Case("reduce-min", lambda lib: lambda x: lib.np.min(x) * x, ((3, 4),)),
    Case("reduce-prod", lambda lib: lambda x: lib.np.prod(x, axis=1), ((2, 3),), "positive"),
    Case("dot", lambda lib: lambda a, b: a @ b, ((2, 3), (3, 4))),
    Case("dot-batched", lambda lib: lambda a, b: lib.np.einsum("bij,bjk->bik", a, b),
         ((2, 2, 3), (2, 3, 2))),
    Case("dot-transposed", lambda lib: lambda a, b: a.T @ b.T, ((3, 2), (4, 3))),
    Case("dot-vector", lambda lib: lambda a, b: lib.np.dot(a, b) * a, ((3,), (3,))),
    Case("dynamic-slice", lambda lib: lambda x: lib.lax.dynamic_slice(
        x, (np.int32(1), np.int32(0)), (2, 2)) ** 2, ((3, 2),)),
    Case("dynamic-update-slice", lambda lib: lambda x, u: lib.lax.dynamic_update_slice(
        x, u * u, (np.int32(1), np.int32(1))) * x, ((3, 3), (2, 2))),
    Case("gather", lambda lib: lambda x: x[IDX] ** 2, ((4,),)),
    Case("gather-rows", lambda lib: lambda x: x[IDX] * x[IDX], ((4, 2),)),
    Case("scatter-add", lambda lib: lambda x, u: lib.np.asarray(x).at[IDX].add(u) ** 2,
         ((4,), (3,))),
    Case("scatter-set", lambda lib: lambda x, u: lib.np.asarray(x).at[np.array([1, 3])].set(
        u * 2) ** 2, ((5,), (2,))),
    Case("softmax-cross-entropy", lambda lib: lambda z: _softmax_ce(lib, z), ((2, 3),)),
    Case("logsumexp", lambda lib: lambda z: lib.nn.logsumexp(z, axis=1), ((2, 3),)),
    Case("gelu", lambda lib: lambda z: lib.nn.gelu(z), ((4,),)),
    Case("relu", lambda lib: lambda z: lib.nn.relu(z) * z, ((4,),)),
    Case("leaky-relu", lambda lib: lambda z: lib.nn.leaky_relu(z) * z, ((4,),)),
    Case("elu", lambda lib: lambda z: lib.nn.elu(z), ((4,),)),
    Case("log-sigmoid", lambda lib: lambda z: lib.nn.log_sigmoid(z), ((4,),)),
    Case("softplus", lambda lib: lambda z: lib.nn.softplus(z), ((4,),)),
    Case("custom-vjp", lambda lib: _log1pexp(lib), ((3,),)),
    Case("conditional-true", _cond(-10.0), ((3,), (3,))),
    Case("conditional-false", _cond(10.0), ((3,), (3,))),
    Case("switch", lambda lib: lambda x: lib.switch(np.int32(1), [lambda a: a * 2,
                                                                 lambda a: lib.np.sin(a) * a],
                                                    x), ((3,),)),
    Case("fori-loop", _fori, ((3,), (3,)), "small"),
    Case("scan", _scan, ((2,), (4, 2)), "small"),
]
