"""flowjit.random: threefry known answers, JAX's streams bit for bit, the same bits eagerly
and compiled, and the distributions of a million draws."""
import numpy as np
import pytest

import flowjit
from flowjit import random
from flowjit.random import threefry2x32

# Random123's published known-answer vectors for threefry2x32 with 20 rounds
# (kat_vectors: key, counter -> output), an oracle independent of this code and of JAX.
KAT = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
       ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
       ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]


@pytest.mark.parametrize("key, counter, expected", KAT)
def test_threefry_known_answers(key, counter, expected):
    k = np.array(key, np.uint32)
    c0, c1 = np.array([counter[0]], np.uint32), np.array([counter[1]], np.uint32)
    for fn in (threefry2x32, flowjit.jit(threefry2x32)):
        a, b = fn(k, c0, c1)
        assert (int(a[0]), int(b[0])) == expected


def test_keys_split_and_fold_in_are_independent():
    key = random.key(0)
    a, b = random.split(key)
    assert random.split(key, 5).shape == (5, 2)
    assert not np.array_equal(a, b)
    assert not np.array_equal(random.fold_in(key, 1), random.fold_in(key, 2))
    assert not np.array_equal(random.bits(a, (8,)), random.bits(b, (8,)))


def test_a_traced_seed_makes_the_same_key(x64):
    for seed in (0, 7, 2 ** 31 - 1):
        np.testing.assert_array_equal(flowjit.jit(random.key)(np.int32(seed)), random.key(seed))
    np.testing.assert_array_equal(flowjit.jit(random.key)(np.int64(3 * 2 ** 32 + 5)),
                                  random.key(3 * 2 ** 32 + 5))


def test_not_a_key_is_a_clear_error():
    with pytest.raises(TypeError, match=r"u32\[2\]"):
        random.uniform(np.array([1, 2, 3], np.uint32), (3,))
    with pytest.raises(TypeError, match="u32"):
        random.normal(np.array([1, 2], np.int32))


def draws(k):
    """One of each kind of draw, to compare eager and compiled bits."""
    k1, k2, k3, k4, k5 = random.split(k, 5)
    return (random.bits(k1, (3, 5)), random.uniform(k2, (64,), minval=-2.0, maxval=3.0),
            random.randint(k3, (64,), -5, 9), random.bernoulli(k4, 0.25, (64,)),
            random.permutation(k5, 12), random.normal(k5, (64,)))


def test_same_bits_eagerly_and_compiled():
    key = random.key(42)
    eager = draws(key)
    compiled = flowjit.jit(draws)(key)
    for a, b in zip(eager[:-1], compiled[:-1]):  # integer bits and exactly rounded float steps
        np.testing.assert_array_equal(a, b)
    # normal goes through log1p: numpy's libm eagerly, our polynomial compiled.
    np.testing.assert_allclose(compiled[-1], eager[-1], rtol=2e-6, atol=2e-6)


def test_same_bits_unfused():
    # O0 keeps one kernel per op (slow to compile: hundreds), so one stream is checked there.
    key = random.key(43)
    scaled = lambda k: random.uniform(k, (64,), minval=-2.0, maxval=3.0)  # noqa: E731
    np.testing.assert_array_equal(flowjit.jit(scaled, opt_level=0)(key), scaled(key))


def test_distributions_of_a_million_draws():
    k1, k2, k3, k4 = random.split(random.key(1), 4)
    many = flowjit.jit(lambda k1, k2: (random.uniform(k1, (10 ** 6,)),
                                        random.normal(k2, (10 ** 6,))))
    u, n = (np.asarray(a, np.float64) for a in many(k1, k2))
    assert u.min() >= 0 and u.max() < 1
    # Standard errors for 10**6 draws: mean 2.9e-4 (uniform), 1e-3 (normal); var ~1e-4, 1.4e-3.
    assert abs(u.mean() - 0.5) < 2e-3 and abs(u.var() - 1 / 12) < 1e-3
    assert abs(n.mean()) < 5e-3 and abs(n.var() - 1) < 7e-3
    assert abs(np.mean(np.abs(n) > 2) - 0.0455) < 2e-3  # the tails, where erf_inv is hardest
    b = np.asarray(random.bernoulli(k3, 0.3, (10 ** 5,)))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 6e-3
    r = np.asarray(random.randint(k4, (10 ** 5,), 3, 7))
    assert r.dtype == np.int32 and r.min() == 3 and r.max() == 6
    assert np.all(np.abs(np.bincount(r - 3) / r.size - 0.25) < 6e-3)


def test_float64_draws(x64):
    u = np.asarray(random.uniform(random.key(2), (10 ** 5,), np.float64))
    assert u.dtype == np.float64 and 0 <= u.min() and u.max() < 1
    # Below-f32 resolution bits are random too.
    assert np.mean(u != u.astype(np.float32)) > 0.99
    n = np.asarray(random.normal(random.key(3), (10 ** 5,), np.float64))
    assert abs(n.mean()) < 0.02 and abs(n.var() - 1) < 0.02


def test_erf_inv_inverts_erf(x64):
    from math import erf
    x = np.linspace(-0.999999, 0.999999, 2001)
    for dtype, tol in ((np.float32, 2e-6), (np.float64, 1e-13)):
        y = np.asarray(random.erf_inv(x.astype(dtype)), np.float64)
        back = np.array([erf(v) for v in y])
        np.testing.assert_allclose(back, x.astype(dtype), rtol=tol, atol=tol)


def test_randint_edges():
    k = random.key(5)
    np.testing.assert_array_equal(random.randint(k, (4,), 3, 3), [3] * 4)   # empty: minval
    np.testing.assert_array_equal(random.randint(k, (4,), 3, 1), [3] * 4)
    r = np.asarray(random.randint(k, (1000,), 0, 256, np.uint8))
    assert r.dtype == np.uint8 and r.max() > 200
    wide = np.asarray(random.randint(k, (1000,), -2 ** 31, 2 ** 31 - 1))
    assert wide.min() < -2 ** 30 and wide.max() > 2 ** 30


def test_permutation_is_a_uniform_permutation():
    key = random.key(3)
    p = np.asarray(flowjit.jit(lambda k: random.permutation(k, 50))(key))
    assert sorted(p.tolist()) == list(range(50)) and p.tolist() != list(range(50))
    x = np.arange(10.0) * 3
    np.testing.assert_array_equal(np.sort(random.permutation(key, x)), x)
    np.testing.assert_array_equal(random.permutation(key, 1), [0])
    assert random.permutation(key, 0).shape == (0,)
    # Where element 0 lands, over 1000 keys: each of 5 places ~200 times (sd 12.6).
    shuffle = flowjit.jit(lambda k, i: random.permutation(random.fold_in(k, i), 5))
    places = [int(np.argmax(np.asarray(shuffle(key, np.int32(i))) == 0)) for i in range(1000)]
    assert np.all(np.abs(np.bincount(places, minlength=5) - 200) < 60)


class TestSameStreamsAsJax:
    """jax.random (threefry, partitionable) as a second oracle: the same bits for the same key."""

    jax = pytest.importorskip("jax")

    @pytest.fixture(autouse=True)
    def _x64_off(self):
        # JAX's defaults (PRNGKey's seed width, uniform's float32) assume x64 off; other
        # tests may have turned it on for the whole process.
        with self.jax.enable_x64(False), flowjit.config.override("enable_x64", False):
            yield

    def test_keys(self):
        jr = self.jax.random
        for seed in (0, 42, 2 ** 31 - 1):
            np.testing.assert_array_equal(random.key(seed), jr.PRNGKey(seed))
        k, jk = random.key(42), jr.PRNGKey(42)
        np.testing.assert_array_equal(random.split(k), jr.split(jk))
        np.testing.assert_array_equal(random.split(k, 7), jr.split(jk, 7))
        np.testing.assert_array_equal(random.fold_in(k, 123456), jr.fold_in(jk, 123456))

    @pytest.mark.parametrize("shape", [(), (5,), (3, 4), (0, 2)])
    def test_bits_and_uniform(self, shape):
        jr, jnp = self.jax.random, self.jax.numpy
        k, jk = random.key(7), self.jax.random.PRNGKey(7)
        for dtype in (np.uint32, np.uint16, np.uint8):
            np.testing.assert_array_equal(random.bits(k, shape, dtype),
                                          jr.bits(jk, shape, getattr(jnp, np.dtype(dtype).name)))
        np.testing.assert_array_equal(random.uniform(k, shape), jr.uniform(jk, shape))

    def test_scaled_uniform_to_one_rounding(self):
        # XLA on CPU fuses the scale-and-shift into one FMA; we round twice, as numpy does.
        k, jk = random.key(9), self.jax.random.PRNGKey(9)
        ours = np.asarray(random.uniform(k, (1000,), minval=-3.0, maxval=2.5))
        theirs = np.asarray(self.jax.random.uniform(jk, (1000,), minval=-3.0, maxval=2.5))
        # One rounding of the product (|x| < 5.5) apart at most.
        assert np.all(np.abs(ours - theirs) <= np.spacing(np.float32(5.5)))

    def test_bernoulli_randint_normal(self):
        jr = self.jax.random
        k, jk = random.key(11), jr.PRNGKey(11)
        np.testing.assert_array_equal(random.bernoulli(k, 0.3, (500,)),
                                      jr.bernoulli(jk, 0.3, (500,)))
        for lo, hi in [(3, 17), (-100, 100), (-2 ** 31, 2 ** 31 - 1), (5, 5)]:
            np.testing.assert_array_equal(random.randint(k, (500,), lo, hi),
                                          jr.randint(jk, (500,), lo, hi))
        np.testing.assert_allclose(random.normal(k, (2000,)), jr.normal(jk, (2000,)),
                                   rtol=2e-6, atol=5e-7)

    @pytest.mark.parametrize("seed", [0, 1, 42, 2 ** 31 - 1])
    def test_permutation_is_jaxs(self, seed):
        # Sizes with one and with two rounds of sorting by random keys (two from n = 1626).
        jr = self.jax.random
        k, jk = random.key(seed), jr.PRNGKey(seed)
        for n in (0, 1, 2, 5, 12, 100, 1625, 2000):
            theirs = jr.permutation(jk, n)
            ours = random.permutation(k, n)
            assert ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs, err_msg=f"n={n}")
        np.testing.assert_array_equal(flowjit.jit(lambda k: random.permutation(k, 37))(k),
                                      jr.permutation(jk, 37))
        x = np.arange(12.0, dtype=np.float32).reshape(4, 3)
        for axis in (0, 1, -1):
            np.testing.assert_array_equal(random.permutation(k, x, axis),
                                          jr.permutation(jk, x, axis))

    def test_choice_is_jaxs(self):
        jr = self.jax.random
        p = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.1], np.float32)
        cases = [dict(a=10, shape=(5,)), dict(a=10, shape=(4,), replace=False),
                 dict(a=np.arange(20.0, dtype=np.float32).reshape(5, 4), shape=(3,), axis=1),
                 dict(a=np.arange(6) * 10, shape=(2, 25), p=p), dict(a=6, shape=(0,))]
        for seed in range(4):
            k, jk = random.key(seed), jr.PRNGKey(seed)
            for case in cases:
                ours, theirs = random.choice(k, **case), jr.choice(jk, **case)
                assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, case
                np.testing.assert_array_equal(ours, theirs, err_msg=str(case))

    def test_float64_streams(self, x64):
        jr = self.jax.random
        with self.jax.enable_x64(True):
            k, jk = random.key(13), jr.PRNGKey(13)
            np.testing.assert_array_equal(random.bits(k, (50,), np.uint64),
                                          jr.bits(jk, (50,), self.jax.numpy.uint64))
            np.testing.assert_array_equal(random.uniform(k, (50,), np.float64),
                                          jr.uniform(jk, (50,), np.float64))
            np.testing.assert_allclose(random.normal(k, (500,), np.float64),
                                       jr.normal(jk, (500,), np.float64), rtol=1e-12,
                                       atol=1e-12)
