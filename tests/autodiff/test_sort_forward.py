"""Forward mode and vmap of sort and top_k, against JAX on the same programs."""
import numpy as np
import pytest

import flowjit
import flowjit.lax as flax
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy

X = np.random.default_rng(0).standard_normal((4, 3, 7)).astype(np.float32)
T = np.random.default_rng(1).standard_normal((4, 3, 7)).astype(np.float32)

PROGRAMS = {
    "sort": (lambda v: fnp.sort(v, axis=-1) * 2, lambda v: jnp.sort(v, axis=-1) * 2),
    "sort axis 0": (lambda v: fnp.sort(v, axis=0), lambda v: jnp.sort(v, axis=0)),
    "top_k values": (lambda v: flax.top_k(v, 3)[0], lambda v: jax.lax.top_k(v, 3)[0]),
    "sort_key_val": (lambda v: flax.sort_key_val(v, v * v)[1],
                     lambda v: jax.lax.sort_key_val(v, v * v)[1]),
    "median": (lambda v: fnp.median(v, axis=1), lambda v: jnp.median(v, axis=1)),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_jvp_matches_jax(name):
    ours, theirs = PROGRAMS[name]
    got = flowjit.jvp(ours, (X,), (T,))
    want = jax.jvp(theirs, (X,), (T,))
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(PROGRAMS))
@pytest.mark.parametrize("in_axes", [0, 1, 2])
def test_vmap_matches_jax(name, in_axes):
    ours, theirs = PROGRAMS[name]
    got = np.asarray(flowjit.vmap(ours, in_axes=in_axes)(X))
    want = np.asarray(jax.vmap(theirs, in_axes=in_axes)(X))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_vmap_of_argsort_and_top_k_indices_match_jax():
    np.testing.assert_array_equal(flowjit.vmap(lambda v: fnp.argsort(v, axis=-1), 2)(X),
                                  jax.vmap(lambda v: jnp.argsort(v, axis=-1), 2)(X))
    np.testing.assert_array_equal(flowjit.vmap(lambda v: flax.top_k(v, 3)[1], 1)(X),
                                  jax.vmap(lambda v: jax.lax.top_k(v, 3)[1], 1)(X))
