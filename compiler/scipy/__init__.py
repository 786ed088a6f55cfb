"""scipy's API on flowjit arrays (as jax.scipy): `flowjit.scipy.linalg`."""
from flowjit.scipy import linalg  # noqa: F401
