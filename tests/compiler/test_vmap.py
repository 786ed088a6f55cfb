"""flowjit.vmap against jax.vmap: the same function (written once against a numpy-like
module, a lax-like module and the library) on the same inputs gives JAX's values, shapes
and dtypes, eagerly and under jit; the signature and the errors are JAX's."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.lax as flax
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp, jlax = jax.numpy, jax.lax

pytestmark = pytest.mark.usefixtures("no_x64")

RNG = np.random.default_rng(0)
FLOWJIT, JAX = (fnp, flax, flowjit), (jnp, jlax, jax)


def normal(*dims):
    return RNG.standard_normal(dims).astype(np.float32)


def indices(*dims, low=-2, high=9):
    return RNG.integers(low, high, dims).astype(np.int32)


def assert_same(got, want, rtol=2e-5, atol=2e-5):
    got_leaves, got_tree = jax.tree_util.tree_flatten(got)
    want_leaves, want_tree = jax.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def check(make, args, jit=True, eager=True, kwargs=None, **vmap_args):
    """vmap of `make(np, lax, library)` equals JAX's, eagerly and under jit."""
    kwargs = kwargs or {}
    want = jax.jit(jax.vmap(make(*JAX), **vmap_args))(*args, **kwargs)
    mapped = flowjit.vmap(make(*FLOWJIT), **vmap_args)
    if eager:
        assert_same(mapped(*args, **kwargs), want)
    if jit:
        assert_same(flowjit.jit(mapped)(*args, **kwargs), want)


# (name, function maker, arguments, vmap arguments): each op's rule on a small program.
OP_CASES = [
    ("elementwise, shared operand", lambda np_, l, m: lambda x, y: np_.sin(x) * y + 1,
     (normal(4, 3), normal(3)), dict(in_axes=(0, None))),
    ("elementwise, two axes", lambda np_, l, m: lambda x, y: np_.exp(x) - y,
     (normal(3, 4), normal(4, 3)), dict(in_axes=(1, 0))),
    ("integer ops", lambda np_, l, m: lambda x, y: (x // 3) ^ (y << 1),
     (indices(4, 3), indices(3, low=0, high=4)), dict(in_axes=(0, None))),
    ("select with a shared predicate", lambda np_, l, m: lambda x, y: np_.where(y > 0, x, -x),
     (normal(4, 3), normal(3)), dict(in_axes=(0, None))),
    ("clamp with batched bounds", lambda np_, l, m: lambda lo, x: l.clamp(lo, x, 0.5),
     (normal(4), normal(3)), dict(in_axes=(0, None))),
    ("broadcast", lambda np_, l, m: lambda x: np_.broadcast_to(x, (2, 3)) + 1,
     (normal(5, 3),), {}),
    ("reshape", lambda np_, l, m: lambda x: x.reshape(15), (normal(5, 3, 4),), dict(in_axes=2)),
    ("transpose", lambda np_, l, m: lambda x: x.T, (normal(3, 4, 5),), dict(in_axes=1)),
    ("slice", lambda np_, l, m: lambda x: x[1:3, ::2], (normal(3, 4, 5),), dict(in_axes=1)),
    ("pad", lambda np_, l, m: lambda x: np_.pad(x, ((1, 2), (0, 1))), (normal(3, 4, 5),),
     dict(in_axes=2)),
    ("pad with a batched value", lambda np_, l, m: lambda x, v: l.pad(
        x, v, ((1, 2, 0), (0, 1, 1))), (normal(3, 4, 5), normal(3)), {}),
    ("concatenate", lambda np_, l, m: lambda x, y: np_.concatenate([x, y], axis=0),
     (normal(3, 4, 5), normal(2, 5)), dict(in_axes=(0, None))),
    ("reverse", lambda np_, l, m: lambda x: np_.flip(x, 1), (normal(3, 4, 5),), dict(in_axes=2)),
    ("sum", lambda np_, l, m: lambda x: x.sum(axis=1), (normal(3, 4, 5),), dict(in_axes=2)),
    ("argmax (variadic reduce)", lambda np_, l, m: lambda x: np_.argmax(x, axis=0),
     (normal(3, 4, 5),), dict(in_axes=1)),
    ("cumsum", lambda np_, l, m: lambda x: np_.cumsum(x, axis=0), (normal(5, 3),),
     dict(in_axes=1)),
    ("iota", lambda np_, l, m: lambda x: x + np_.arange(3.0, dtype=np_.float32),
     (normal(5, 3),), {}),
    ("dot, both batched", lambda np_, l, m: lambda x, y: x @ y, (normal(3, 4, 5),
                                                                 normal(3, 5, 2)), {}),
    ("dot, lhs batched", lambda np_, l, m: lambda x, y: x @ y, (normal(4, 3, 5), normal(5, 2)),
     dict(in_axes=(1, None))),
    ("dot, rhs batched", lambda np_, l, m: lambda x, y: x @ y, (normal(4, 5), normal(5, 2, 3)),
     dict(in_axes=(None, 2))),
    ("einsum with dot batch dims", lambda np_, l, m: lambda x, y: np_.einsum(
        "bij,bjk->bik", x, y), (normal(2, 3, 4, 5), normal(2, 5, 3)), dict(in_axes=(1, None))),
    ("dot_general with its own batch dims", lambda np_, l, m: lambda a, b: l.dot_general(
        a, b, (((2,), (1,)), ((0,), (0,)))), (normal(3, 2, 4, 5), normal(3, 5, 2, 3)),
     dict(in_axes=(1, 2))),
    ("gather, both batched", lambda np_, l, m: lambda x, i: x[i],
     (normal(5, 6), indices(5, low=-6, high=6)), {}),
    ("gather, shared indices", lambda np_, l, m: lambda x, i: x[i],
     (normal(5, 6), indices(3, low=0, high=6)), dict(in_axes=(0, None))),
    ("gather, shared operand", lambda np_, l, m: lambda x, i: np_.asarray(x)[i],
     (normal(6), indices(3, low=0, high=6)), dict(in_axes=(None, 0))),
    ("scatter-add, all batched", lambda np_, l, m: lambda x, i, u: x.at[i].add(u),
     (normal(5, 6), indices(5, low=-6, high=6), normal(5)), {}),
    ("scatter-set, shared indices", lambda np_, l, m: lambda x, i, u: x.at[i].set(u),
     (normal(5, 6), indices(3, low=0, high=6), normal(5, 3)), dict(in_axes=(0, None, 0))),
    ("scatter-add, shared operand", lambda np_, l, m: lambda x, i, u: np_.asarray(x).at[i].add(
        u), (normal(6), indices(4, low=0, high=6), normal(4)), dict(in_axes=(None, 0, 0))),
    ("dynamic-slice, batched start", lambda np_, l, m: lambda x, i: l.dynamic_slice(
        x, (i, 1), (2, 3)), (normal(5, 6, 7), indices(5)), {}),
    ("dynamic-slice, shared start", lambda np_, l, m: lambda x, i: l.dynamic_slice(
        x, (i, 1), (2, 3)), (normal(5, 6, 7), np.int32(2)), dict(in_axes=(0, None))),
    ("dynamic-slice, shared operand", lambda np_, l, m: lambda x, i: l.dynamic_slice(
        x, (i, 1), (2, 3)), (normal(6, 7), indices(5)), dict(in_axes=(None, 0))),
    ("dynamic-update-slice, batched start", lambda np_, l, m: lambda x, u, i:
     l.dynamic_update_slice(x, u, (i, 1)), (normal(5, 6, 7), normal(5, 2, 3), indices(5)), {}),
    ("dynamic-update-slice, shared start", lambda np_, l, m: lambda x, u, i:
     l.dynamic_update_slice(x, u, (i, 1)), (normal(6, 7), normal(5, 2, 3), np.int32(3)),
     dict(in_axes=(None, 0, None))),
    ("max pool (reduce-window)", lambda np_, l, m: lambda x: l.reduce_window(
        x, -np_.inf, l.max, (2, 2), (2, 2), "VALID"), (normal(3, 6, 6),), {}),
    ("convolution, images batched", lambda np_, l, m: lambda x, w: l.conv_general_dilated(
        x, w, (1, 1), "SAME"), (normal(3, 2, 4, 6, 6), normal(5, 4, 3, 3)),
     dict(in_axes=(0, None))),
    ("convolution, kernels batched", lambda np_, l, m: lambda x, w: l.conv_general_dilated(
        x, w, (1, 1), "SAME"), (normal(2, 4, 6, 6), normal(3, 5, 4, 3, 3)),
     dict(in_axes=(None, 0))),
    ("convolution, both batched", lambda np_, l, m: lambda x, w: l.conv_general_dilated(
        x, w, (2, 1), "SAME"), (normal(3, 2, 4, 6, 6), normal(3, 5, 4, 3, 3)), {}),
    ("grouped convolution, kernels batched", lambda np_, l, m: lambda x, w:
     l.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2),
     (normal(2, 4, 6, 6), normal(3, 6, 2, 3, 3)), dict(in_axes=(None, 0))),
    ("grouped convolution, both batched", lambda np_, l, m: lambda x, w:
     l.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2),
     (normal(3, 2, 4, 6, 6), normal(3, 6, 2, 3, 3)), {}),
    ("stop_gradient", lambda np_, l, m: lambda x: l.stop_gradient(x) * 2, (normal(5, 3),), {}),
    ("random normal per key", lambda np_, l, m: lambda k: m.random.normal(k, (3,)),
     (np.asarray(jax.random.split(jax.random.PRNGKey(0), 4)),), {}),
]


@pytest.mark.parametrize("make, args, vmap_args", [c[1:] for c in OP_CASES],
                         ids=[c[0] for c in OP_CASES])
def test_op_matches_jax(make, args, vmap_args):
    check(make, args, eager=False, **vmap_args)


def test_eager_vmap_matches_jax():
    # Eagerly the batched computation runs op by op (one case per kind of rule).
    for name in ("elementwise, shared operand", "dot, lhs batched", "gather, both batched",
                 "dynamic-update-slice, batched start", "convolution, both batched"):
        _, make, args, vmap_args = next(c for c in OP_CASES if c[0] == name)
        check(make, args, jit=False, **vmap_args)


def test_signature_is_jaxs():
    ours = inspect.signature(flowjit.vmap).parameters
    theirs = inspect.signature(jax.vmap).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()]


def test_in_axes_as_pytrees_negative_ints_and_lists():
    def make(np_, l, m):
        return lambda d, pair: d["a"] * d["b"] + pair[0].sum() - pair[1]
    args = ({"a": normal(3, 4), "b": normal(3)}, (normal(2, 4), normal(3, 4)))
    check(make, args, in_axes=({"a": -1, "b": None}, (None, 1)))
    check(make, args, in_axes=[{"a": 1, "b": None}, (None, -1)])


def test_keyword_arguments_are_mapped_along_axis_0():
    check(lambda np_, l, m: lambda x, *, y: x * y, (normal(4, 3),), kwargs={"y": normal(4, 3)},
          in_axes=(None,))


def test_out_axes_int_negative_none_and_pytree():
    def make(np_, l, m):
        return lambda x, w: {"sum": (w * 2).sum(), "x": x * w, "pair": (x, x.sum())}
    args = (normal(4, 3), normal(3))
    check(make, args, in_axes=(0, None), out_axes={"sum": None, "x": -1, "pair": (1, 0)})
    check(make, args, in_axes=(0, None), out_axes=-1)


def test_axis_size_with_nothing_mapped_broadcasts_the_result():
    check(lambda np_, l, m: lambda x: x * 2, (normal(3),), in_axes=None, axis_size=4)


def test_dtypes_follow_jax():
    check(lambda np_, l, m: lambda x, k: (x.astype(np_.float16) * 2, k + 1, x > 0),
          (normal(4, 3), indices(4)))


def test_64_bit_types_with_x64_enabled(x64):
    def make(np_, l, m):
        return lambda x, k: (x * 2, k + 1, (x @ x.T).sum())
    args = (RNG.standard_normal((4, 3, 3)), np.arange(4, dtype=np.int64))
    check(make, args, eager=False)
    doubled, counted, _ = flowjit.vmap(make(*FLOWJIT))(*args)
    assert doubled.dtype == np.float64 and counted.dtype == np.int64


def test_axis_name_is_accepted():
    check(lambda np_, l, m: lambda x: x * 2, (normal(4, 3),), jit=False, axis_name="batch")


def test_nested_vmap():
    def make(np_, l, m):
        return lambda x, y: m.vmap(lambda a, b: (a * b).sum(), in_axes=(0, None))(x, y)
    check(make, (normal(4, 5, 3), normal(4, 3)))
    check(lambda np_, l, m: m.vmap(m.vmap(lambda a, b: a * b + 1, (None, 0)), (0, None)),
          (normal(4, 2), normal(3)), in_axes=(0, None))


def test_vmap_of_jit_and_jit_of_vmap():
    def make(np_, l, m):
        return m.jit(lambda x, w: np_.tanh(x @ w))
    args = (normal(4, 3), normal(3, 2))
    check(make, args, in_axes=(0, None))    # eagerly, vmap of a jitted function compiles it


def test_nested_vmap_closing_over_the_outer_example():
    check(lambda np_, l, m: lambda x, ys: m.vmap(lambda y: (x * y).sum())(ys),
          (normal(4, 3), normal(4, 5, 3)))


def test_closure_over_an_outer_traced_value():
    @flowjit.jit
    def f(x, w):
        return flowjit.vmap(lambda row: fnp.tanh(row @ w))(x)

    @jax.jit
    def g(x, w):
        return jax.vmap(lambda row: jnp.tanh(row @ w))(x)
    args = (normal(5, 3), normal(3, 2))
    assert_same(f(*args), g(*args))


def _error(fn, *args, **kwargs):
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_sizes_that_disagree_name_each_argument_and_the_users_line():
    def f(x, y):
        return x + y
    message = _error(flowjit.vmap(f), normal(3, 2), normal(4, 2))
    assert "inconsistent sizes" in message and "size 3" in message and "size 4" in message
    assert "argument 'x'" in message and "float32[3,2]" in message
    assert "test_vmap.py" in message


def test_an_axis_out_of_range_is_an_error():
    message = _error(flowjit.vmap(lambda x: x, in_axes=2), normal(3, 2))
    assert "axis 2" in message and "rank" in message and "float32[3,2]" in message
    message = _error(flowjit.vmap(lambda x: x, out_axes=3), normal(3, 2))
    assert "out_axes=3" in message


def test_in_axes_that_do_not_fit_the_arguments_are_errors():
    assert "len(in_axes)=1, len(args)=2" in _error(flowjit.vmap(lambda x, y: x, in_axes=(0,)),
                                                   normal(3), normal(3))
    assert "tree prefix" in _error(flowjit.vmap(lambda d: d, in_axes=((0, 0),)),
                                   (normal(3), normal(3), normal(3)))
    assert "must be an int, None" in _error(flowjit.vmap, lambda x: x, in_axes="x")
    assert "at least one non-None" in _error(flowjit.vmap(lambda x: x, in_axes=None),
                                             normal(3))


def test_sum_match_sums_a_mapped_output_whose_out_axes_is_none():
    check(lambda np_, l, m: lambda x, w: (x * w, w * 2), (normal(4, 3), normal(3)),
          in_axes=(0, None), out_axes=(None, 0), sum_match=True)


def test_a_mapped_output_with_out_axes_none_is_an_error():
    message = _error(flowjit.vmap(lambda x: x * 2, out_axes=None), normal(3))
    assert "out_axes is None" in message and "test_vmap.py" in message


def test_vmap_is_usable_as_the_first_name_a_program_touches():
    import subprocess
    import sys
    code = ("import flowjit, numpy as np; "
            "print(flowjit.vmap(lambda x: x * 2)(np.arange(3.0)).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[0.0, 2.0, 4.0]"
