"""An RNN over a sequence with `scan`, compiled as one loop.

    python examples/rnn_scan.py

Its gradient: reverse mode through loops (a scan's backward pass as a reverse scan) is not
built yet, so this example shows the forward pass and checks it against a Python loop.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import compiler  # noqa: E402
import compiler.numpy as fnp  # noqa: E402


@compiler.jit
def rnn(w, u, h0, xs):
    def step(h, x):
        h = fnp.tanh(h @ w + x @ u)
        return h, fnp.sum(h)
    return compiler.scan(step, h0, xs)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    w, u = rng.standard_normal((8, 8)) * 0.3, rng.standard_normal((4, 8)) * 0.3
    h0, xs = np.zeros(8), rng.standard_normal((20, 4))
    h, ys = rnn(w, u, h0, xs)
    check = h0
    for x in xs:
        check = np.tanh(check @ w + x @ u)
    print("final state matches a Python loop:", bool(np.allclose(h, check)))
