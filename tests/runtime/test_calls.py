"""The call path: the caller's arrays reach compiled code as they are (views, subclasses,
other layouts), outputs are fresh arrays, and nothing the caller holds is overwritten."""
import numpy as np
import pytest

import flowjit
from flowjit.runtime.executable import DATA_OFFSET


def test_the_data_pointer_offset_is_found_on_cpython():
    # Where it is None the runtime still works (it passes addresses); on CPython it is
    # the slot right after the object header.
    a = np.arange(5.0)[1:]
    assert DATA_OFFSET is not None
    import ctypes
    assert ctypes.c_void_p.from_address(id(a) + DATA_OFFSET).value == a.ctypes.data


@pytest.mark.parametrize("make", [
    lambda x: x[2:],                      # a view that starts inside its buffer
    lambda x: np.asfortranarray(x.reshape(2, -1)).reshape(-1, order="F"),
    lambda x: x[::-1],                    # negative strides: copied to C order
    lambda x: x.view(flowjit.Array),     # the Array a jitted call returns
])
def test_inputs_of_any_layout_give_numpy_results(make):
    x = make(np.arange(12, dtype=np.float32))
    f = flowjit.jit(lambda a: a * 2.0 + 1.0)
    np.testing.assert_array_equal(f(x), np.asarray(x) * 2 + 1)
    np.testing.assert_array_equal(f(x), np.asarray(x) * 2 + 1)   # the cached path too


def test_repeated_and_passed_through_outputs_are_separate_arrays():
    f = flowjit.jit(lambda a, b: (a + b, a + b, a, b * 3.0))
    a, b = np.arange(4, dtype=np.float32), np.ones(4, np.float32)
    s1, s2, same_a, b3 = f(a, b)
    np.testing.assert_array_equal(s1, a + b)
    np.testing.assert_array_equal(s2, a + b)
    np.testing.assert_array_equal(same_a, a)
    np.testing.assert_array_equal(b3, b * 3)
    # Arrays refuse item assignment (as JAX's); write through a plain numpy view instead.
    np.asarray(s1)[0] = 100.0
    np.asarray(same_a)[1] = 100.0
    assert s2[0] == 1.0 and a[1] == 1.0     # no output aliases another, or an input
    assert isinstance(s1, flowjit.Array) and isinstance(same_a, flowjit.Array)


def test_a_new_shape_through_the_fast_path_retraces():
    f = flowjit.jit(lambda a: a.sum())
    assert f(np.ones(3, np.float32)) == 3.0
    assert f(np.ones(5, np.float32)) == 5.0
    assert f(np.ones(5, np.int32)) == 5
    assert f.trace_count == 3
    assert f(np.ones(3, np.float32)) == 3.0
    assert f.trace_count == 3


def test_results_the_caller_holds_are_never_written_again():
    # Large outputs are reused once dropped; anything still referenced (the array, a view
    # of it) must keep its values through later calls.
    f = flowjit.jit(lambda x, s: x * s)
    x = np.arange(512 * 256, dtype=np.float32).reshape(512, 256)
    kept = f(x, np.float32(1.0))
    view = f(x, np.float32(2.0))[3:5]
    for scale in range(3, 8):
        f(x, np.float32(scale))
    np.testing.assert_array_equal(kept, x)
    np.testing.assert_array_equal(view, x[3:5] * 2)


def test_a_loop_that_rebinds_its_result_reuses_two_buffers():
    f = flowjit.jit(lambda x: x + 1.0)
    y = np.zeros((512, 256), np.float32)
    buffers = set()
    for _ in range(8):
        y = f(y)
        buffers.add(y.ctypes.data)
    np.testing.assert_array_equal(y, np.full((512, 256), 8, np.float32))
    assert len(buffers) <= 2
