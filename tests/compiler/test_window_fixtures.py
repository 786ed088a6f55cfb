"""The JAX-printed pooling, pooling-gradient and cumulative programs (tests/fixtures) run
through `flowjit run` at O0 and O2, and the same programs written with flowjit's API match
JAX's recorded outputs."""
from __future__ import annotations

import os

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import lax, nn
from flowjit.cli import main
from tests.ir.test_jax_hlo import FIXTURES, load

pytestmark = pytest.mark.usefixtures("no_x64")


@pytest.mark.parametrize("level", ["0", "2"])
@pytest.mark.parametrize("name", ["pooling", "pooling_grad", "cumulative"])
def test_flowjit_run_matches_jax(name, level, tmp_path, capsys):
    _, args, expected = load(name)
    np.savez(tmp_path / "in.npz", **{f"a{k}": a for k, a in enumerate(args)})
    assert main(["run", os.path.join(FIXTURES, f"{name}.hlo"), "--inputs",
                 str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz"),
                 "--opt-level", level]) == 0
    with np.load(tmp_path / "out.npz") as got:
        for k, want in enumerate(expected):
            np.testing.assert_allclose(got[f"r{k}"], want, rtol=2e-5, atol=2e-6)


def _pooling(x):
    return nn.max_pool(x, (3, 3), (2, 2), "SAME"), nn.avg_pool(x, (2, 2), (2, 2))


def _pooling_grad(x):
    def loss(x):
        max_3x3, avg_2x2 = _pooling(x)
        return fnp.sum(max_3x3 ** 2) + fnp.sum(fnp.sin(avg_2x2))
    return flowjit.grad(loss)(x)


def _cumulative(x, positive):
    return (fnp.cumsum(x, axis=1), lax.cumsum(x, axis=0, reverse=True),
            fnp.cumprod(positive, axis=1), lax.cummax(x, axis=1),
            lax.cummin(x, axis=0, reverse=True))


@pytest.mark.parametrize("name, fn", [("pooling", _pooling), ("pooling_grad", _pooling_grad),
                                      ("cumulative", _cumulative)])
def test_the_api_computes_what_jax_recorded(name, fn):
    _, args, expected = load(name)
    got = flowjit.jit(fn)(*args)
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    assert len(got) == len(expected)
    for g, want in zip(got, expected):
        np.testing.assert_allclose(g, want, rtol=2e-5, atol=2e-6)
