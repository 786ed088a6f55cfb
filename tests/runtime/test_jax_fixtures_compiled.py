"""HLO printed by JAX, compiled by flowjit (O0 and O2), matches JAX's recorded outputs.

tests/fixtures/NAME.npz holds the inputs JAX ran on and JAX's own outputs (see
tests/fixtures/make_jax_fixtures.py); that is the oracle here.
"""
import numpy as np
import pytest

from flowjit.passes import optimize
from flowjit.runtime.executable import compile_module
from tests.ir.test_jax_hlo import NAMES, load
from flowjit.ir.parser import parse_module


@pytest.mark.parametrize("name", NAMES)
def test_compiled_fixture_matches_jax(name, opt_level):
    text, args, expected = load(name)
    module, _ = optimize(parse_module(text), opt_level=opt_level)
    outputs = compile_module(module)(*args)
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
        else:
            np.testing.assert_array_equal(got, want)
