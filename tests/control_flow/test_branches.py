"""cond and switch against Python ifs: eager, reference, compiled O0/O2."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import cond, switch
from tests.control_flow.helpers import check, lowered_module


@pytest.mark.parametrize("p", [True, False])
def test_cond_picks_a_branch(p):
    def f(p, x):
        return cond(p, lambda x: x + 1, lambda x: x * 2, x)
    x = np.arange(3, dtype=np.float32)
    check(f, x + 1 if p else x * 2, np.bool_(p), x)


@pytest.mark.parametrize("p", [-2.5, 0.0, 3])
def test_cond_on_a_number_means_nonzero(p):
    def f(p, x):
        return cond(p, lambda x: x - 1, lambda x: x + 1, x)
    check(f, np.float32(9 if p else 11), np.asarray(p, np.float32), np.float32(10))


def test_cond_with_pytree_operands_and_results():
    def f(x, y):
        return cond(x.sum() > y["s"], lambda a, b: {"out": (a * 2, b["s"])},
                    lambda a, b: {"out": (a, b["s"] - 1)}, x, y)
    x = np.ones(4, np.float32)
    check(f, {"out": (x * 2, np.float32(3))}, x, {"s": np.float32(3)})
    check(f, {"out": (x, np.float32(4))}, x, {"s": np.float32(5)})


def test_branches_that_close_over_different_values():
    def f(p, x, a, b):
        # Each branch gets its own operand tuple: the operands plus what it closes over.
        return cond(p > 0, lambda: x * a, lambda: x - b)
    x = np.arange(3, dtype=np.float64)
    check(f, x * 3, np.float64(1), x, np.float64(3), np.float64(4))
    check(f, x - 4, np.float64(-1), x, np.float64(3), np.float64(4))
    module = lowered_module(f, np.float64(1), x, np.float64(3), np.float64(4))
    inst = next(i for i in module.entry.instructions if i.opcode == "conditional")
    for branch, operand in zip([inst.calls["true_computation"], inst.calls["false_computation"]],
                               inst.operands[1:]):
        assert [p.shape for p in branch.parameters] == [operand.shape]


def test_weak_scalar_branch_takes_the_other_branch_type():
    def f(x):
        return cond(x > 0, lambda: x, lambda: 0)
    assert flowjit.jit(f)(np.int32(5)).dtype == np.int32
    check(f, 0, np.int32(-5))


def test_nested_cond_in_cond():
    def f(x):
        return cond(x > 0, lambda: cond(x > 10, lambda: x * 100, lambda: x * 10), lambda: -x)
    for v, expected in [(20.0, 2000.0), (5.0, 50.0), (-3.0, 3.0)]:
        check(f, expected, np.float64(v))


@pytest.mark.parametrize("index,expected", [(-7, 0), (0, 0), (1, 1), (2, 2), (3, 2), (99, 2)])
def test_switch_clamps_the_index(index, expected):
    branches = [lambda x: x + 100, lambda x: x * 10, lambda x: -x]

    def f(i, x):
        return switch(i, branches, x)
    x = np.float32(3)
    check(f, branches[expected](x), np.int32(index), x)
    module = lowered_module(f, np.int32(index), x)
    inst = next(i for i in module.entry.instructions if i.opcode == "conditional")
    assert len(inst.calls["branch_computations"]) == 3
    assert inst.operands[0].shape.dtype.value == "s32"


def test_switch_with_one_branch_and_int64_index():
    check(lambda i, x: switch(i, [lambda x: x * 2], x), np.float32(4), np.int64(5),
          np.float32(2))
    check(lambda i, x: switch(i, [lambda: x, lambda: x + i.astype(np.float32)]),
          np.float32(7), np.int64(5), np.float32(2))


def test_cond_returning_nothing_but_a_python_number_in_both_branches():
    check(lambda p: cond(p, lambda: 1.5, lambda: 2.5), 2.5, np.bool_(False))


def test_eager_cond_runs_only_the_taken_branch():
    ran = []
    cond(np.bool_(True), lambda: ran.append("t"), lambda: ran.append("f"))
    assert ran == ["t"]


def test_select_like_cond_on_arrays_through_where_still_differs_from_cond():
    # cond needs a scalar predicate; fnp.where is the elementwise choice.
    with pytest.raises(TypeError, match="scalar"):
        flowjit.jit(lambda x: cond(x > 0, lambda: x, lambda: -x))(np.ones(3))
    np.testing.assert_allclose(flowjit.jit(lambda x: fnp.where(x > 0, x, -x))(
        np.array([-1.0, 2.0])), [1.0, 2.0])


def test_branch_work_on_closed_over_values_stays_in_the_branch():
    def f(p, x):
        return cond(p, lambda: fnp.tanh(x @ x.T), lambda: x * 0.0)
    x = np.ones((4, 4), np.float32)
    module = lowered_module(f, np.bool_(True), x)
    assert "dot" not in {i.opcode for i in module.entry.instructions}
    branch = next(i for i in module.entry.instructions if i.opcode == "conditional")
    assert "dot" in {i.opcode for i in branch.calls["true_computation"].instructions}
