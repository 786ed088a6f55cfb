"""A fori_loop of 1000 small elementwise steps compiled as one program, vs the same loop in
Python calling a jitted step, measured side by side in one run (medians after warm-up).

    python -m bench.loops [--steps 1000] [--size 256]

Also shown for scale: the loop in plain numpy, and jax.lax.fori_loop under jax.jit when JAX
is installed. The ratio column is each row's time over the compiled loop's.
"""
from __future__ import annotations

import argparse

import numpy as np

import flowjit
import flowjit.numpy as fnp
from bench.timing import format_table, median_time


def step(i, x):
    return fnp.tanh(x * 0.9 + 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    steps = args.steps
    x = np.linspace(-1, 1, args.size).astype(np.float32)
    in_program = flowjit.jit(lambda x: flowjit.fori_loop(0, steps, step, x))
    jitted_step = flowjit.jit(lambda x: step(0, x))

    def python_loop():
        y = x
        for i in range(steps):
            y = jitted_step(y)
        return y

    def numpy_loop():
        y = x
        for i in range(steps):
            y = np.tanh(y * np.float32(0.9) + np.float32(0.1))
        return y
    expected = numpy_loop()
    np.testing.assert_allclose(in_program(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(python_loop(), expected, rtol=1e-5, atol=1e-6)
    rows = [("flowjit fori_loop in the program", median_time(lambda: in_program(x), repeats=21)),
            ("Python loop of jitted flowjit steps", median_time(python_loop, repeats=5)),
            ("Python loop of numpy steps", median_time(numpy_loop, repeats=5))]
    try:
        import jax
        jax_loop = jax.jit(lambda x: jax.lax.fori_loop(
            0, steps, lambda i, y: jax.numpy.tanh(y * 0.9 + 0.1), x))
        np.testing.assert_allclose(np.asarray(jax_loop(x)), expected, rtol=1e-5, atol=1e-6)
        rows.append(("jax.lax.fori_loop under jax.jit", median_time(lambda: jax_loop(x),
                                                                      repeats=21)))
    except ImportError:
        pass
    base = rows[0][1]
    print(f"{steps} steps of tanh(x * 0.9 + 0.1) on f32[{args.size}]")
    print(format_table(["", "ms (median)", "x compiled loop"],
                       [[name, f"{t * 1e3:.3f}", f"{t / base:.1f}"] for name, t in rows]))


if __name__ == "__main__":
    main()
