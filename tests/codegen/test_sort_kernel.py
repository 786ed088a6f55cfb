"""The CPU sort and topk kernels (codegen/sort_kernel.py) against the reference semantics,
bit for bit (sorting moves values, it computes none): every element type, rows short
(insertion sort) and long (radix passes, skipped ones), every axis, keyed comparators (the
radix path) and others (the merge sort), several operands, rows split over threads, and
the same kernels on the emulated GPU."""
from __future__ import annotations

import numpy as np
import pytest

from flowjit.codegen.sort_kernel import radix_key_of, sort_parallel_rows
from flowjit.ir.builder import Builder, NameTable
from flowjit.ir.dtypes import DType, from_numpy
from flowjit.ir.module import Module
from flowjit.ir.reference import evaluate
from flowjit.ir.shapes import ArrayShape
from flowjit.runtime.executable import compile_module
from tests.cuda.helpers import run_emulated

ALL = [DType.PRED, DType.S8, DType.S16, DType.S32, DType.S64, DType.U8, DType.U16,
       DType.U32, DType.U64, DType.F16, DType.BF16, DType.F32, DType.F64]


def values(rng, dtype: DType, shape) -> np.ndarray:
    """Few distinct values (ties), and for floats NaNs of both signs, infinities and both
    zeros."""
    if dtype is DType.PRED:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.is_int:
        info = np.iinfo(dtype.to_numpy())
        pool = np.array([info.min, info.max, 0, 1, 2, info.max - 1], dtype.to_numpy())
        small = rng.integers(max(info.min, -50), 50, shape).astype(dtype.to_numpy())
        return np.where(rng.random(shape) < 0.2, rng.choice(pool, shape), small)
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float64)
    x = np.round(rng.standard_normal(shape) * 4, 1)
    x = np.where(rng.random(shape) < 0.2, rng.choice(specials, shape), x)
    return x.astype(dtype.to_numpy())


def comparator(b_names: NameTable, dtypes: list[DType], kind: str):
    """keyed LT/GT on operand 0 (total order for floats), lexicographic on operands 0 and 1,
    or x0 + x1 < y0 + y1 (not keyed: the merge sort)."""
    b = Builder("cmp", b_names)
    p = [b.parameter(k, ArrayShape(dtypes[k // 2], ()), "p") for k in range(2 * len(dtypes))]

    def compare(x, y, direction):
        attrs = {"direction": direction}
        if x.shape.dtype.is_float:
            attrs["type"] = "TOTALORDER"
        return b.add("compare", [x, y], attrs)
    if kind in ("LT", "GT"):
        return b.finish(compare(p[0], p[1], kind))
    if kind == "lexicographic":
        tie = b.add("and", [compare(p[0], p[1], "EQ"), compare(p[2], p[3], "LT")])
        return b.finish(b.add("or", [compare(p[0], p[1], "LT"), tie]))
    left = b.add("add", [p[0], b.add("convert", [p[2]], shape=p[0].shape)])
    right = b.add("add", [p[1], b.add("convert", [p[3]], shape=p[1].shape)])
    return b.finish(b.add("compare", [left, right], {"direction": "LT"}))


def sort_module(shapes: list[ArrayShape], axis: int, kind: str) -> Module:
    names = NameTable()
    cmp = comparator(names, [s.dtype for s in shapes], kind)
    b = Builder("main", names)
    params = [b.parameter(k, s) for k, s in enumerate(shapes)]
    root = b.add("sort", params, {"dimensions": (axis,), "is_stable": True},
                 {"to_apply": cmp})
    return Module("m", b.finish(root), [cmp])


def topk_module(shape: ArrayShape, k: int, largest: bool) -> Module:
    b = Builder("main")
    x = b.parameter(0, shape)
    return Module("m", b.finish(b.add("topk", [x], {"k": k, "largest": largest})), [])


def leaves(value) -> list[np.ndarray]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def run_and_compare(module: Module, args: list) -> None:
    want = leaves(evaluate(module, args))
    got = compile_module(module)(*args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        # Bit for bit: NaN payloads and signs, signed zeros.
        np.testing.assert_array_equal(g.view(f"u{g.itemsize}") if g.dtype != bool else g,
                                      w.view(f"u{w.itemsize}") if w.dtype != bool else w)


@pytest.mark.parametrize("dtype", ALL, ids=str)
@pytest.mark.parametrize("length", [1, 7, 33, 600])
def test_keyed_sort_of_every_type(dtype, length):
    rng = np.random.default_rng(length)
    shape = ArrayShape(dtype, (3, length))
    module = sort_module([shape, ArrayShape(DType.S32, shape.dims)], 1, "LT")
    assert radix_key_of(module.entry.root) is not None
    position = np.broadcast_to(np.arange(length, dtype=np.int32), shape.dims).copy()
    run_and_compare(module, [values(rng, dtype, shape.dims), position])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("direction", ["LT", "GT"])
def test_every_axis_and_direction(axis, direction):
    rng = np.random.default_rng(axis)
    shape = ArrayShape(DType.F32, (5, 40, 3))
    run_and_compare(sort_module([shape], axis, direction),
                    [values(rng, DType.F32, shape.dims)])


def test_long_rows_run_every_radix_pass_and_skip_equal_digits():
    rng = np.random.default_rng(3)
    wide = rng.standard_normal((2, 3000)).astype(np.float32)     # all three passes
    narrow = rng.integers(0, 40, (2, 3000)).astype(np.int32)     # top passes skipped
    wide64 = rng.standard_normal((2, 3000))                      # six 64-bit passes
    for x in (wide, narrow, wide64):
        shape = ArrayShape(from_numpy(x.dtype), x.shape)
        run_and_compare(sort_module([shape], 1, "LT"), [x])


@pytest.mark.parametrize("kind", ["lexicographic", "sum"])
@pytest.mark.parametrize("length", [5, 16, 17, 70])
def test_other_comparators_take_the_merge_sort(kind, length):
    rng = np.random.default_rng(length)
    first = ArrayShape(DType.F32, (4, length))
    second = ArrayShape(DType.S16, (4, length))
    module = sort_module([first, second], 1, kind)
    assert radix_key_of(module.entry.root) is None
    x = values(rng, DType.F32, first.dims)
    if kind == "sum":   # plain < on floats: a strict weak order only without NaNs
        x = np.nan_to_num(x, nan=3.0, posinf=9.0, neginf=-9.0)
    run_and_compare(module, [x, rng.integers(-3, 3, second.dims).astype(np.int16)])


def test_ieee_less_than_on_floats_is_not_taken_for_a_total_order():
    """compare LT without type=TOTALORDER ties -0.0 with 0.0: the merge sort keeps their
    order, as the reference's stable sort does."""
    shape = ArrayShape(DType.F32, (1, 40))
    names = NameTable()
    b = Builder("cmp", names)
    scalar = ArrayShape(DType.F32, ())
    lt = b.add("compare", [b.parameter(0, scalar), b.parameter(1, scalar)],
               {"direction": "LT"})
    cmp = b.finish(lt)
    main = Builder("main", names)
    root = main.add("sort", [main.parameter(0, shape)], {"dimensions": (1,)},
                    {"to_apply": cmp})
    module = Module("m", main.finish(root), [cmp])
    assert radix_key_of(module.entry.root) is None
    x = np.tile(np.array([0.0, -0.0, 1.0, -1.0], np.float32), 10).reshape(1, 40)
    run_and_compare(module, [x])


@pytest.mark.parametrize("dtype", [DType.S8, DType.U16, DType.F16, DType.BF16, DType.F32,
                                   DType.F64, DType.S64], ids=str)
@pytest.mark.parametrize("k", [0, 1, 5, 32, 33, 40])
@pytest.mark.parametrize("largest", [True, False])
def test_topk(dtype, k, largest):
    rng = np.random.default_rng(k)
    shape = ArrayShape(dtype, (3, 40))
    run_and_compare(topk_module(shape, k, largest), [values(rng, dtype, shape.dims)])


def test_rows_split_over_threads_give_the_same_result(monkeypatch):
    monkeypatch.setenv("FLOWJIT_THREADS", "2")
    rng = np.random.default_rng(9)
    shape = ArrayShape(DType.F32, (8, 3, 2048))
    module = sort_module([shape, ArrayShape(DType.S32, shape.dims)], 2, "GT")
    assert sort_parallel_rows(module.entry.root) == 8
    x = values(rng, DType.F32, shape.dims)
    run_and_compare(module, [x, rng.integers(0, 9, shape.dims).astype(np.int32)])
    top = topk_module(ArrayShape(DType.F32, (64, 4096)), 8, True)
    assert sort_parallel_rows(top.entry.root) == 64
    run_and_compare(top, [rng.standard_normal((64, 4096)).astype(np.float32)])


def test_sorting_along_dimension_0_stays_on_one_thread(monkeypatch):
    monkeypatch.setenv("FLOWJIT_THREADS", "2")
    module = sort_module([ArrayShape(DType.F32, (4096, 64))], 0, "LT")
    assert sort_parallel_rows(module.entry.root) == 0


@pytest.mark.parametrize("module", [
    sort_module([ArrayShape(DType.F32, (3, 50)), ArrayShape(DType.S32, (3, 50))], 1, "LT"),
    sort_module([ArrayShape(DType.F32, (3, 20)), ArrayShape(DType.S32, (3, 20))], 0,
                "lexicographic"),
    topk_module(ArrayShape(DType.F32, (3, 50)), 4, True),
], ids=["radix", "merge", "topk"])
def test_the_gpu_lowering_on_the_emulated_device(module):
    rng = np.random.default_rng(2)
    args = [values(rng, p.shape.dtype, p.shape.dims) for p in module.entry.parameters]
    got, _ = run_emulated(module, args)
    for g, w in zip(got, leaves(evaluate(module, args))):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
