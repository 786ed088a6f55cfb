"""The jax.nn / jax.lax / jax.random names of issue 15 against JAX itself: same inputs (same
keys), same values; gradients against jax.grad; JAX's signatures."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.lax as flax
import flowjit.nn as fnn
import flowjit.random as frandom

jax = pytest.importorskip("jax")
jlax, jnn, jrandom = jax.lax, jax.nn, jax.random
# JAX's 32-bit defaults, whatever another test set for the process.
pytestmark = pytest.mark.usefixtures("no_x64")

RNG = np.random.default_rng(5)
X = (RNG.standard_normal((4, 6)) * 3).astype(np.float32)
Q = RNG.standard_normal((2, 5, 4, 8)).astype(np.float32)
K = RNG.standard_normal((2, 7, 2, 8)).astype(np.float32)
V = RNG.standard_normal((2, 7, 2, 8)).astype(np.float32)
BIAS = RNG.standard_normal((2, 4, 5, 7)).astype(np.float32)
MASK = RNG.random((2, 1, 5, 7)) > 0.3
GAMMA_POINTS = np.array([0.01, 0.5, 1, 1.5, 2, 3.7, 30, 1e10, -0.5, -1.5, -2.25, -7.9, -3, 0,
                         np.inf, -np.inf, np.nan], np.float32)
B1 = RNG.standard_normal((3, 4, 5)).astype(np.float32)
B2 = RNG.standard_normal((3, 5, 2)).astype(np.float32)

NN = {
    "selu": lambda nn: nn.selu(X),
    "celu": lambda nn: nn.celu(X, 0.5),
    "hard_tanh": lambda nn: nn.hard_tanh(X),
    "mish": lambda nn: nn.mish(X),
    "glu": lambda nn: nn.glu(X, 0),
    "standardize": lambda nn: nn.standardize(X),
    "standardize_stable": lambda nn: nn.standardize(X, 0, epsilon=1e-3, algorithm="stable"),
    "hard_sigmoid": lambda nn: nn.hard_sigmoid(X),
    "hard_silu": lambda nn: nn.hard_silu(X),
    "hard_swish": lambda nn: nn.hard_swish(X),
    "swish": lambda nn: nn.swish(X),
    "soft_sign": lambda nn: nn.soft_sign(X),
    "dot_product_attention": lambda nn: nn.dot_product_attention(Q, K, V),
    "dot_product_attention_masked": lambda nn: nn.dot_product_attention(Q, K, V, BIAS, MASK),
    "dot_product_attention_causal": lambda nn: nn.dot_product_attention(
        Q[0], K[0], V[0], is_causal=True, scale=0.3),
    "dot_product_attention_lengths": lambda nn: nn.dot_product_attention(
        Q, K, V, query_seq_lengths=np.array([3, 5], np.int32),
        key_value_seq_lengths=np.array([7, 2], np.int32), local_window_size=(1, 2)),
}
LAX = {
    "square": lambda lax: lax.square(X),
    "integer_pow": lambda lax: lax.integer_pow(X, 5),
    "integer_pow_negative": lambda lax: lax.integer_pow(X, -3),
    "lgamma": lambda lax: lax.lgamma(GAMMA_POINTS),
    "digamma": lambda lax: lax.digamma(GAMMA_POINTS),
    "erf_inv": lambda lax: lax.erf_inv(np.tanh(X / 4)),
    "asinh": lambda lax: lax.asinh(X),
    "dynamic_slice_in_dim": lambda lax: lax.dynamic_slice_in_dim(X, -2, 3, 1),
    "dynamic_update_slice_in_dim": lambda lax: lax.dynamic_update_slice_in_dim(X, X[:2], 3, 0),
    "dynamic_index_in_dim": lambda lax: lax.dynamic_index_in_dim(X, 2, 1, False),
    "slice_in_dim": lambda lax: lax.slice_in_dim(X, 1, -1, 2, 1),
    "index_in_dim": lambda lax: lax.index_in_dim(X, -1, 0, False),
    "reduce_max": lambda lax: lax.reduce_max(X, (1,)),
    "reduce_min": lambda lax: lax.reduce_min(X, (0, 1)),
    "reduce_sum": lambda lax: lax.reduce_sum(X, (0,)),
    "reduce_prod": lambda lax: lax.reduce_prod(X, (1,)),
    "reduce_or": lambda lax: lax.reduce_or(X > 2, (0,)),
    "argmax": lambda lax: lax.argmax(X, 1, np.int32),
    "argmin": lambda lax: lax.argmin(X, 0, np.int32),
    "batch_matmul": lambda lax: lax.batch_matmul(B1, B2),
    "expand_dims": lambda lax: lax.expand_dims(X, (0, 3)),
    "map": lambda lax: lax.map(lambda r: r.sum() * 2, X),
    "switch": lambda lax: lax.switch(2, [lambda a: a + 1, lambda a: a * 2, lambda a: a - 3], X),
    "cond": lambda lax: lax.cond(False, lambda a: a + 1, lambda a: a * 2, X),
    "scan": lambda lax: lax.scan(lambda c, r: (c + r, c * r), np.zeros(6, np.float32), X),
    "stop_gradient": lambda lax: lax.stop_gradient(X),
}
KEY = 20261203
LOW, HIGH = np.array([-2., 0.5, -0.1], np.float32), np.array([-1., 3., 0.1], np.float32)
RANDOM = {
    "exponential": lambda r, k: r.exponential(k, (500,)),
    "laplace": lambda r, k: r.laplace(k, (3, 4)),
    "gumbel": lambda r, k: r.gumbel(k, (500,)),
    "logistic": lambda r, k: r.logistic(k, (500,)),
    "gumbel_high": lambda r, k: r.gumbel(k, (50,), mode="high"),
    "categorical": lambda r, k: r.categorical(k, X),
    "categorical_shape": lambda r, k: r.categorical(k, X, axis=0, shape=(3, 6)),
    "truncated_normal": lambda r, k: r.truncated_normal(k, -1.0, 2.0, (500,)),
    "truncated_normal_arrays": lambda r, k: r.truncated_normal(k, LOW, HIGH, (4, 3)),
}
GRADS = {
    "selu": (lambda m: lambda x: m.nn.selu(x).sum(), X),
    "celu": (lambda m: lambda x: m.nn.celu(x, 2.0).sum(), X),
    "mish": (lambda m: lambda x: m.nn.mish(x).sum(), X),
    "glu": (lambda m: lambda x: (m.nn.glu(x) ** 2).sum(), X),
    "standardize": (lambda m: lambda x: (m.nn.standardize(x) * X).sum(), X),
    "dot_product_attention": (lambda m: lambda q: (m.nn.dot_product_attention(
        q, K, V, BIAS, MASK) ** 2).sum(), Q),
    "lgamma": (lambda m: lambda x: m.lax.lgamma(x).sum(), np.abs(X) + 0.1),
    "integer_pow": (lambda m: lambda x: m.lax.integer_pow(x, -3).sum(), X),
    "batch_matmul": (lambda m: lambda x: (m.lax.batch_matmul(x, B2) ** 2).sum(), B1),
}


def close(got, want, rtol=2e-6, atol=2e-6):
    if isinstance(want, (list, tuple)):
        for g, w in zip(got, want):
            close(g, w, rtol, atol)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("name", sorted(NN))
def test_nn_matches_jax(name):
    close(NN[name](fnn), NN[name](jnn), 1e-5, 1e-5)


@pytest.mark.parametrize("name", sorted(LAX))
def test_lax_matches_jax(name):
    close(LAX[name](flax), LAX[name](jlax), 1e-5, 1e-5)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_matches_jax_for_the_same_key(name):
    close(RANDOM[name](frandom, frandom.key(KEY)), RANDOM[name](jrandom, jrandom.PRNGKey(KEY)),
          1e-5, 1e-5)


def test_random_under_jit_matches_jax():
    fn = flowjit.jit(lambda k: (frandom.truncated_normal(k, LOW, HIGH, (4, 3)),
                                frandom.categorical(k, X, shape=(2, 4))))
    close(fn(frandom.key(KEY)), (RANDOM["truncated_normal_arrays"](jrandom, jrandom.PRNGKey(KEY)),
                                 jrandom.categorical(jrandom.PRNGKey(KEY), X, shape=(2, 4))),
          1e-5, 1e-6)


class _Lib:
    def __init__(self, nn, lax):
        self.nn, self.lax = nn, lax


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradient_matches_jax(name):
    make, x = GRADS[name]
    close(flowjit.grad(make(_Lib(fnn, flax)))(x), jax.grad(make(_Lib(jnn, jlax)))(x), 1e-4, 1e-5)


def _function(module, case: str):
    while not hasattr(module, case):
        case = case.rsplit("_", 1)[0]
    return case


SIGNATURES = ([(fnn, jnn, _function(jnn, n)) for n in NN] +
              [(flax, jlax, _function(jlax, n)) for n in LAX] +
              [(frandom, jrandom, _function(jrandom, n)) for n in RANDOM])


@pytest.mark.parametrize("ours, theirs, name", sorted(set(SIGNATURES), key=lambda s: s[2]),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_signature_is_jax_s(ours, theirs, name):
    ours = inspect.signature(getattr(ours, name)).parameters
    theirs = inspect.signature(getattr(theirs, name)).parameters
    assert list(ours) == list(theirs)
