"""Every VJP rule against central finite differences in float64, first and second order.

The table lists (name, function, argument shapes, domain); each case is differentiated
eagerly (op by op, no LLVM) and through jit, and grad-of-grad is checked the same way.
"""
import numpy as np
import pytest

import compiler
import compiler.numpy as fnp
import compiler.nn
from compiler import lax
from ir.ops import OPS
from passes.vjp_rules import NON_DIFFERENTIABLE, VJP_RULES

IDX = np.array([2, 0, 2])


def _gather_take(x):
    return x[IDX]


def _scatter_add(x, u):
    return fnp.asarray(x).at[IDX].add(u)


CASES = [
    ("add", lambda x, y: x + y, [(3,), (3,)], "any"),
    ("subtract", lambda x, y: x - y, [(3,), (3,)], "any"),
    ("multiply", lambda x, y: x * y, [(2, 3), (2, 3)], "any"),
    ("divide", lambda x, y: x / y, [(3,), (3,)], "positive"),
    ("power", lambda x, y: fnp.power(x, y), [(3,), (3,)], "positive"),
    ("maximum", lambda x, y: fnp.maximum(x, y), [(4,), (4,)], "any"),
    ("minimum", lambda x, y: fnp.minimum(x, y), [(4,), (4,)], "any"),
    ("atan2", lambda y, x: fnp.arctan2(y, x), [(3,), (3,)], "positive"),
    ("remainder", lambda x, y: fnp.fmod(x, y), [(3,), (3,)], "positive"),
    ("negate", lambda x: -x, [(3,)], "any"),
    ("exponential", fnp.exp, [(3,)], "any"),
    ("exponential-minus-one", fnp.expm1, [(3,)], "any"),
    ("log", fnp.log, [(3,)], "positive"),
    ("log-plus-one", fnp.log1p, [(3,)], "positive"),
    ("sqrt", fnp.sqrt, [(3,)], "positive"),
    ("rsqrt", lambda x: lax.rsqrt(x), [(3,)], "positive"),
    ("cbrt", fnp.cbrt, [(3,)], "positive"),
    ("tanh", fnp.tanh, [(3,)], "any"),
    ("logistic", lambda x: lax.logistic(x), [(3,)], "any"),
    ("sine", fnp.sin, [(3,)], "any"),
    ("cosine", fnp.cos, [(3,)], "any"),
    ("tan", fnp.tan, [(3,)], "small"),
    ("erf", lambda x: lax.erf(x), [(3,)], "any"),
    ("abs", fnp.abs, [(3,)], "positive"),
    ("select", lambda x, y: fnp.where(x > y, x * 2, y * 3), [(4,), (4,)], "any"),
    ("clamp", lambda x: lax.clamp(np.float64(-0.5), x, np.float64(0.5)), [(5,)], "any"),
    ("broadcast", lambda x: fnp.broadcast_to(x, (4, 2, 3)) * np.arange(24.).reshape(4, 2, 3),
     [(2, 3)], "any"),
    ("reshape", lambda x: fnp.reshape(x, (3, 2)) * np.arange(6.).reshape(3, 2), [(2, 3)],
     "any"),
    ("transpose", lambda x: fnp.transpose(x, (2, 0, 1)) * np.arange(24.).reshape(4, 2, 3),
     [(2, 3, 4)], "any"),
    ("slice", lambda x: x[1:, ::2] * 3, [(4, 5)], "any"),
    ("pad", lambda x: fnp.pad(x, ((1, 2), (0, 1))) * np.arange(42.).reshape(6, 7),
     [(3, 6)], "any"),
    ("concatenate", lambda x, y: fnp.concatenate([x, y * 2], axis=0) ** 2, [(2, 3), (1, 3)],
     "any"),
    ("reverse", lambda x: fnp.flip(x, axis=0) * np.arange(3.), [(3,)], "any"),
    ("reduce-sum", lambda x: fnp.sum(x ** 2, axis=1), [(3, 4)], "any"),
    ("reduce-max", lambda x: fnp.max(x, axis=0), [(3, 4)], "any"),
    ("reduce-min", lambda x: fnp.min(x), [(3, 4)], "any"),
    ("reduce-prod", lambda x: fnp.prod(x, axis=1), [(2, 3)], "positive"),
    ("dot", lambda a, b: a @ b, [(2, 3), (3, 4)], "any"),
    ("dot-batched", lambda a, b: fnp.einsum("bij,bjk->bik", a, b), [(2, 2, 3), (2, 3, 2)],
     "any"),
    ("dot-transposed", lambda a, b: a.T @ b.T, [(3, 2), (4, 3)], "any"),
    ("dynamic-slice", lambda x: x[np.int32(1)] * 2, [(3, 2)], "any"),
    ("gather", _gather_take, [(4,)], "any"),
    ("scatter-add", _scatter_add, [(4,), (3,)], "any"),
    ("scatter-set", lambda x, u: fnp.asarray(x).at[np.array([1, 3])].set(u * 2), [(5,), (2,)],
     "any"),
    ("softmax-ce", lambda z: compiler.nn.softmax_cross_entropy(z, np.array([1, 0])),
     [(2, 3)], "any"),
]


def _inputs(shapes, domain, seed):
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        x = rng.standard_normal(shape)
        if domain == "positive":
            x = np.abs(x) + 0.5
        if domain == "small":
            x = x * 0.3
        out.append(x)
    return out


def _scalar(fn):
    """A scalar function of the case: a fixed random projection of the output."""
    def f(*xs):
        out = fn(*xs)
        weights = np.linspace(0.5, 1.5, int(np.prod(out.shape)) or 1)[:max(out.size, 1)]
        return fnp.sum(fnp.reshape(out, (-1,)) * weights[:out.size])
    return f


def _numeric_grad(f, xs, k, eps=1e-6):
    x = xs[k]
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus = [a.copy() for a in xs]
        minus = [a.copy() for a in xs]
        plus[k][i] += eps
        minus[k][i] -= eps
        g[i] = (float(f(*plus)) - float(f(*minus))) / (2 * eps)
    return g


@pytest.mark.parametrize("name, fn, shapes, domain", CASES, ids=[c[0] for c in CASES])
def test_first_order_matches_finite_differences(name, fn, shapes, domain):
    xs = _inputs(shapes, domain, seed=len(name))
    f = _scalar(fn)
    argnums = tuple(range(len(xs)))
    eager = compiler.grad(f, argnums=argnums)(*xs)
    compiled = compiler.jit(compiler.grad(f, argnums=argnums))(*xs)
    for k in range(len(xs)):
        expected = _numeric_grad(f, xs, k)
        np.testing.assert_allclose(eager[k], expected, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(compiled[k], expected, rtol=1e-5, atol=1e-6, err_msg=name)


SECOND_ORDER = ["multiply", "divide", "exponential", "log", "tanh", "logistic", "sine",
                "erf", "sqrt", "power", "dot", "reduce-sum", "broadcast", "softmax-ce",
                "atan2", "slice", "concatenate", "gather"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_matches_finite_differences(name):
    _, fn, shapes, domain = next(c for c in CASES if c[0] == name)
    xs = _inputs(shapes, domain, seed=7)
    f = _scalar(fn)

    def first(*args):  # a scalar of the gradient, to differentiate again
        g = compiler.grad(f, argnums=0)(*args)
        return fnp.sum(g * np.linspace(1, 2, g.size).reshape(g.shape))
    analytic = compiler.grad(first, argnums=0)(*xs)
    expected = _numeric_grad(first, xs, 0, eps=1e-5)
    np.testing.assert_allclose(analytic, expected, rtol=1e-4, atol=1e-5, err_msg=name)


def test_every_differentiable_op_has_a_rule():
    """A new op must get a VJP rule or be listed as non-differentiable."""
    structural = {"parameter", "tuple", "get-tuple-element", "call", "fusion", "while",
                  "conditional"}
    missing = [op for op in OPS if op not in VJP_RULES and op not in NON_DIFFERENTIABLE
               and op not in structural]
    assert missing == []


def test_convert_between_float_types_passes_the_gradient_through():
    # d/dx sum(3 * f64(f32(x))) = 3 exactly (hand-computed; finite differences would only
    # see the f32 rounding steps).
    f = lambda x: fnp.sum(fnp.astype(fnp.astype(x, np.float32), np.float64) * 3.0)  # noqa
    np.testing.assert_array_equal(compiler.grad(f)(np.array([0.1, 2.0])), [3.0, 3.0])
