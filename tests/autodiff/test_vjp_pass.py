"""The VJP pass on hand-written HLO: text in, a verified module out whose reference
evaluation matches finite differences; and the autodiff markers lowered before codegen."""
import numpy as np
import pytest

from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.ir.verifier import verify
from flowjit.passes.vjp import NonDifferentiableError, lower_autodiff_markers, vjp_module

ADD = """
add_f64 {
  lhs = f64[] parameter(0)
  rhs = f64[] parameter(1)
  ROOT sum = f64[] add(lhs, rhs)
}
"""

CALL = "HloModule calls\n" + ADD + """
pair {
  a = f64[3] parameter(0)
  b = f64[3] parameter(1)
  s = f64[3] sine(a)
  m = f64[3] multiply(a, b)
  ROOT t = (f64[3], f64[3]) tuple(s, m)
}

ENTRY main {
  x = f64[3] parameter(0)
  y = f64[3] parameter(1)
  c = (f64[3], f64[3]) call(x, y), to_apply=pair
  s0 = f64[3] get-tuple-element(c), index=0
  m0 = f64[3] get-tuple-element(c), index=1
  p = f64[3] multiply(s0, m0)
  zero = f64[] constant(0)
  ROOT r = f64[] reduce(p, zero), dimensions={0}, to_apply=add_f64
}
"""

LOOP = "HloModule loop\n" + ADD + """
body {
  st = (s32[], f64[3], f64[3]) parameter(0)
  i = s32[] get-tuple-element(st), index=0
  one = s32[] constant(1)
  i1 = s32[] add(i, one)
  v = f64[3] get-tuple-element(st), index=1
  w = f64[3] get-tuple-element(st), index=2
  sv = f64[3] sine(v)
  nv = f64[3] multiply(sv, w)
  ROOT out = (s32[], f64[3], f64[3]) tuple(i1, nv, w)
}

cond {
  cst = (s32[], f64[3], f64[3]) parameter(0)
  ci = s32[] get-tuple-element(cst), index=0
  n = s32[] constant(4)
  ROOT lt = pred[] compare(ci, n), direction=LT
}

ENTRY main {
  x = f64[3] parameter(0)
  y = f64[3] parameter(1)
  zero_i = s32[] constant(0)
  init = (s32[], f64[3], f64[3]) tuple(zero_i, x, y)
  loop = (s32[], f64[3], f64[3]) while(init), condition=cond, body=body, TRIP
  v0 = f64[3] get-tuple-element(loop), index=1
  zero = f64[] constant(0)
  ROOT r = f64[] reduce(v0, zero), dimensions={0}, to_apply=add_f64
}
"""

BRANCHES = "HloModule branches\n" + ADD + """
first {
  p0 = (f64[3], f64[3]) parameter(0)
  a = f64[3] get-tuple-element(p0), index=0
  b = f64[3] get-tuple-element(p0), index=1
  s = f64[3] sine(a)
  ROOT m = f64[3] multiply(s, b)
}

second {
  p1 = (f64[3]) parameter(0)
  c = f64[3] get-tuple-element(p1), index=0
  ROOT e = f64[3] exponential(c)
}

ENTRY main {
  x = f64[3] parameter(0)
  y = f64[3] parameter(1)
  k = s32[] parameter(2)
  both = (f64[3], f64[3]) tuple(x, y)
  only = (f64[3]) tuple(y)
  pick = f64[3] conditional(k, both, only), branch_computations={first, second}
  zero = f64[] constant(0)
  ROOT r = f64[] reduce(pick, zero), dimensions={0}, to_apply=add_f64
}
"""


def _check(text, args, wrt):
    module = parse_module(text)
    grad_module = vjp_module(module, wrt)
    verify(grad_module)
    grad_module = parse_module(grad_module.to_text())  # the text says everything
    verify(grad_module)
    one = np.ones((), np.float64)
    result = evaluate(grad_module, list(args) + [one])
    value, grads = result[0], result[1:]
    np.testing.assert_allclose(value, evaluate(module, args))
    eps = 1e-6
    for k, g in zip(wrt, grads):
        expected = np.zeros_like(args[k])
        for i in np.ndindex(args[k].shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[k][i] += eps
            minus[k][i] -= eps
            expected[i] = (evaluate(module, plus) - evaluate(module, minus)) / (2 * eps)
        np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)
    return grad_module


X, Y = np.array([0.3, -0.7, 1.1]), np.array([0.9, 0.4, -0.6])


def test_call_with_a_tuple_result():
    _check(CALL, [X, Y], [0, 1])


def test_while_with_a_known_trip_count_becomes_two_loops():
    text = LOOP.replace("TRIP", 'backend_config={"known_trip_count":{"n":"4"}}')
    grad_module = _check(text, [X, Y], [0, 1])
    loops = [i for i in grad_module.entry.instructions if i.opcode == "while"]
    assert len(loops) == 2  # the stacking forward loop replaced the original one


def test_while_without_a_trip_count_is_refused_by_name():
    text = LOOP.replace(", TRIP", "")
    with pytest.raises(NonDifferentiableError, match="while loop.*%loop.*trip count"):
        vjp_module(parse_module(text), [0])


@pytest.mark.parametrize("branch", [0, 1])
def test_conditional(branch):
    _check(BRANCHES, [X, Y, np.int32(branch)], [0, 1])


MARKERS = "HloModule markers\n" + """
primal {
  x = f64[3] parameter(0)
  ROOT e = f64[3] exponential(x)
}

fwd {
  fx = f64[3] parameter(0)
  fe = f64[3] exponential(fx)
  ROOT ft = (f64[3], f64[3]) tuple(fe, fe)
}

bwd {
  res = f64[3] parameter(0)
  g = f64[3] parameter(1)
  bm = f64[3] multiply(res, g)
  ROOT bt = (f64[3]) tuple(bm)
}

ENTRY main {
  a = f64[3] parameter(0)
  stopped = f64[3] custom-call(a), custom_call_target="stop_gradient"
  c = f64[3] custom-call(stopped), custom_call_target="flowjit.custom_vjp", CALLED
  ROOT out = f64[3] add(c, a)
}
""".replace("CALLED", "called_computations={primal, fwd, bwd}")


def test_autodiff_markers_are_lowered_to_plain_code():
    module = parse_module(MARKERS)
    before = evaluate(module, [X])
    assert lower_autodiff_markers(module)
    verify(module)
    text = module.to_text()
    assert "custom-call" not in text and "fwd" not in text and "bwd" not in text
    np.testing.assert_allclose(evaluate(module, [X]), before)
    np.testing.assert_allclose(before, np.exp(X) + X)
    assert not lower_autodiff_markers(module)


def test_custom_vjp_rule_uses_fwd_and_bwd():
    module = parse_module(MARKERS.replace("stopped = f64[3] custom-call(a), "
                                          'custom_call_target="stop_gradient"',
                                          "stopped = f64[3] negate(a)"))
    grad_module = vjp_module(module, [0])
    verify(grad_module)
    g = np.array([1.0, 2.0, 3.0])
    _, ct = evaluate(grad_module, [X, g])
    # d/da [exp(-a) + a] = -exp(-a) + 1: the bwd rule supplies exp(-a) * g for the first term
    np.testing.assert_allclose(ct, -np.exp(-X) * g + g)
