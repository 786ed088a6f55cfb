"""scipy's API on flowjit arrays (as jax.scipy): `flowjit.scipy.linalg`."""
import flowjit.numpy  # noqa: F401 - first: it loads the API in an order without import cycles
from flowjit.scipy import linalg  # noqa: F401
