"""The seed talk's Collatz loop (`while a != 1`), compiled: the loop runs in the program.

    python examples/collatz.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import compiler  # noqa: E402
import compiler.numpy as fnp  # noqa: E402


@compiler.jit
def collatz_steps(a):
    def body(state):
        a, steps = state
        return fnp.where(a % 2 == 0, a // 2, 3 * a + 1), steps + 1
    return compiler.while_loop(lambda s: s[0] != 1, body, (a, np.int32(0)))[1]


if __name__ == "__main__":
    for start in (6, 27, 97, 871):
        print(f"collatz({start}) reaches 1 after {int(collatz_steps(np.int32(start)))} steps")
