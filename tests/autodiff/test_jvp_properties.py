"""Property: for random programs, jvp(f)(x, v) is the float64 central difference
(f(x + h v) - f(x - h v)) / 2h of the same program evaluated in numpy."""
import numpy as np
from hypothesis import given, settings, strategies as st

import flowjit
import flowjit.numpy as fnp
from tests.finite_differences import central_difference

# name -> (arity, flowjit version, numpy float64 version); smooth on the values drawn.
OPS = {
    "sin": (1, fnp.sin, np.sin),
    "tanh": (1, fnp.tanh, np.tanh),
    "exp_small": (1, lambda x: fnp.exp(0.3 * x), lambda x: np.exp(0.3 * x)),
    "log1p_sq": (1, lambda x: fnp.log1p(x * x), lambda x: np.log1p(x * x)),
    "cumsum": (1, lambda x: fnp.cumsum(x), np.cumsum),
    "reverse": (1, lambda x: x[::-1], lambda x: x[::-1]),
    "roll_dot": (1, lambda x: fnp.outer(x, x) @ fnp.sin(x) * 0.1,
                 lambda x: np.outer(x, x) @ np.sin(x) * 0.1),
    "add": (2, lambda x, y: x + y, lambda x, y: x + y),
    "mul": (2, lambda x, y: x * y, lambda x, y: x * y),
    "div": (2, lambda x, y: x / (1.5 + y * y), lambda x, y: x / (1.5 + y * y)),
    "sum_bcast": (2, lambda x, y: x * y.sum(), lambda x, y: x * y.sum()),
}

programs = st.lists(
    st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 100), st.integers(0, 100)),
    min_size=1, max_size=6)


def run(program, x, table_index):
    """Each step applies an op to earlier values (chosen by index); returns the sum of
    squares of the last value."""
    values = [x]
    for name, i, j in program:
        arity, *impls = OPS[name]
        a, b = values[i % len(values)], values[j % len(values)]
        values.append(impls[table_index](a) if arity == 1 else impls[table_index](a, b))
    return (values[-1] * values[-1]).sum()


@settings(max_examples=60, deadline=None)
@given(programs, st.integers(0, 2 ** 31 - 1))
def test_jvp_equals_central_difference(program, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, 4)
    v = rng.uniform(-1, 1, 4)
    _, tangent = flowjit.jvp(lambda x: run(program, x, 0), (x.astype(np.float32),),
                             (v.astype(np.float32),))
    along = central_difference(lambda h: run(program, x + h * v, 1), [np.zeros(1)])[0]
    assert np.isclose(float(tangent), along, rtol=2e-3, atol=2e-3), (program, tangent, along)
