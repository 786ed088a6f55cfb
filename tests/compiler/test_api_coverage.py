"""docs/api_coverage.md is current against the installed JAX, and the names issue 15 asked
for exist with JAX-compatible signatures (tests/compiler/api_names.py builds the table)."""
import functools
import inspect

import pytest

from tests.compiler import api_names

pytest.importorskip("jax")

# Issue 15's everyday names this branch added (sort, cumulative ops and linalg are others').
ISSUE_15 = {
    "numpy": """split array_split tril triu diag diagonal trace roll take_along_axis
        put_along_axis meshgrid kron cross diff isclose allclose arcsin arccos arctan arctan2
        arcsinh arccosh arctanh sinh cosh hypot copysign nansum nanmean nanmax nanmin nanprod
        nanstd nanvar count_nonzero average cov corrcoef interp bincount atleast_1d atleast_2d
        broadcast_arrays deg2rad degrees rad2deg radians dstack fliplr flipud fmax fmin hsplit
        vsplit logspace ptp rot90 signbit sinc trapezoid nanargmax nanargmin isin""",
    "nn": """relu6 selu celu hard_tanh mish glu standardize dot_product_attention hard_sigmoid
        hard_silu hard_swish swish soft_sign""",
    "lax": """square integer_pow lgamma digamma erf_inv erfc dynamic_slice_in_dim
        dynamic_update_slice_in_dim dynamic_index_in_dim slice_in_dim index_in_dim reduce_max
        reduce_min reduce_sum reduce_prod reduce_and reduce_or argmax argmin batch_matmul
        stop_gradient map switch cond scan fori_loop while_loop asin acos atan sinh cosh
        asinh acosh atanh expand_dims squeeze""",
    "random": """categorical truncated_normal gumbel exponential laplace logistic""",
}


@functools.lru_cache(maxsize=1)
def table():
    return api_names.rows()


def test_the_committed_table_is_current():
    expected = api_names.render(table())
    assert api_names.DOC.read_text() == expected, \
        "run `python -m tests.compiler.api_names` and commit docs/api_coverage.md"


@pytest.mark.parametrize("module", sorted(ISSUE_15))
def test_issue_15_names_exist_with_compatible_signatures(module):
    rows = {r.name: r for r in table() if r.module == module}
    for name in ISSUE_15[module].split():
        assert name in rows, f"{name} is missing from api_names.COMMON[{module!r}]"
        assert rows[name].exists, f"flowjit.{module}.{name} does not exist"
        assert rows[name].signature in ("same", "compatible"), (name, rows[name].signature)


# --- the signature comparison itself, on hand-made functions ------------------------------

def _jax_like(a, b=1, /, c=2, *, d=3, out=None):
    pass


@pytest.mark.parametrize("ours, expected", [
    (lambda a, b=1, /, c=2, *, d=3, out=None: None, "same"),
    (lambda x, y=1, c=2, *, d=3: None, "compatible"),          # positional-only: any name
    (lambda a, b=1, c=2, **kwargs: None, "compatible"),        # d through **kwargs
    (lambda a, b=1, c=2: None, "differs: d"),
    (lambda a, b=1, d=3, c=2: None, "differs: c (position)"),
    (lambda a, b=1: None, "differs: c, d"),
])
def test_signature_comparison(ours, expected):
    assert api_names.compare_signatures(ours, _jax_like) == expected
    assert inspect.signature(_jax_like)   # (the reference itself is a plain function)
