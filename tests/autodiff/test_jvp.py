"""flowjit.jvp and flowjit.linearize against jax.jvp / jax.linearize: values, tangents,
shapes and dtypes for every op class, control flow, compositions and JAX's errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import lax as flax

# JAX is compared under its default 32-bit types (some tests turn its x64 on process-wide).
pytestmark = pytest.mark.usefixtures("no_x64")

rng = np.random.default_rng(0)


def arr(*shape, positive=False):
    x = rng.standard_normal(shape).astype(np.float32)
    return np.abs(x) + 0.5 if positive else x


def _pool(lax_, kind):
    def f(x):
        if kind == "max":
            return lax_.reduce_window(x, -np.inf, lax_.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      ((0, 0), (1, 0), (0, 1), (0, 0)))
        return lax_.reduce_window(x, 0.0, lax_.add, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    return f


def _conv(lax_):
    return lambda x, w: lax_.conv_general_dilated(x, w, (2, 1), ((1, 1), (0, 1)),
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _while(np_, lax_):
    def f(x):
        def body(state):
            i, v = state
            return i + 1, np_.sin(v) * 1.5 + v
        return lax_.while_loop(lambda s: s[0] < 4, body, (0, x))[1]
    return f


def _scan(np_, lax_):
    def f(w, xs):
        def step(carry, x):
            carry = np_.tanh(carry * w + x)
            return carry, carry * carry
        return lax_.scan(step, np_.zeros_like(w), xs)
    return f


def _cond(np_, lax_):
    return lambda p, x: lax_.cond(p > 0, lambda v: np_.exp(v) * 2, lambda v: np_.cos(v), x)


def _gather_scatter(np_, lax_):
    idx = np.array([3, 0, 3, 1])
    return lambda x, u: (x[idx] * 2, x.at[idx].add(u), x.at[np.array([2, 0])].set(u[:2]))


# (name, f(np_, lax_) -> function, primal arguments)
CASES = [
    ("elementwise", lambda np_, lax_: lambda x, y: np_.sin(x) * np_.exp(y) / (1 + x * x)
     + np_.tanh(x - y) ** 2 + np_.maximum(x, y) + np_.abs(x) * np_.log(y),
     (arr(5), arr(5, positive=True))),
    ("power-and-atan2", lambda np_, lax_: lambda x, y: x ** y + np_.arctan2(y, x)
     + np_.sqrt(x) * lax_.rsqrt(y), (arr(4, positive=True), arr(4, positive=True))),
    ("clamp-and-where", lambda np_, lax_: lambda x, y: lax_.clamp(-0.5, x, 0.7)
     + np_.where(x > y, x * y, y), (arr(6), arr(6))),
    ("reductions", lambda np_, lax_: lambda x: (x.sum(0), x.max(1), np_.prod(x, 0),
                                               x.min(), x.mean(1)), (arr(3, 4),)),
    ("dot", lambda np_, lax_: lambda a, b: np_.tanh(a @ b).T @ a, (arr(3, 4), arr(4, 2))),
    ("batched-dot", lambda np_, lax_: lambda a, b: np_.einsum("bij,bjk->bik", a, b),
     (arr(2, 3, 4), arr(2, 4, 5))),
    ("shapes", lambda np_, lax_: lambda x: np_.concatenate(
        [x[1:, ::2].reshape(-1), np_.flip(x, 0)[0], np_.pad(x, 1)[0, :3],
         np_.broadcast_to(x[:, :1], (3, 2)).ravel()]), (arr(3, 4),)),
    ("dynamic-slice", lambda np_, lax_: lambda x, i: lax_.dynamic_update_slice(
        x, lax_.dynamic_slice(x, (i,), (2,)) * 3, (i + 1,)), (arr(6), np.int32(2))),
    ("gather-scatter", _gather_scatter, (arr(5), arr(4))),
    ("conv", lambda np_, lax_: _conv(lax_), (arr(1, 5, 4, 2), arr(3, 2, 2, 3))),
    ("max-pool", lambda np_, lax_: _pool(lax_, "max"), (arr(1, 4, 5, 2),)),
    ("avg-pool", lambda np_, lax_: _pool(lax_, "sum"), (arr(1, 4, 4, 2),)),
    ("cumsum", lambda np_, lax_: lambda x: np_.cumsum(x * x, axis=1), (arr(2, 5),)),
    ("while", _while, (arr(3),)),
    ("fori", lambda np_, lax_: lambda x: lax_.fori_loop(0, 3, lambda i, v: v * v * 0.5 + i,
                                                        x), (arr(3),)),
    ("scan", _scan, (arr(3), arr(4, 3))),
    ("cond", _cond, (np.float32(1.0), arr(3))),
    ("cond-false", _cond, (np.float32(-1.0), arr(3))),
    ("softmax-logsumexp", lambda np_, lax_: lambda x: jax.nn.softmax(x, axis=-1)
     if np_ is jnp else flowjit.nn.softmax(x, axis=-1), (arr(2, 5),)),
]

NAMESPACES = {"flowjit": (fnp, flax), "jax": (jnp, jax.lax)}


def _tangents(primals):
    return tuple(arr(*np.shape(p)) if np.issubdtype(np.asarray(p).dtype, np.floating)
                 else np.zeros(np.shape(p), jax.dtypes.float0) for p in primals)


def _assert_trees_close(ours, theirs, rtol=2e-4, atol=2e-5):
    ours_leaves, ours_tree = flowjit.tree.flatten(ours)
    theirs_leaves = jax.tree_util.tree_leaves(theirs)
    assert len(ours_leaves) == len(theirs_leaves), (ours_tree, theirs)
    for a, b in zip(ours_leaves, theirs_leaves):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        if a.dtype != jax.dtypes.float0:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,make,primals", CASES, ids=[c[0] for c in CASES])
def test_jvp_matches_jax(name, make, primals):
    tangents = _tangents(primals)
    ours = flowjit.jvp(make(*NAMESPACES["flowjit"]), primals, tangents)
    theirs = jax.jvp(make(*NAMESPACES["jax"]), primals, tangents)
    _assert_trees_close(ours, theirs)


@pytest.mark.parametrize("name,make,primals", CASES, ids=[c[0] for c in CASES])
def test_jvp_inside_jit_matches_jax(name, make, primals):
    tangents = _tangents(primals)
    f = make(*NAMESPACES["flowjit"])
    zero = [t.dtype == jax.dtypes.float0 for t in tangents]

    def jvp_of_f(p, float_tangents):   # float0 tangents are made inside: jit takes no float0
        given = iter(float_tangents)
        return flowjit.jvp(f, p, tuple(t if z else next(given)
                                       for t, z in zip(tangents, zero)))
    ours = flowjit.jit(jvp_of_f)(primals, tuple(t for t, z in zip(tangents, zero) if not z))
    theirs = jax.jvp(make(*NAMESPACES["jax"]), primals, tangents)
    _assert_trees_close(ours, theirs)


@pytest.mark.parametrize("name,make,primals", CASES[1::4], ids=[c[0] for c in CASES[1::4]])
def test_linearize_matches_jax(name, make, primals):
    tangents = _tangents(primals)
    out, f_jvp = flowjit.linearize(make(*NAMESPACES["flowjit"]), *primals)
    their_out, their_jvp = jax.linearize(make(*NAMESPACES["jax"]), *primals)
    _assert_trees_close(out, their_out)
    _assert_trees_close(f_jvp(*tangents), their_jvp(*tangents))


def test_zero_tangents_stay_symbolic():
    """An output that does not depend on the tangent inputs gets no tangent computation:
    the JVP computation of x -> (sin(x), exp(y)) w.r.t. x holds no exponential's tangent."""
    from flowjit.ir.parser import parse_module
    from flowjit.passes.jvp import jvp
    module = parse_module("""
HloModule m
ENTRY e {
  x = f32[3] parameter(0)
  y = f32[3] parameter(1)
  s = f32[3] sine(x)
  z = f32[3] exponential(y)
  ROOT t = (f32[3], f32[3]) tuple(s, z)
}""")
    comp, _ = jvp(module.entry, [0])
    ops = [i.opcode for i in comp.instructions]
    assert ops.count("exponential") == 1 and "cosine" in ops
    assert "multiply" in ops and ops.count("multiply") == 1   # d sin = cos(x) * tx only


def test_a_loop_carries_only_the_tangents_it_needs():
    """(counter, x, y) where only x has a tangent and y never depends on it: the JVP loop's
    state is (counter, x, y, tangent of x), no tangent for the counter or y."""
    from flowjit.ir.parser import parse_module
    from flowjit.passes.jvp import jvp
    module = parse_module("""
HloModule m
body {
  s = (s32[], f32[2], f32[2]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  x = f32[2] get-tuple-element(s), index=1
  y = f32[2] get-tuple-element(s), index=2
  one = s32[] constant(1)
  j = s32[] add(i, one)
  sx = f32[2] sine(x)
  y2 = f32[2] multiply(y, y)
  ROOT t = (s32[], f32[2], f32[2]) tuple(j, sx, y2)
}
cond {
  s = (s32[], f32[2], f32[2]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  n = s32[] constant(3)
  ROOT lt = pred[] compare(i, n), direction=LT
}
ENTRY e {
  x = f32[2] parameter(0)
  y = f32[2] parameter(1)
  zero = s32[] constant(0)
  init = (s32[], f32[2], f32[2]) tuple(zero, x, y)
  w = (s32[], f32[2], f32[2]) while(init), condition=cond, body=body
  a = f32[2] get-tuple-element(w), index=1
  b = f32[2] get-tuple-element(w), index=2
  ROOT r = f32[2] add(a, b)
}""")
    comp, _ = jvp(module.entry, [0])
    (loop,) = [i for i in comp.instructions if i.opcode == "while"]
    assert [str(s) for s in loop.shape.elements] == ["s32[]", "f32[2]", "f32[2]", "f32[2]"]
    x, y, v = np.array([0.3, -1.2], np.float32), np.array([0.5, 0.9], np.float32), \
        np.array([1.0, 2.0], np.float32)
    from flowjit.ir.reference import evaluate_computation
    value, tangent = evaluate_computation(comp, [x, y, v])
    want = jax.jvp(lambda x: jnp.sin(jnp.sin(jnp.sin(x))) + y ** 8, (x,), (v,))
    np.testing.assert_allclose(value, want[0], rtol=1e-5)
    np.testing.assert_allclose(tangent, want[1], rtol=1e-5)


def test_stop_gradient_has_a_zero_tangent():
    x, t = np.float32(0.8), np.float32(1.0)
    ours = flowjit.jvp(lambda x: flowjit.stop_gradient(x) * fnp.sin(x), (x,), (t,))
    theirs = jax.jvp(lambda x: jax.lax.stop_gradient(x) * jnp.sin(x), (x,), (t,))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_integer_inputs_and_outputs_take_float0_tangents():
    f = lambda x, n: (x * n, n + 1)   # noqa: E731
    primals = (np.float32(1.5), np.int32(3))
    tangents = (np.float32(1.0), np.zeros((), jax.dtypes.float0))
    (out, count), (t_out, t_count) = flowjit.jvp(f, primals, tangents)
    assert float(out) == 4.5 and int(count) == 4 and float(t_out) == 3.0
    assert t_count.dtype == jax.dtypes.float0
    assert jax.jvp(f, primals, tangents)[1][1].dtype == t_count.dtype


def test_has_aux():
    f = lambda x: (fnp.sin(x), {"double": x * 2})   # noqa: E731
    out, t, aux = flowjit.jvp(f, (np.float32(0.5),), (np.float32(2.0),), has_aux=True)
    j_out, j_t, j_aux = jax.jvp(lambda x: (jnp.sin(x), {"double": x * 2}),
                                (np.float32(0.5),), (np.float32(2.0),), has_aux=True)
    _assert_trees_close((out, t, aux), (j_out, j_t, j_aux))


def test_pytree_primals():
    f = lambda p: fnp.tanh(p["w"] @ p["x"]) + p["b"]   # noqa: E731
    g = lambda p: jnp.tanh(p["w"] @ p["x"]) + p["b"]   # noqa: E731
    p = {"w": arr(2, 3), "x": arr(3), "b": arr(2)}
    t = {k: arr(*v.shape) for k, v in p.items()}
    _assert_trees_close(flowjit.jvp(f, (p,), (t,)), jax.jvp(g, (p,), (t,)))


def test_forward_over_reverse_and_reverse_over_forward():
    """Hessian-vector products both ways agree with JAX's."""
    f = lambda x: (fnp.sin(x) * x).sum() ** 2   # noqa: E731
    g = lambda x: (jnp.sin(x) * x).sum() ** 2   # noqa: E731
    x, v = arr(4), arr(4)
    want = jax.jvp(jax.grad(g), (x,), (v,))[1]
    np.testing.assert_allclose(flowjit.jvp(flowjit.grad(f), (x,), (v,))[1], want, rtol=1e-4)
    rev = flowjit.grad(lambda x: flowjit.jvp(f, (x,), (v,))[1])(x)
    np.testing.assert_allclose(rev, want, rtol=1e-4)
    second = flowjit.jvp(lambda x: flowjit.jvp(f, (x,), (v,))[1], (x,), (v,))[1]
    want2 = jax.jvp(lambda x: jax.jvp(g, (x,), (v,))[1], (x,), (v,))[1]
    np.testing.assert_allclose(second, want2, rtol=1e-4)


def test_grad_through_a_jvp_of_a_loop():
    def f(np_, lax_):
        body = lambda i, v: np_.sin(v) * 1.1   # noqa: E731
        return lambda x: lax_.fori_loop(0, 3, body, x).sum()
    x, v = arr(3), arr(3)
    ours = flowjit.grad(lambda x: flowjit.jvp(f(fnp, flax), (x,), (v,))[1])(x)
    theirs = jax.grad(lambda x: jax.jvp(f(jnp, jax.lax), (x,), (v,))[1])(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


@pytest.mark.parametrize("primals,tangents,error,match", [
    ((1.0,), (1.0, 2.0), TypeError, "same tree structure"),
    ([1.0], (1.0,), TypeError, "same tree structure"),
    (1.0, 1.0, TypeError, "must be tuples or lists"),
    ((np.ones(3, np.float32),), (np.ones(2, np.float32),), ValueError,
     r"different primal and tangent shapes.*\(3,\).*\(2,\)"),
    ((np.int32(2),), (np.int32(1),), TypeError, "tangent dtype must be float0"),
    ((np.float32(2),), (np.int32(1),), TypeError, "dtypes must be equal"),
])
def test_bad_tangents_raise_as_in_jax(primals, tangents, error, match):
    with pytest.raises(error, match=match):
        flowjit.jvp(lambda *xs: xs[0], primals, tangents)
    with pytest.raises(error):
        jax.jvp(lambda *xs: xs[0], primals, tangents)


def test_jvp_of_custom_vjp_is_refused_as_in_jax():
    @flowjit.custom_vjp
    def f(x):
        return x * 2
    f.defvjp(lambda x: (x * 2, None), lambda r, g: (g * 2,))
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        flowjit.jvp(f, (np.float32(1),), (np.float32(1),))


@pytest.mark.parametrize("name", ["jvp", "linearize", "custom_jvp", "checkpoint", "remat",
                                  "eval_shape", "block_until_ready"])
def test_signatures_are_jax_s(name):
    from tests.compiler.api_names import compare_signatures
    assert compare_signatures(getattr(flowjit, name), getattr(jax, name)) == "same"
