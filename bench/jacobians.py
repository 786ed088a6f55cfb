"""jacfwd and jacrev of a 256 -> 256 function (tanh(W v) * v), flowjit jit vs JAX jit,
interleaved medians after warm-up; the Jacobians are compared first.

    python -m bench.jacobians [--repeats 30]
"""
from __future__ import annotations

import argparse

import numpy as np

from bench.timing import format_table, interleaved_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    import jax
    import jax.numpy as jnp

    import flowjit
    import flowjit.numpy as fnp
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    x = rng.standard_normal(256).astype(np.float32)
    rows = []
    for name in ("jacfwd", "jacrev"):
        ours = flowjit.jit(getattr(flowjit, name)(lambda v: fnp.tanh(w @ v) * v))
        theirs = jax.jit(getattr(jax, name)(lambda v: jnp.tanh(w @ v) * v))
        np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-5)
        times = interleaved_medians({"flowjit": lambda: ours(x),
                                     "JAX": lambda: jax.block_until_ready(theirs(x))},
                                    args.repeats)
        rows.append([f"{name} 256->256", f"{times['flowjit'] * 1e3:.3f}",
                     f"{times['JAX'] * 1e3:.3f}", f"{times['flowjit'] / times['JAX']:.2f}"])
    print(format_table(["workload", "flowjit ms", "JAX ms", "flowjit/JAX"], rows))


if __name__ == "__main__":
    main()
