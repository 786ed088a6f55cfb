"""`x.at[idx]` as in JAX: out-of-range updates are dropped (or clamped with mode='clip'),
negative indices count from the end, `get` clamps or fills; eagerly and under jit, against
jax.numpy. And flowjit arrays are immutable: item assignment raises a TypeError that points
to `.at[]`, and `a += 1` never writes into an array the caller shares."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy

pytestmark = pytest.mark.usefixtures("no_x64")

INDICES = [7, -6, -1, 2, np.array([7, -6, -1, 1, 1]), np.array([[0, 9], [-5, 3]]),
           slice(3, 9), (Ellipsis,)]
METHODS = ["set", "add", "multiply", "mul", "min", "max", "subtract"]


def _update(lib_array, index, method, mode):
    ref = lib_array.at[index]
    return getattr(ref, method)(-3, mode=mode) if mode else getattr(ref, method)(-3)


@pytest.mark.parametrize("mode", [None, "drop", "clip", "promise_in_bounds"])
@pytest.mark.parametrize("method", METHODS)
def test_updates_match_jax(method, mode):
    x = np.arange(5, dtype=np.int32) * 10
    for index in INDICES:
        if mode == "promise_in_bounds" and not isinstance(index, slice):
            continue  # out-of-range indices are the caller's promise not to make
        theirs = np.asarray(_update(jnp.asarray(x), index, method, mode))
        ours = _update(fnp.asarray(x), index, method, mode)
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{method} {index!r} {mode}")
        if not isinstance(index, (slice, tuple)):
            jitted = flowjit.jit(lambda x, i: _update(x, i, method, mode))(x, index)
            np.testing.assert_array_equal(jitted, theirs, err_msg=f"jit {method} {index!r}")


def test_out_of_range_rows_and_columns_are_dropped():
    x = np.zeros((3, 4), np.float32)
    for index in [(5, 1), (1, 5), 5, (-4, 0), (np.array([0, 3]), np.array([1, 1]))]:
        theirs = jnp.asarray(x).at[index].set(1.0)
        np.testing.assert_array_equal(fnp.asarray(x).at[index].set(1.0), theirs, str(index))
        np.testing.assert_array_equal(flowjit.jit(lambda x: x.at[index].set(1.0))(x), theirs)


@pytest.mark.parametrize("mode", [None, "clip", "fill", "drop"])
def test_get_matches_jax(mode):
    for x in (np.arange(5, dtype=np.int32), np.arange(5, dtype=np.float32),
              np.arange(5, dtype=np.uint8)):
        for index in INDICES + [(np.array([7, 0]),)]:
            kwargs = {} if mode is None else {"mode": mode}
            theirs = np.asarray(jnp.asarray(x).at[index].get(**kwargs))
            ours = fnp.asarray(x).at[index].get(**kwargs)
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{index!r} {mode} {x.dtype}")
            jitted = flowjit.jit(lambda x: x.at[index].get(**kwargs))(x)
            np.testing.assert_array_equal(jitted, theirs)
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(fnp.asarray(x).at[np.array([9, 1])].get(mode="fill",
                                                                          fill_value=-1),
                                  [-1, 1])


def test_item_assignment_raises_and_points_to_at():
    caller = np.arange(3.0, dtype=np.float32)
    a = fnp.asarray(caller)
    with pytest.raises(TypeError, match=r"immutable.*x = x\.at\[idx\]\.set\(y\)"):
        a[0] = 100.0
    for method, args in [("fill", (0.0,)), ("put", (0, 1.0)), ("resize", (2,))]:
        with pytest.raises(TypeError, match="immutable"):
            getattr(a, method)(*args)

    def assign(x):
        x[0] = 1.0
        return x
    with pytest.raises(TypeError, match=r"immutable.*\.at\[idx\]\.set") as info:
        flowjit.jit(assign)(caller)
    assert __file__ in str(info.value)
    np.testing.assert_array_equal(caller, [0.0, 1.0, 2.0])


def test_in_place_operators_make_new_arrays():
    caller = np.arange(3.0, dtype=np.float32)
    a = fnp.asarray(caller)
    b = a
    b += 1
    b *= 2
    b -= 1
    np.testing.assert_array_equal(caller, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(a, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(b, [1.0, 3.0, 5.0])
    assert isinstance(b, flowjit.Array)
    # numpy functions that sort or copy Arrays still work.
    np.testing.assert_array_equal(np.sort(fnp.asarray(np.array([3, 1, 2]))), [1, 2, 3])
