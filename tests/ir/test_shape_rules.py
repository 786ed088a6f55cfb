"""Shape rules of the indexing ops check every dimension number, as XLA does (issue 12,
item 2). JAX's own shape rules (which follow XLA's ShapeInference) are the oracle: a
configuration JAX accepts gives the shape JAX gives; one JAX rejects, we reject too, with a
ShapeError naming the op. `index_vector_dim` is always the last indices dim in `jax.lax`, so
other placements are checked by hand.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest
from jax import lax

from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError
from flowjit.ir.ops import infer_shape
from flowjit.ir.shapes import ArrayShape

F32, S32 = DType.F32, DType.S32


def arr(dtype: DType, *dims: int) -> ArrayShape:
    return ArrayShape(dtype, dims)


def jax_shape(fn, *shapes):
    """The result shape jax gives, or the exception its shape rule raises."""
    args = [jax.ShapeDtypeStruct(s.dims, np.int32 if s.dtype.is_int else np.float32)
            for s in shapes]
    try:
        return tuple(jax.eval_shape(fn, *args).shape)
    except (TypeError, ValueError, ZeroDivisionError) as e:   # a stride of 0 divides by 0
        return e


# --- gather ------------------------------------------------------------------------------
# (id, operand dims, indices dims, offset_dims, collapsed, start_index_map, operand_batching,
#  indices_batching, slice_sizes)
GATHERS = [
    ("rows", (5, 3), (7, 1), (1,), (0,), (0,), (), (), (1, 3)),
    ("offset-first", (5, 3), (7, 1), (0,), (0,), (0,), (), (), (1, 3)),
    ("two-index-dims", (4, 5, 6), (2, 3, 2), (2,), (0, 1), (0, 1), (), (), (1, 1, 6)),
    ("batching", (3, 5), (3, 2, 1), (), (1,), (1,), (0,), (0,), (1, 1)),
    ("window", (6, 6), (4, 2), (1, 2), (), (1, 0), (), (), (2, 3)),
    ("negative-start-index-map", (5, 3), (7, 1), (1,), (0,), (-1,), (), (), (1, 3)),
    ("start-index-map-out-of-range", (5, 3), (7, 1), (1,), (0,), (2,), (), (), (1, 3)),
    ("start-index-map-repeats", (5, 3), (7, 2), (1,), (0,), (0, 0), (), (), (1, 3)),
    ("offset-dims-out-of-range", (5, 3), (7, 1), (5,), (0,), (0,), (), (), (1, 3)),
    ("negative-offset-dims", (5, 3), (7, 1), (-1,), (0,), (0,), (), (), (1, 3)),
    ("offset-dims-unsorted", (6, 6), (4, 1), (2, 1), (), (0,), (), (), (2, 3)),
    ("collapsed-slice-of-two", (5, 3), (7, 1), (1,), (0,), (0,), (), (), (2, 3)),
    ("collapsed-repeats", (5, 3, 2), (7, 1), (1,), (0, 0), (0,), (), (), (1, 3, 1)),
    ("collapsed-unsorted", (5, 3, 2), (7, 1), (1,), (2, 0), (0,), (), (), (1, 3, 1)),
    ("slice-larger-than-operand", (5, 3), (7, 1), (1,), (0,), (0,), (), (), (1, 4)),
    ("slice-sizes-too-short", (5, 3), (7, 1), (1,), (0,), (0,), (), (), (1,)),
    ("index-vector-too-long", (5, 3), (7, 2), (1,), (0,), (0,), (), (), (1, 3)),
    ("too-few-offset-dims", (5, 3), (7, 1), (), (0,), (0,), (), (), (1, 3)),
    ("too-many-offset-dims", (5, 3), (7, 1), (1, 2), (0,), (0,), (), (), (1, 3)),
    ("collapsed-is-batching", (3, 5), (3, 2, 1), (), (0, 1), (1,), (0,), (0,), (1, 1)),
    ("start-index-map-is-batching", (3, 5), (3, 2, 1), (1,), (), (0,), (0,), (0,), (1, 5)),
    ("batching-sizes-differ", (3, 5), (4, 2, 1), (), (1,), (1,), (0,), (0,), (1, 1)),
    ("batching-without-partner", (3, 5), (3, 2, 1), (), (1,), (1,), (0,), (), (1, 1)),
    ("indices-batching-is-vector-dim", (3, 5), (3, 2, 1), (), (1,), (1,), (0,), (2,), (1, 1)),
]


def gather_attrs(offset, collapsed, start_map, operand_batching, index_batching, sizes,
                 ivd):
    return {"offset_dims": offset, "collapsed_slice_dims": collapsed,
            "start_index_map": start_map, "operand_batching_dims": operand_batching,
            "start_indices_batching_dims": index_batching, "index_vector_dim": ivd,
            "slice_sizes": sizes}


@pytest.mark.parametrize("case", GATHERS, ids=[c[0] for c in GATHERS])
def test_gather_shape_matches_jax(case):
    _, operand_dims, index_dims, offset, collapsed, start_map, obd, ibd, sizes = case
    operand, indices = arr(F32, *operand_dims), arr(S32, *index_dims)
    numbers = lax.GatherDimensionNumbers(offset, collapsed, start_map, obd, ibd)
    expected = jax_shape(lambda o, i: lax.gather(o, i, numbers, sizes), operand, indices)
    attrs = gather_attrs(offset, collapsed, start_map, obd, ibd, sizes, len(index_dims) - 1)
    if isinstance(expected, Exception):
        with pytest.raises(ShapeError, match=r"^gather: .*operands: f32\[") as info:
            infer_shape("gather", [operand, indices], attrs, {})
        assert "missing attribute" not in str(info.value)
    else:
        assert infer_shape("gather", [operand, indices], attrs, {}) == arr(F32, *expected)


def test_gather_index_vector_dim_first():
    # indices [2, 7] with the index vector along dim 0: 7 windows of 2 rows x 3 columns.
    attrs = gather_attrs((1, 2), (), (0, 1), (), (), (2, 3), 0)
    assert infer_shape("gather", [arr(F32, 5, 4), arr(S32, 2, 7)], attrs, {}) == \
        arr(F32, 7, 2, 3)


@pytest.mark.parametrize("ivd", [-1, 3])
def test_gather_index_vector_dim_out_of_range(ivd):
    attrs = gather_attrs((1,), (0,), (0,), (), (), (1, 3), ivd)
    with pytest.raises(ShapeError, match="index_vector_dim"):
        infer_shape("gather", [arr(F32, 5, 3), arr(S32, 7, 1)], attrs, {})


def test_gather_float_indices_are_rejected():
    attrs = gather_attrs((1,), (0,), (0,), (), (), (1, 3), 1)
    with pytest.raises(ShapeError, match="indices must be integers"):
        infer_shape("gather", [arr(F32, 5, 3), arr(F32, 7, 1)], attrs, {})


# --- scatter -----------------------------------------------------------------------------
# (id, operand dims, indices dims, updates dims, update_window_dims, inserted_window_dims,
#  scatter_dims_to_operand_dims, operand_batching, indices_batching)
SCATTERS = [
    ("rows", (5, 3), (7, 1), (7, 3), (1,), (0,), (0,), (), ()),
    ("partial-window", (5, 3), (7, 1), (7, 2), (1,), (0,), (0,), (), ()),
    ("window-first", (5, 3), (7, 1), (3, 7), (0,), (0,), (0,), (), ()),
    ("batching", (3, 5), (3, 2, 1), (3, 2), (), (1,), (1,), (0,), (0,)),
    ("issue-4000000-updates-rank-1", (5,), (1, 1), (4000000,), (0,), (), (0,), (), ()),
    ("issue-4000000-updates-inserted", (5,), (1, 1), (4000000,), (), (0,), (0,), (), ()),
    ("window-larger-than-operand", (5, 3), (7, 1), (7, 4), (1,), (0,), (0,), (), ()),
    ("scatter-dims-differ", (5, 3), (7, 1), (6, 3), (1,), (0,), (0,), (), ()),
    ("update-window-dims-out-of-range", (5, 3), (7, 1), (7, 3), (2,), (0,), (0,), (), ()),
    ("negative-scatter-dims-to-operand", (5, 3), (7, 1), (7, 3), (1,), (0,), (-1,), (), ()),
    ("scatter-dims-to-operand-out-of-range", (5, 3), (7, 1), (7, 3), (1,), (0,), (2,), (), ()),
    ("inserted-unsorted", (5, 3, 2), (7, 1), (7, 3), (1,), (2, 0), (0,), (), ()),
    ("inserted-repeats", (5, 3, 2), (7, 1), (7, 3), (1,), (0, 0), (0,), (), ()),
    ("too-few-window-dims", (5, 3), (7, 1), (7,), (), (0,), (0,), (), ()),
    ("index-vector-too-long", (5, 3), (7, 2), (7, 3), (1,), (0,), (0,), (), ()),
    ("update-window-dims-unsorted", (6, 6), (4, 1), (4, 2, 3), (2, 1), (), (0,), (), ()),
    ("inserted-is-batching", (3, 5), (3, 2, 1), (3, 2), (), (0, 1), (1,), (0,), (0,)),
    ("batching-sizes-differ", (3, 5), (4, 2, 1), (4, 2), (), (1,), (1,), (0,), (0,)),
]


REDUCER = {"to_apply": None}   # the shape rule only needs it present; the verifier checks it


def scatter_attrs(window, inserted, to_operand, operand_batching, index_batching, ivd):
    return {"update_window_dims": window, "inserted_window_dims": inserted,
            "scatter_dims_to_operand_dims": to_operand, "input_batching_dims": operand_batching,
            "scatter_indices_batching_dims": index_batching, "index_vector_dim": ivd}


@pytest.mark.parametrize("case", SCATTERS, ids=[c[0] for c in SCATTERS])
def test_scatter_shape_matches_jax(case):
    _, operand_dims, index_dims, update_dims, window, inserted, to_operand, obd, ibd = case
    operand, indices, updates = (arr(F32, *operand_dims), arr(S32, *index_dims),
                                 arr(F32, *update_dims))
    numbers = lax.ScatterDimensionNumbers(window, inserted, to_operand, obd, ibd)
    expected = jax_shape(lambda o, i, u: lax.scatter_add(o, i, u, numbers),
                         operand, indices, updates)
    attrs = scatter_attrs(window, inserted, to_operand, obd, ibd, len(index_dims) - 1)
    if isinstance(expected, Exception):
        with pytest.raises(ShapeError, match=r"^scatter: .*operands: f32\[") as info:
            infer_shape("scatter", [operand, indices, updates], attrs, REDUCER)
        assert "missing attribute" not in str(info.value)
    else:
        assert infer_shape("scatter", [operand, indices, updates], attrs, REDUCER) == \
            arr(F32, *expected)


def test_scatter_updates_must_match_the_operand_type():
    attrs = scatter_attrs((1,), (0,), (0,), (), (), 1)
    with pytest.raises(ShapeError, match="element type"):
        infer_shape("scatter", [arr(F32, 5, 3), arr(S32, 7, 1), arr(DType.F64, 7, 3)],
                    attrs, REDUCER)


# --- slices, pads, concatenation -------------------------------------------------------------

@pytest.mark.parametrize("dims, start, limit, strides", [
    ((10,), (2,), (9,), (3,)), ((4, 5), (0, 5), (4, 5), (1, 1)),
    ((10,), (5,), (3,), (1,)), ((10,), (0,), (11,), (1,)), ((10,), (-1,), (3,), (1,)),
    ((10,), (0,), (3,), (0,)), ((4, 5), (0,), (4,), (1,)),
])
def test_slice_shape_matches_jax(dims, start, limit, strides):
    operand = arr(F32, *dims)
    expected = jax_shape(lambda x: lax.slice(x, start, limit, strides), operand)
    attrs = {"slice": tuple(zip(start, limit, strides))}
    if isinstance(expected, Exception):
        with pytest.raises(ShapeError, match="^slice: "):
            infer_shape("slice", [operand], attrs, {})
    else:
        assert infer_shape("slice", [operand], attrs, {}) == arr(F32, *expected)


@pytest.mark.parametrize("dims, config", [
    ((5,), ((1, 2, 0),)), ((5,), ((-2, 1, 1),)), ((3, 4), ((0, 0, 2), (-4, 0, 0))),
    ((5,), ((-6, 0, 0),)), ((5,), ((0, 0, -1),)), ((5,), ((0, 0, 0), (0, 0, 0))),
])
def test_pad_shape_matches_jax(dims, config):
    operand, value = arr(F32, *dims), arr(F32)
    expected = jax_shape(lambda x, v: lax.pad(x, v, config), operand, value)
    if isinstance(expected, Exception):
        with pytest.raises(ShapeError, match="^pad: "):
            infer_shape("pad", [operand, value], {"padding": config}, {})
    else:
        assert infer_shape("pad", [operand, value], {"padding": config}, {}) == \
            arr(F32, *expected)


@pytest.mark.parametrize("shapes, dimension", [
    ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1), ([(2, 3), (2, 3)], 2),
    ([(2, 3), (2, 3)], -1), ([(2, 3), (3, 3)], 1), ([(2, 3), (2, 3, 1)], 0),
])
def test_concatenate_shape_matches_jax(shapes, dimension):
    operands = [arr(F32, *s) for s in shapes]
    expected = jax_shape(lambda *xs: lax.concatenate(xs, dimension), *operands)
    attrs = {"dimensions": (dimension,)}
    if isinstance(expected, Exception):
        with pytest.raises(ShapeError, match="^concatenate: "):
            infer_shape("concatenate", operands, attrs, {})
    else:
        assert infer_shape("concatenate", operands, attrs, {}) == arr(F32, *expected)


def test_concatenate_names_exactly_one_dimension():
    with pytest.raises(ShapeError, match="must name one dimension"):
        infer_shape("concatenate", [arr(F32, 2, 3)] * 2, {"dimensions": (0, 1)}, {})


# --- dynamic slices ----------------------------------------------------------------------------

def test_dynamic_slice_checks_sizes_and_start_indices():
    x, i = arr(F32, 6, 4), arr(S32)
    assert infer_shape("dynamic-slice", [x, i, i], {"dynamic_slice_sizes": (2, 4)}, {}) == \
        arr(F32, 2, 4)
    bad = [([x, i, i], (7, 1), "do not fit"), ([x, i, i], (-1, 1), "do not fit"),
           ([x, i], (2, 2), "needs 2 start indices"), ([x, i, i], (2,), "one size per"),
           ([x, i, arr(DType.U32)], (2, 2), "same element type"),
           ([x, i, arr(S32, 1)], (2, 2), "integer scalars"),
           ([x, i, arr(F32)], (2, 2), "integer scalars")]
    for shapes, sizes, piece in bad:
        with pytest.raises(ShapeError, match=f"^dynamic-slice: .*{piece}"):
            infer_shape("dynamic-slice", shapes, {"dynamic_slice_sizes": sizes}, {})


def test_dynamic_update_slice_checks_the_update_and_start_indices():
    x, i = arr(F32, 6, 4), arr(S32)
    assert infer_shape("dynamic-update-slice", [x, arr(F32, 2, 4), i, i], {}, {}) == x
    bad = [([x, arr(F32, 7, 1), i, i], "larger than the operand"),
           ([x, arr(F32, 2), i], "rank and type"), ([x, arr(DType.F64, 2, 2), i, i],
                                                    "rank and type"),
           ([x, arr(F32, 2, 2), i], "needs 2 start indices"),
           ([x, arr(F32, 2, 2), i, arr(DType.S64)], "same element type")]
    for shapes, piece in bad:
        with pytest.raises(ShapeError, match=f"^dynamic-update-slice: .*{piece}"):
            infer_shape("dynamic-update-slice", shapes, {}, {})
