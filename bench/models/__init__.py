"""The model zoo: real models written once against the numpy / lax / nn API, run on flowjit
and on JAX side by side (`python -m bench.models`)."""
