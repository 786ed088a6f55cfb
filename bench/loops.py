"""A fori_loop of 1000 small elementwise steps compiled as one program, vs the same loop in
Python calling a jitted step. Medians after warm-up, one run.

    python -m bench.loops
"""
import numpy as np

import compiler
import compiler.numpy as fnp
from bench.timing import format_table, median_time

STEPS = 1000


def step(i, x):
    return fnp.tanh(x * 0.9 + 0.1)


def main() -> None:
    x = np.linspace(-1, 1, 256).astype(np.float32)
    in_program = compiler.jit(lambda x: compiler.fori_loop(0, STEPS, step, x))
    jitted_step = compiler.jit(lambda x: step(0, x))

    def python_loop():
        y = x
        for i in range(STEPS):
            y = jitted_step(y)
        return y
    np.testing.assert_allclose(in_program(x), python_loop(), rtol=1e-5)
    compiled = median_time(lambda: in_program(x), repeats=15)
    looped = median_time(python_loop, repeats=5)
    print(format_table(["", "ms (median)", "ratio"],
                       [["fori_loop in the program", f"{compiled * 1e3:.3f}", "1.00"],
                        ["Python loop of jitted steps", f"{looped * 1e3:.2f}",
                         f"{looped / compiled:.1f}"]]))


if __name__ == "__main__":
    main()
