"""The seed's Collatz loop, `while a != 1`, compiled: the loop runs inside the program.

    python examples/collatz.py

`flowjit.while_loop` traces the condition and the body once into XLA's `while`; the
compiled program loops with no Python in it. The same function also runs eagerly (no jit),
as a plain Python loop, and both are checked against the textbook loop below.
"""

import numpy as np

import flowjit
import flowjit.numpy as fnp


def collatz_steps(a):
    """Steps the Collatz map takes from `a` down to 1."""
    def body(state):
        a, steps = state
        return fnp.where(a % 2 == 0, a // 2, 3 * a + 1), steps + 1
    return flowjit.while_loop(lambda state: state[0] != 1, body, (a, np.int32(0)))[1]


def python_collatz_steps(a: int) -> int:
    steps = 0
    while a != 1:
        a = a // 2 if a % 2 == 0 else 3 * a + 1
        steps += 1
    return steps


compiled = flowjit.jit(collatz_steps)

if __name__ == "__main__":
    for start in (1, 6, 27, 97, 871, 77_031):
        steps = int(compiled(np.int32(start)))
        assert steps == python_collatz_steps(start) == int(collatz_steps(np.int32(start)))
        print(f"collatz({start}) reaches 1 after {steps} steps")
    print("compiled, eager and Python loops agree")
    print("the loop in the IR:", next(line.strip() for line in
                                      compiled.lower(np.int32(27)).as_text().splitlines()
                                      if " while(" in line)[:100], "...")
