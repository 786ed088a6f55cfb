"""The batching pass on hand-written HLO: the batched computation equals the unbatched one
run on each example and stacked (the reference interpreter is the oracle), and the rules
that matter for speed emit the ops they should (a dot batch dimension, not a loop;
shared work left unbatched)."""
import numpy as np
import pytest

from flowjit.ir.builder import NameTable
from flowjit.ir.parser import parse_module
from flowjit.ir.printer import print_module
from flowjit.ir.module import Module
from flowjit.ir.reference import evaluate_computation
from flowjit.ir.verifier import verify
from flowjit.passes.batching import BatchingError, batch

RNG = np.random.default_rng(0)


def _batched(text: str, bdims, size: int, out_bdims=None):
    module = parse_module(text)
    names = NameTable.for_module(module)
    comp, extra, bdim = batch(module.entry, bdims, size, names, out_bdims)
    others = [c for c in module.computations if c is not module.entry]
    batched = Module("batched", comp, others + extra)
    batched.remove_dead_computations()
    verify(batched)
    return module, batched, bdim


def _example(array, bdim, k):
    return array if bdim is None else np.take(array, k, axis=bdim)


def _loop_oracle(module, args, bdims, size, out_bdim):
    """The unbatched computation on each example, stacked along `out_bdim`."""
    outs = [evaluate_computation(module.entry, [_example(a, d, k) for a, d in zip(args, bdims)])
            for k in range(size)]
    return np.stack(outs, axis=out_bdim)


def _check(text, args, bdims, size=3, out_bdim=0):
    module, batched, bdim = _batched(text, bdims, size, [out_bdim])
    got = evaluate_computation(batched.entry, args)
    want = _loop_oracle(module, args, bdims, size, out_bdim)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return batched


def _normal(*dims):
    return RNG.standard_normal(dims).astype(np.float32)


def _opcodes(module):
    return [str(i.opcode) for c in module.computations for i in c.instructions]


def test_a_shared_operand_stays_unbatched_and_is_broadcast_once():
    text = """HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  w = f32[4] parameter(1)
  w2 = f32[4] multiply(w, w)
  ROOT r = f32[4] add(x, w2)
}"""
    batched = _check(text, [_normal(4, 3), _normal(4)], [1, None], out_bdim=1)
    squares = [i for i in batched.entry.instructions if i.opcode == "multiply"]
    assert [i.shape.dims for i in squares] == [(4,)]     # w*w computed once, for all


def test_a_batched_dot_is_one_dot_with_a_batch_dimension():
    text = """HloModule m
ENTRY e {
  a = f32[2,3] parameter(0)
  b = f32[3,4] parameter(1)
  ROOT d = f32[2,4] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}"""
    batched = _check(text, [_normal(5, 2, 3), _normal(3, 4, 5)], [0, 2], size=5)
    (dot,) = [i for i in batched.entry.instructions if i.opcode == "dot"]
    assert dot.attrs["lhs_batch_dims"] == (0,) and dot.attrs["rhs_batch_dims"] == (2,)
    assert "while" not in _opcodes(batched)


def test_a_batched_lhs_folds_into_the_free_dims():
    text = """HloModule m
ENTRY e {
  a = f32[3] parameter(0)
  b = f32[3,4] parameter(1)
  ROOT d = f32[4] dot(a, b), lhs_contracting_dims={0}, rhs_contracting_dims={0}
}"""
    module, batched, bdim = _batched(text, [0, None], 6)
    (dot,) = [i for i in batched.entry.instructions if i.opcode == "dot"]
    assert "lhs_batch_dims" not in dot.attrs and dot.shape.dims == (6, 4) and bdim == 0
    assert _opcodes(batched).count("transpose") == 0


@pytest.mark.parametrize("text, shapes, bdims", [
    ("""HloModule m
ENTRY e {
  x = f32[3,4] parameter(0)
  ROOT t = f32[4,3] transpose(x), dimensions={1,0}
}""", [(3, 5, 4)], [1]),
    ("""HloModule m
ENTRY e {
  x = f32[3,4] parameter(0)
  ROOT s = f32[2,2] slice(x), slice={[1:3], [0:4:2]}
}""", [(3, 4, 5)], [2]),
    ("""HloModule m
ENTRY e {
  x = f32[3,4] parameter(0)
  z = f32[] constant(0)
  ROOT s = f32[4] reduce(x, z), dimensions={0}, to_apply=add
}
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = f32[] add(a, b)
}""", [(3, 5, 4)], [1]),
    ("""HloModule m
ENTRY e {
  x = f32[3,4] parameter(0)
  p = f32[] parameter(1)
  ROOT s = f32[5,5] pad(x, p), padding=1_1x0_1_0
}""", [(5, 3, 4), (5,)], [0, 0]),
    ("""HloModule m
ENTRY e {
  x = f32[3,4] parameter(0)
  y = f32[2,4] parameter(1)
  ROOT c = f32[5,4] concatenate(x, y), dimensions={0}
}""", [(3, 4, 5), (2, 4)], [2, None]),
    ("""HloModule m
ENTRY e {
  x = f32[3] parameter(0)
  ROOT b = f32[2,3] broadcast(x), dimensions={1}
}""", [(3, 5)], [1]),
    ("""HloModule m
ENTRY e {
  x = f32[6] parameter(0)
  ROOT r = f32[2,3] reshape(x)
}""", [(6, 5)], [1]),
    ("""HloModule m
ENTRY e {
  x = f32[8] parameter(0)
  i = s32[] parameter(1)
  ROOT d = f32[3] dynamic-slice(x, i), dynamic_slice_sizes={3}
}""", [(5, 8), (5,)], [0, 0]),
    ("""HloModule m
ENTRY e {
  x = f32[8] parameter(0)
  u = f32[3] parameter(1)
  i = s32[] parameter(2)
  ROOT d = f32[8] dynamic-update-slice(x, u, i)
}""", [(8,), (5, 3), (5,)], [None, 0, 0]),
    ("""HloModule m
ENTRY e {
  x = f32[6,4] parameter(0)
  i = s32[2,1] parameter(1)
  ROOT g = f32[2,4] gather(x, i), offset_dims={1}, collapsed_slice_dims={0},
      start_index_map={0}, index_vector_dim=1, slice_sizes={1,4}
}""", [(6, 4, 5), (5, 2, 1)], [2, 0]),
    ("""HloModule m
ENTRY e {
  x = f32[6] parameter(0)
  i = s32[2,1] parameter(1)
  u = f32[2] parameter(2)
  ROOT s = f32[6] scatter(x, i, u), update_window_dims={}, inserted_window_dims={0},
      scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
}
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = f32[] add(a, b)
}""", [(6,), (5, 2, 1), (2, 5)], [None, 0, 1]),
    ("""HloModule m
ENTRY e {
  x = f32[6,6] parameter(0)
  z = f32[] constant(-inf)
  ROOT w = f32[3,3] reduce-window(x, z), window={size=2x2 stride=2x2}, to_apply=max
}
max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = f32[] maximum(a, b)
}""", [(6, 5, 6)], [1]),
    ("""HloModule m
ENTRY e {
  x = f32[4,4] parameter(0)
  s = f32[2,2] parameter(1)
  z = f32[] constant(0)
  ROOT w = f32[4,4] select-and-scatter(x, s, z), window={size=2x2 stride=2x2}, select=ge,
      scatter=add
}
ge {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = pred[] compare(a, b), direction=GE
}
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = f32[] add(a, b)
}""", [(4, 4, 3), (2, 2)], [2, None]),
    ("""HloModule m
ENTRY e {
  x = f32[1,5,5,2] parameter(0)
  k = f32[3,3,2,4] parameter(1)
  ROOT c = f32[1,3,3,4] convolution(x, k), window={size=3x3 stride=2x2 pad=1_1x1_1},
      dim_labels=b01f_01io->b01f
}""", [(1, 5, 3, 5, 2), (3, 3, 3, 2, 4)], [2, 2]),
    ("""HloModule m
ENTRY e {
  x = f32[] parameter(0)
  ROOT d = f32[] dynamic-slice(x), dynamic_slice_sizes={}
}""", [(5,)], [0]),
], ids=["transpose", "slice", "reduce", "pad-with-batched-value", "concatenate", "broadcast",
        "reshape", "dynamic-slice-to-gather", "dynamic-update-slice-to-scatter", "gather",
        "scatter", "reduce-window", "select-and-scatter", "convolution-nhwc-both-batched",
        "dynamic-slice-of-a-scalar"])
def test_rule_equals_the_loop_over_examples(text, shapes, bdims):
    # Integer parameters are indices: some out of range, to check the clamping.
    params = parse_module(text).entry.parameters
    args = [RNG.integers(-2, 9, shape).astype(np.int32) if p.shape.dtype.is_int
            else _normal(*shape) for p, shape in zip(params, shapes)]
    size = next(s[d] for s, d in zip(shapes, bdims) if d is not None)
    _check(text, args, bdims, size=size)


def test_a_while_with_a_batched_condition_runs_until_every_example_is_done():
    text = """HloModule m
ENTRY e {
  n = s32[] parameter(0)
  x = f32[] parameter(1)
  init = (s32[], f32[]) tuple(n, x)
  w = (s32[], f32[]) while(init), condition=cond, body=body
  ROOT r = f32[] get-tuple-element(w), index=1
}
cond {
  s = (s32[], f32[]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  four = s32[] constant(4)
  ROOT lt = pred[] compare(i, four), direction=LT
}
body {
  s = (s32[], f32[]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  x = f32[] get-tuple-element(s), index=1
  one = s32[] constant(1)
  two = f32[] constant(2)
  i1 = s32[] add(i, one)
  x2 = f32[] multiply(x, two)
  ROOT t = (s32[], f32[]) tuple(i1, x2)
}"""
    # Each example loops 4 - n times: 4, 3, 0 and 6 (n = 6 never enters the loop).
    counts = np.array([0, 1, 6, -2], np.int32)
    batched = _check(text, [counts, np.array([-3, 1, 5, 0.5], np.float32)], [0, 0], size=4)
    assert _opcodes(batched).count("while") == 1


def test_a_while_with_a_shared_condition_keeps_its_trip_count():
    text = """HloModule m
ENTRY e {
  x = f32[] parameter(0)
  zero = s32[] constant(0)
  init = (s32[], f32[]) tuple(zero, x)
  w = (s32[], f32[]) while(init), condition=cond, body=body,
      backend_config={"known_trip_count":{"n":"4"}}
  ROOT r = f32[] get-tuple-element(w), index=1
}
cond {
  s = (s32[], f32[]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  four = s32[] constant(4)
  ROOT lt = pred[] compare(i, four), direction=LT
}
body {
  s = (s32[], f32[]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  x = f32[] get-tuple-element(s), index=1
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  x2 = f32[] sine(x)
  ROOT t = (s32[], f32[]) tuple(i1, x2)
}"""
    batched = _check(text, [_normal(5)], [0], size=5)
    (loop,) = [i for i in batched.entry.instructions if i.opcode == "while"]
    assert loop.attrs["known_trip_count"] == 4
    assert loop.shape.elements[0].dims == ()       # the counter stays shared


def test_a_batched_output_with_no_out_axis_is_an_error():
    text = """HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  ROOT n = f32[4] negate(x)
}"""
    with pytest.raises(BatchingError, match="out_axes is None"):
        _batched(text, [0], 3, [None])


def test_an_unbatched_output_asked_for_an_axis_is_broadcast():
    text = """HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  w = f32[4] parameter(1)
  ROOT n = f32[4] negate(w)
}"""
    _check(text, [_normal(3, 4), _normal(4)], [0, None], out_bdim=1)


def test_the_batched_module_prints_and_parses_back():
    text = """HloModule m
ENTRY e {
  a = f32[2,3] parameter(0)
  b = f32[3,4] parameter(1)
  d = f32[2,4] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT t = f32[2,4] tanh(d)
}"""
    _, batched, _ = _batched(text, [1, None], 5)
    printed = print_module(batched)
    assert print_module(parse_module(printed)) == printed


def test_an_op_that_cannot_be_batched_is_named_with_its_instruction():
    text = """HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  ROOT c = f32[4] custom-call(x), custom_call_target="my_kernel"
}"""
    with pytest.raises(BatchingError, match=r"'custom-call' %c.*'my_kernel' has no batching"):
        _batched(text, [0], 3)


def test_a_reduce_whose_init_value_is_batched_is_refused_by_name():
    text = """HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  z = f32[] parameter(1)
  ROOT s = f32[] reduce(x, z), dimensions={0}, to_apply=add
}
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = f32[] add(a, b)
}"""
    with pytest.raises(BatchingError, match=r"'reduce' %s.*init value"):
        _batched(text, [None, 0], 3)


@pytest.mark.parametrize("call", [
    "call(x, w), to_apply=body",
    "fusion(x, w), kind=kLoop, calls=body",
])
def test_a_called_computation_is_batched_for_its_arguments(call):
    text = f"""HloModule m
ENTRY e {{
  x = f32[4] parameter(0)
  w = f32[4] parameter(1)
  ROOT c = f32[4] {call}
}}
body {{
  a = f32[4] parameter(0)
  b = f32[4] parameter(1)
  bb = f32[4] multiply(b, b)
  ROOT s = f32[4] add(a, bb)
}}"""
    batched = _check(text, [_normal(4, 3), _normal(4)], [1, None], out_bdim=1)
    callee = batched.entry.root.called_computations()[0]
    (square,) = [i for i in callee.instructions if i.opcode == "multiply"]
    assert square.shape.dims == (4,)         # the shared argument's work is not batched
