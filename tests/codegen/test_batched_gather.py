"""gather and scatter with batching dims, compiled (O0 and O2) for the CPU, against numpy
loops written from XLA's operation semantics, and JAX-printed programs that use them run
through `flowjit run` against JAX's recorded outputs. (PTX: tests/cuda, same cases.)"""
import os

import numpy as np
import pytest

from flowjit.cli import main
from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from flowjit.runtime.executable import compile_module
from tests.cuda.cases import CASES
from tests.ir.test_jax_hlo import FIXTURES, load


def compiled(name: str, opt_level: int, *args):
    module, _ = optimize(parse_module(CASES[name][1]), opt_level=opt_level)
    return compile_module(module)(*args)


def test_gather_with_batching_dims_out_of_order(opt_level):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 6, 2)).astype(np.float32)
    idx = rng.integers(-2, 8, (2, 3, 5, 2)).astype(np.int32)  # some out of range: clamped
    (got,) = compiled("gather_batching_dims", opt_level, x, idx)
    want = np.empty((2, 2, 3, 5), np.float32)
    for i0, i1, i2 in np.ndindex(2, 3, 5):
        start2 = min(max(idx[i0, i1, i2, 0], 0), 5)     # operand dim 2 (size 6, slice 1)
        start0 = min(max(idx[i0, i1, i2, 1], 0), 2)     # operand dim 0 (size 4, slice 2)
        for o in range(2):   # operand dim 1 pairs with index dim 1, dim 3 with index dim 0
            want[i0, o, i1, i2] = x[start0 + o, i1, start2, i0]
    np.testing.assert_array_equal(got, want)


def test_scatter_add_with_batching_dims_accumulates_and_drops(opt_level):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7, 4)).astype(np.float32)
    idx = rng.integers(-1, 9, (5, 3)).astype(np.int32)
    idx[0, 1] = idx[3, 1] = 2                                # a duplicate in one batch
    v = rng.standard_normal((5, 3, 2)).astype(np.float32)
    (got,) = compiled("scatter_batching_dims", opt_level, x, idx, v)
    want = x.astype(np.float64)
    for n, b in np.ndindex(5, 3):
        if 0 <= idx[n, b] < 7:   # out of range: the whole window is dropped
            want[b, idx[n, b], :2] += v[n, b]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["take_along_axis", "cross_entropy", "cross_entropy_grad",
                                  "vmap_gather", "vmap_scatter_add"])
@pytest.mark.parametrize("level", ["0", "2"])
def test_flowjit_run_matches_jax(name, level, tmp_path, capsys):
    _, args, expected = load(name)
    np.savez(tmp_path / "in.npz", **{f"a{k}": a for k, a in enumerate(args)})
    assert main(["run", os.path.join(FIXTURES, f"{name}.hlo"), "--inputs",
                 str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz"),
                 "--opt-level", level, "--check"]) == 0
    capsys.readouterr()
    with np.load(tmp_path / "out.npz") as out:
        for k, want in enumerate(expected):
            np.testing.assert_allclose(out[f"r{k}"], want, rtol=2e-5, atol=2e-6)
