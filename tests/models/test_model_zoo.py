"""The benchmark model zoo (bench/models) at small sizes: every model's forward, gradient
and training step under flowjit.jit matches JAX's on the same values."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")

from bench.models.zoo import flowjit_backend, jax_backend, workloads  # noqa: E402

WORKLOADS = {w.name: w for w in workloads(scale=0.1)}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_model_matches_jax(name):
    work = WORKLOADS[name]
    ours, theirs = flowjit_backend(), jax_backend()
    got = ours.jit(work.make_fn(ours))(*work.args)
    want = theirs.jit(work.make_fn(theirs))(*work.args)
    got_leaves = jax.tree_util.tree_leaves(got)
    want_leaves = jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        w = np.asarray(w)
        scale = float(np.max(np.abs(w))) or 1.0
        np.testing.assert_allclose(np.asarray(g), w, rtol=2e-3, atol=2e-4 * scale)
