"""simplify: a scatter-add with one update per row (the gradient of take_along_axis)
becomes compare + select, bit for bit what the scatter computes; other scatters stay."""
import numpy as np
import pytest

from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.passes import PassManager

ADD = """
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
"""


def module(index_dims: str, update_dims: str, batching: str = "{0}", index_batching="{0}",
           operand: str = "f32[4,6]", target: str = "{1}"):
    return parse_module(f"""HloModule m
{ADD}
ENTRY e {{
  x = {operand} parameter(0)
  i = s32[{index_dims}] parameter(1)
  u = f32[{update_dims}] parameter(2)
  ROOT s = {operand} scatter(x, i, u), update_window_dims={{}},
      inserted_window_dims={target}, scatter_dims_to_operand_dims={target},
      input_batching_dims={batching}, scatter_indices_batching_dims={index_batching},
      index_vector_dim={len(index_dims.split(','))}, to_apply=add
}}""")


def simplified(m):
    PassManager(["simplify", "dce"], verify=True).run(m)
    return [i.opcode for i in m.entry.instructions]


def args_for(m, seed=0):
    rng = np.random.default_rng(seed)
    x, i, u = (p.shape for p in m.entry.parameters)
    values = rng.standard_normal(x.dims).astype(np.float32)
    values[0, 0] = -0.0                       # -0.0 + 0.0 and -0.0 + -0.0 stay exact
    updates = rng.standard_normal(u.dims).astype(np.float32)
    updates.reshape(-1)[:2] = [0.0, -0.0]
    index = rng.integers(-2, 8, i.dims).astype(np.int32)   # some out of range: dropped
    return [values, index, updates]


@pytest.mark.parametrize("dims", [("4,1", "4,1"), ("1,4", "1,4")])
def test_one_update_per_row_becomes_a_select(dims):
    index_dims, update_dims = dims
    batching = "{0}" if index_dims == "4,1" else "{1}"
    m = module(index_dims, update_dims, index_batching=batching)
    args = args_for(m)
    expected = evaluate(m, args)
    ops = simplified(m)
    assert "scatter" not in ops and "select" in ops and "iota" in ops
    got = evaluate(m, args)
    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()
    want = args[0].copy()                     # numpy: one add per in-range index
    for r in range(4):
        k = int(args[1].reshape(-1)[r])
        if 0 <= k < 6:
            want[r, k] += args[2].reshape(-1)[r]
    assert np.asarray(got).tobytes() == want.tobytes()


def test_several_updates_per_row_keep_the_scatter():
    m = module("4,2", "4,2")
    assert "scatter" in simplified(m)


def test_a_scatter_with_a_window_keeps_the_scatter():
    m = parse_module(f"""HloModule m
{ADD}
ENTRY e {{
  x = f32[4,6,2] parameter(0)
  i = s32[4,1] parameter(1)
  u = f32[4,1,2] parameter(2)
  ROOT s = f32[4,6,2] scatter(x, i, u), update_window_dims={{2}}, inserted_window_dims={{1}},
      scatter_dims_to_operand_dims={{1}}, input_batching_dims={{0}},
      scatter_indices_batching_dims={{0}}, index_vector_dim=2, to_apply=add
}}""")
    assert "scatter" in simplified(m)
