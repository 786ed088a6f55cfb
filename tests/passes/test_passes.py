"""Each pass on small hand-written HLO: text in, the expected text (or what matters) out."""
import numpy as np

from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.passes import PassManager, cost_analysis, explain_fusion, memory_analysis, optimize


def run(text: str, *passes: str):
    module = parse_module(text)
    PassManager(list(passes), verify=True).run(module)
    return module


def body(module) -> list[str]:
    """The entry's instructions as `opcode(operand opcodes)` lines, names left out."""
    return [f"{i.opcode}({', '.join(o.opcode for o in i.operands)})"
            for i in module.entry.instructions]


def test_dce_removes_unused_and_keeps_parameters():
    m = run("""HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  dead = f32[4] exponential(x)
  ROOT r = f32[4] negate(x)
}""", "dce")
    assert body(m) == ["parameter()", "parameter()", "negate(parameter)"]


def test_cse_merges_commutative_duplicates():
    m = run("""HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  y = f32[4] parameter(1)
  a = f32[4] add(x, y)
  b = f32[4] add(y, x)
  ROOT r = f32[4] multiply(a, b)
}""", "cse")
    root = m.entry.root
    assert root.operands[0] is root.operands[1]


def test_fold_constants_evaluates_but_never_bloats():
    m = run("""HloModule m
ENTRY e {
  a = f32[2] constant({1, 2})
  b = f32[2] constant({3, 4})
  c = f32[2] add(a, b)
  s = f32[] constant(1)
  big = f32[4096] broadcast(s), dimensions={}
  ROOT t = (f32[2], f32[4096]) tuple(c, big)
}""", "fold-constants", "dce")
    c = m.entry.root.operands[0]
    assert c.opcode == "constant" and list(c.literal) == [4.0, 6.0]
    assert m.entry.root.operands[1].opcode == "broadcast"  # not a 4096-element literal


def test_simplify_identities_keep_float_semantics():
    m = run("""HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  one = f32[] constant(1)
  ones = f32[4] broadcast(one), dimensions={}
  zero = f32[] constant(0)
  zeros = f32[4] broadcast(zero), dimensions={}
  a = f32[4] multiply(x, ones)
  b = f32[4] add(a, zeros)
  n = f32[4] negate(b)
  ROOT r = f32[4] negate(n)
}""", "simplify", "dce")
    # x*1 and --y go; x+0.0 stays (it turns -0.0 into +0.0).
    assert body(m)[-1] == "add(parameter, broadcast)"


def test_simplify_divide_by_power_of_two_only():
    m = run("""HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  four = f32[] constant(4)
  three = f32[] constant(3)
  b4 = f32[4] broadcast(four), dimensions={}
  b3 = f32[4] broadcast(three), dimensions={}
  d4 = f32[4] divide(x, b4)
  ROOT d3 = f32[4] divide(d4, b3)
}""", "simplify", "dce")
    ops = [i.opcode for i in m.entry.instructions]
    assert ops.count("multiply") == 1 and ops.count("divide") == 1


def test_simplify_collapses_jax_broadcast_in_dim_chain():
    m = run("""HloModule m
ENTRY e {
  b = f32[16] parameter(0)
  r1 = f32[1,16] reshape(b)
  bc = f32[1,16] broadcast(r1), dimensions={0,1}
  r2 = f32[16] reshape(bc)
  ROOT out = f32[4,16] broadcast(r2), dimensions={1}
}""", "simplify", "dce")
    assert body(m) == ["parameter()", "broadcast(parameter)"]


def test_inline_calls():
    m = run("""HloModule m
relu {
  a = f32[4] parameter(0)
  z = f32[] constant(0)
  zb = f32[4] broadcast(z), dimensions={}
  ROOT m = f32[4] maximum(a, zb)
}
ENTRY e {
  x = f32[4] parameter(0)
  ROOT c = f32[4] call(x), to_apply=relu
}""", "inline-calls")
    assert "call" not in [i.opcode for i in m.entry.instructions]
    assert len(m.computations) == 1


SOFTMAX = """HloModule m
max_r {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}
add_r {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY e {
  x = f32[8,32] parameter(0)
  ninf = f32[] constant(-inf)
  mx = f32[8] reduce(x, ninf), dimensions={1}, to_apply=max_r
  mb = f32[8,32] broadcast(mx), dimensions={0}
  d = f32[8,32] subtract(x, mb)
  e = f32[8,32] exponential(d)
  zero = f32[] constant(0)
  s = f32[8] reduce(e, zero), dimensions={1}, to_apply=add_r
  sb = f32[8,32] broadcast(s), dimensions={0}
  ROOT out = f32[8,32] divide(e, sb)
}"""


def test_fusion_makes_softmax_one_kernel_and_keeps_results():
    module = parse_module(SOFTMAX)
    x = np.random.default_rng(0).standard_normal((8, 32)).astype(np.float32)
    expected = evaluate(module, [x])
    fused, _ = optimize(parse_module(SOFTMAX), opt_level=2, verify=True)
    kernels = [i for i in fused.entry.instructions if i.opcode not in ("parameter",)]
    assert [k.opcode for k in kernels] == ["fusion"]
    assert kernels[0].attrs["kind"] == "kInput"
    np.testing.assert_array_equal(evaluate(fused, [x]), expected)
    assert "kind=kInput, calls=%fused_computation" in fused.to_text()


def test_fusion_dense_bias_relu_is_one_output_fusion():
    m = run("""HloModule m
ENTRY e {
  x = f32[4,8] parameter(0)
  w = f32[8,16] parameter(1)
  b = f32[16] parameter(2)
  d = f32[4,16] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  bb = f32[4,16] broadcast(b), dimensions={1}
  a = f32[4,16] add(d, bb)
  z = f32[] constant(0)
  zb = f32[4,16] broadcast(z), dimensions={}
  ROOT r = f32[4,16] maximum(a, zb)
}""", "fusion", "dce")
    fusions = [i for i in m.entry.instructions if i.opcode == "fusion"]
    assert len(fusions) == 1 and fusions[0].attrs["kind"] == "kOutput"


def test_fusion_never_duplicates_expensive_work_and_explains_why():
    text = """HloModule m
ENTRY e {
  x = f32[64] parameter(0)
  e = f32[64] exponential(x)
  a = f32[64] add(e, x)
  b = f32[64] multiply(e, x)
  ROOT t = (f32[64], f32[64]) tuple(a, b)
}"""
    before = parse_module(text)
    m = run(text, "fusion", "dce")
    assert [i.opcode for i in m.entry.instructions].count("exponential") == 1
    why = explain_fusion(before, m)
    assert "exponential is expensive and has 1 user(s) outside this fusion" in why


def test_fusion_avoids_cycles():
    # p feeds both the fusion candidate (via q) and an unfusible op (scatter) whose result
    # the candidate also uses: fusing p into it would create a cycle through the scatter.
    m = run("""HloModule m
set {
  a = f32[] parameter(0)
  ROOT b = f32[] parameter(1)
}
ENTRY e {
  x = f32[4] parameter(0)
  i = s32[1,1] parameter(1)
  u = f32[1] parameter(2)
  p = f32[4] negate(x)
  s = f32[4] scatter(p, i, u), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=set
  ROOT r = f32[4] add(p, s)
}""", "fusion", "dce")
    # p stays its own value, computed once before the scatter.
    assert any(i.opcode == "negate" for i in m.entry.instructions)


def test_buffers_are_reused_and_shown_in_the_text():
    layers = "\n".join(
        f"  h{k} = f32[64,64] tanh(d{k})\n  d{k + 1} = f32[64,64] dot(h{k}, w), "
        "lhs_contracting_dims={1}, rhs_contracting_dims={0}" for k in range(10))
    text = ("HloModule m\nENTRY e {\n  d0 = f32[64,64] parameter(0)\n"
            "  w = f32[64,64] parameter(1)\n" + layers + "\n  ROOT out = f32[64,64] "
            "negate(d10)\n}")
    unplanned = memory_analysis(parse_module(text))   # opt_level 0: a buffer per value
    m = run(text, "assign-buffers")
    analysis = memory_analysis(m)
    temps = 20 * 64 * 64 * 4
    assert unplanned.temp_size_in_bytes == temps
    assert analysis.temp_size_in_bytes <= 2 * 64 * 64 * 4 < temps
    assert "buffer={offset=0,size=16384}" in m.to_text()
    assert parse_module(m.to_text()).to_text() == m.to_text()  # the plan round-trips


def test_cost_analysis_counts_flops_and_bytes():
    module = parse_module("""HloModule m
ENTRY e {
  x = f32[4,8] parameter(0)
  w = f32[8,16] parameter(1)
  d = f32[4,16] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT t = f32[4,16] tanh(d)
}""")
    cost = cost_analysis(module)
    assert cost["flops"] == 2 * 4 * 16 * 8 + 4 * 16
    assert cost["transcendentals"] == 4 * 16
    assert cost["bytes accessed"] == (32 + 128 + 64) * 4 + (64 + 64) * 4


def _dots_run(module) -> int:
    """Dots executed by the fused entry: its own plus one per fusion that holds one."""
    count = 0
    for inst in module.entry.instructions:
        if inst.opcode == "dot":
            count += 1
        elif inst.opcode == "fusion":
            count += sum(i.opcode == "dot" for i in inst.calls["calls"].instructions)
    return count


def test_a_dot_read_through_a_copied_epilogue_runs_once():
    # z = x @ w + b feeds relu and relu's gradient mask (the MLP training step): the add is
    # cheap and may be copied into both, but the dot under it must not be.
    text = """HloModule m
ENTRY e {
  x = f32[8,16] parameter(0)
  w = f32[16,4] parameter(1)
  b = f32[4] parameter(2)
  g = f32[8,4] parameter(3)
  d = f32[8,4] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  bb = f32[8,4] broadcast(b), dimensions={1}
  z = f32[8,4] add(d, bb)
  zero = f32[] constant(0)
  zeros = f32[8,4] broadcast(zero), dimensions={}
  relu = f32[8,4] maximum(z, zeros)
  mask = pred[8,4] compare(z, zeros), direction=GT
  masked = f32[8,4] select(mask, g, zeros)
  ROOT t = (f32[8,4], f32[8,4]) tuple(relu, masked)
}"""
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype(np.float32) for s in ((8, 16), (16, 4), (4,), (8, 4))]
    m = run(text, "fusion", "dce")
    assert _dots_run(m) == 1
    x, w, b, g = args
    z = x @ w + b
    relu, masked = evaluate(m, args)
    np.testing.assert_allclose(relu, np.maximum(z, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(masked, np.where(z > 0, g, 0), rtol=1e-5, atol=1e-5)


def test_transpose_of_a_dot_becomes_the_swapped_dot():
    # The weight gradient x^T g comes out of reverse mode as transpose(dot(g, x)).
    m = run("""HloModule m
ENTRY e {
  g = f32[8,3] parameter(0)
  x = f32[8,5] parameter(1)
  d = f32[3,5] dot(g, x), lhs_contracting_dims={0}, rhs_contracting_dims={0}
  ROOT t = f32[5,3] transpose(d), dimensions={1,0}
}""", "simplify", "dce")
    assert body(m) == ["parameter()", "parameter()", "dot(parameter, parameter)"]
    rng = np.random.default_rng(1)
    g, x = rng.standard_normal((8, 3)), rng.standard_normal((8, 5))
    np.testing.assert_allclose(evaluate(m, [g.astype(np.float32), x.astype(np.float32)]),
                               x.T @ g, rtol=1e-5, atol=1e-5)


def test_a_transposed_dot_operand_becomes_its_dimension_numbers():
    # x.T @ y and a batched a @ b^T: the dot reads the untransposed operands (XLA's
    # transpose folding), so no transpose kernel runs.
    m = run("""HloModule m
ENTRY e {
  x = f32[8,3] parameter(0)
  y = f32[8,5] parameter(1)
  xt = f32[3,8] transpose(x), dimensions={1,0}
  ROOT d = f32[3,5] dot(xt, y), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}""", "simplify", "dce")
    assert body(m) == ["parameter()", "parameter()", "dot(parameter, parameter)"]
    assert m.entry.root.attrs["lhs_contracting_dims"] == (0,)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 5))
    np.testing.assert_allclose(evaluate(m, [x.astype(np.float32), y.astype(np.float32)]),
                               x.T @ y, rtol=1e-5, atol=1e-5)
    m = run("""HloModule m
ENTRY e {
  a = f32[2,4,6] parameter(0)
  b = f32[2,7,6] parameter(1)
  bt = f32[2,6,7] transpose(b), dimensions={0,2,1}
  ROOT d = f32[2,4,7] dot(a, bt), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}
}""", "simplify", "dce")
    assert body(m) == ["parameter()", "parameter()", "dot(parameter, parameter)"]
    a, b = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 7, 6))
    np.testing.assert_allclose(evaluate(m, [a.astype(np.float32), b.astype(np.float32)]),
                               a @ b.transpose(0, 2, 1), rtol=1e-5, atol=1e-5)


def test_a_transpose_that_would_reorder_a_dots_result_stays():
    # Two free dims swapped by the transpose: folding would change the output's dim order.
    m = run("""HloModule m
ENTRY e {
  x = f32[3,4,5] parameter(0)
  y = f32[5,2] parameter(1)
  xt = f32[4,3,5] transpose(x), dimensions={1,0,2}
  ROOT d = f32[4,3,2] dot(xt, y), lhs_contracting_dims={2}, rhs_contracting_dims={0}
}""", "simplify", "dce")
    assert "transpose(parameter)" in body(m)


def test_transpose_of_a_shared_dot_stays():
    m = run("""HloModule m
ENTRY e {
  a = f32[4,4] parameter(0)
  d = f32[4,4] dot(a, a), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  t = f32[4,4] transpose(d), dimensions={1,0}
  ROOT r = f32[4,4] add(d, t)
}""", "simplify", "dce")
    assert [i.opcode for i in m.entry.instructions].count("dot") == 1



def test_layernorm_is_one_kernel_and_matches_numpy():
    # The mean's row reduction reaches the output through x - mean, which the variance's
    # reduction also reads: all of it is one kInput fusion, whatever order it is found in.
    import flowjit
    import flowjit.numpy as fnp

    def layernorm(x):
        c = x - x.mean(-1, keepdims=True)
        return c / fnp.sqrt((c * c).mean(-1, keepdims=True) + 1e-5)
    x = np.random.default_rng(2).standard_normal((16, 32)).astype(np.float32)
    compiled = flowjit.jit(layernorm, opt_level=2).lower(x).compile()
    kernels = [i.opcode for i in compiled.module.entry.instructions
               if i.opcode not in ("parameter", "constant")]
    assert kernels == ["fusion"]
    c = x - x.mean(axis=1, keepdims=True)
    want = c / np.sqrt((c * c).mean(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(compiled(x), want, rtol=1e-5, atol=1e-5)


TWO_LOOPS_ONE_BODY = """HloModule m
double {
  s = (s32[], f32[3]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  one = s32[] constant(1)
  next = s32[] add(i, one)
  v = f32[3] get-tuple-element(s), index=1
  twice = f32[3] add(v, v)
  ROOT t = (s32[], f32[3]) tuple(next, twice)
}
below_three {
  s = (s32[], f32[3]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  three = s32[] constant(3)
  ROOT lt = pred[] compare(i, three), direction=LT
}
ENTRY e {
  x = f32[3] parameter(0)
  zero = s32[] constant(0)
  init = (s32[], f32[3]) tuple(zero, x)
  first = (s32[], f32[3]) while(init), condition=below_three, body=double
  y = f32[3] get-tuple-element(first), index=1
  again = (s32[], f32[3]) tuple(zero, y)
  second = (s32[], f32[3]) while(again), condition=below_three, body=double
  ROOT z = f32[3] get-tuple-element(second), index=1
}"""


def test_flatten_call_graph_gives_each_loop_its_own_body():
    from flowjit.passes.flatten_call_graph import run as flatten
    module = parse_module(TWO_LOOPS_ONE_BODY)
    assert flatten(module)
    loops = [i for i in module.entry.instructions if i.opcode == "while"]
    assert loops[0].calls["body"] is not loops[1].calls["body"]
    assert loops[0].calls["condition"] is not loops[1].calls["condition"]
    assert not flatten(module)   # already flat: nothing more to do
    x = np.array([1.0, -2.0, 0.5], np.float32)
    np.testing.assert_array_equal(evaluate(module, [x]), x * 64)


def test_two_loops_sharing_a_body_run_at_every_opt_level():
    from flowjit.runtime import Executable
    x = np.array([1.0, -2.0, 0.5], np.float32)
    for level in (0, 1, 2):
        module, _ = optimize(parse_module(TWO_LOOPS_ONE_BODY), opt_level=level, verify=True)
        (result,) = Executable(module)(x)
        np.testing.assert_array_equal(result, x * 64)   # 2**3, twice


def test_buffer_plan_refuses_a_body_shared_by_two_loops():
    import pytest
    from flowjit.ir.buffers import plan_buffers
    with pytest.raises(ValueError, match="flatten-call-graph"):
        plan_buffers(parse_module(TWO_LOOPS_ONE_BODY))
