"""jax.scipy.linalg's names: triangular solves and Cholesky / LU factor-and-solve pairs,
running LAPACK as JAX does on the CPU (see flowjit.linalg)."""
from flowjit.linalg import (cho_factor, cho_solve, lu_factor, lu_solve,  # noqa: F401
                            solve_triangular)
from flowjit.linalg import cholesky as _numpy_cholesky
from flowjit.linalg import det, inv, qr, svd, eigh  # noqa: F401 - also scipy's names


def cholesky(a, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True):
    """jax.scipy.linalg.cholesky: the upper factor by default (scipy's convention)."""
    return _numpy_cholesky(a, upper=not lower, symmetrize_input=False)
