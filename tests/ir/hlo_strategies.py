"""Hypothesis strategies for random well-typed HLO modules, and comparison helpers.

`modules_with_args()` draws a module built with the Builder (many opcodes, every element type,
special float literals, integer extremes, reducer computations, tuples and metadata full of
quotes and backslashes) together with argument values for its parameters. Shared by
test_roundtrip.py and test_verifier.py.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from flowjit.ir.builder import Builder, NameTable, scalar_computation
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.ops import OPS
from flowjit.ir.shapes import ArrayShape, TupleShape

FLOATS = [DType.F16, DType.BF16, DType.F32, DType.F64]
SIGNED = [DType.S8, DType.S16, DType.S32, DType.S64]
UNSIGNED = [DType.U8, DType.U16, DType.U32, DType.U64]
INTS = SIGNED + UNSIGNED
NUMERIC = INTS + FLOATS
LOGICAL = [DType.PRED] + INTS
ALL = [DType.PRED] + NUMERIC

NEG_NAN = math.copysign(math.nan, -1.0)

# The element types each OpSpec.dtypes class admits.
DTYPES_OF_CLASS = {"float": FLOATS, "numeric": NUMERIC, "int": INTS, "logical": LOGICAL,
                   "signed": FLOATS + SIGNED, "any": ALL}
# Elementwise ops without attributes, from the op table: a new one is fuzzed at once.
# (convert and bitcast-convert name their result type; they have generators of their own.)
_OWN_GENERATORS = {"convert", "bitcast-convert"}
UNARY = sorted(op.value for op, s in OPS.items() if s.elementwise and s.arity == 1
               and not s.attrs and op.value not in _OWN_GENERATORS)
BINARY = sorted(op.value for op, s in OPS.items() if s.elementwise and s.arity == 2
                and not s.attrs)

# Metadata text: quotes, backslashes, escapes that look like escapes, braces, non-ASCII.
METADATA_TEXT = st.lists(
    st.sampled_from(list('ab _/.=,{}()[]"\\\'\n\t%#é漢') + ["\\n", '\\"', "\\\\"]),
    max_size=12).map("".join)
METADATA = st.fixed_dictionaries(
    {}, optional={"op_type": METADATA_TEXT, "op_name": METADATA_TEXT,
                  "source_file": METADATA_TEXT,
                  "source_line": st.integers(-5, 10**9)})


def float_specials(dtype: DType) -> list[float]:
    """NaN of both signs, infinities, signed zeros, extremes and awkward decimals."""
    info = ml_dtypes.finfo(dtype.to_numpy())
    big, tiny = float(info.max), float(info.tiny)
    return [math.nan, NEG_NAN, math.inf, -math.inf, 0.0, -0.0, big, -big, tiny, -tiny,
            float(info.smallest_subnormal), -float(info.smallest_subnormal), float(info.eps),
            1.0 / 3.0, 0.1, -2.5, 1e-3, 65504.0, 1e30]


def int_extremes(dtype: DType) -> list[int]:
    info = np.iinfo(dtype.to_numpy())
    return [int(info.min), int(info.max), int(info.min) + 1, int(info.max) - 1, 0, 1]


def elements(dtype: DType) -> st.SearchStrategy:
    """Python scalars that are exactly representable in `dtype` (or become inf there)."""
    if dtype is DType.PRED:
        return st.booleans()
    if dtype.is_int:
        info = np.iinfo(dtype.to_numpy())
        return st.sampled_from(int_extremes(dtype)) | st.integers(int(info.min), int(info.max))
    specials = st.sampled_from(float_specials(dtype))
    if dtype is DType.BF16:
        ordinary = st.floats(width=32, allow_nan=False).map(
            lambda v: float(np.float32(v).astype(ml_dtypes.bfloat16)))
    else:
        ordinary = st.floats(width=dtype.bits, allow_nan=False)
    return specials | ordinary


def random_array(rng: np.random.Generator, shape: ArrayShape) -> np.ndarray:
    """A parameter value: ordinary numbers with some special values mixed in."""
    dtype, dims = shape.dtype, shape.dims
    if dtype is DType.PRED:
        return rng.random(dims) < 0.5
    if dtype.is_int:
        low = -20 if dtype.is_signed_int else 0
        out = np.asarray(rng.integers(low, low + 41, size=dims)).astype(dtype.to_numpy())
        mask = np.asarray(rng.random(dims) < 0.15)
        if mask.any():
            extremes = np.array(int_extremes(dtype), dtype=dtype.to_numpy())
            out[mask] = extremes[rng.integers(0, len(extremes), size=int(mask.sum()))]
        return out
    values = np.asarray(rng.normal(scale=3.0, size=dims))
    specials = np.array(float_specials(dtype))
    mask = np.asarray(rng.random(dims) < 0.15)
    values[mask] = specials[rng.integers(0, len(specials), size=int(mask.sum()))]
    with np.errstate(over="ignore"):  # 1e30 and the f64 extremes become inf in f16
        return values.astype(dtype.to_numpy())


class ModuleMaker:
    """Builds one random well-typed module, drawing every choice from hypothesis."""

    def __init__(self, draw):
        self.draw = draw
        self.names = NameTable()
        self.b = Builder("entry", self.names)
        self.pool: list[Instruction] = []        # array-valued instructions
        self.callees: list[Computation] = []
        self.param_shapes: list[ArrayShape] = []

    # --- small helpers -----------------------------------------------------------------
    def choose(self, options):
        return self.draw(st.sampled_from(list(options)))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def dims(self, min_rank: int = 0, max_rank: int = 3, min_dim: int = 0) -> tuple[int, ...]:
        """Small dims; the first may be 0 (empty arrays) unless min_dim says otherwise."""
        rank = self.integer(min_rank, max_rank)
        return tuple(self.integer(min_dim if i == 0 else max(min_dim, 1), 4)
                     for i in range(rank))

    def new_array(self, shape: ArrayShape) -> Instruction:
        if shape.size <= 6 and self.draw(st.booleans()):
            values = self.draw(st.lists(elements(shape.dtype), min_size=shape.size,
                                        max_size=shape.size))
            with np.errstate(over="ignore"):
                array = np.array(values, dtype=shape.dtype.to_numpy()).reshape(shape.dims)
            inst = self.b.constant(array, shape.dtype)
        else:
            inst = self.b.parameter(len(self.param_shapes), shape)
            self.param_shapes.append(shape)
        self.pool.append(inst)
        return inst

    def scalar_constant(self, dtype: DType) -> Instruction:
        value = self.draw(elements(dtype))
        with np.errstate(over="ignore"):
            return self.b.constant(np.array(value, dtype=dtype.to_numpy()), dtype)

    def operand(self, dtypes=ALL, min_rank: int = 0, max_size: int = 64,
                min_dim: int = 0) -> Instruction:
        """An existing array of an allowed type, or a fresh parameter/constant."""
        fits = [i for i in self.pool if i.shape.dtype in dtypes and i.shape.rank >= min_rank
                and i.shape.size <= max_size and min(i.shape.dims, default=1) >= min_dim]
        if fits and self.draw(st.integers(0, 3)) > 0:
            return self.choose(fits)
        return self.new_array(ArrayShape(self.choose(dtypes), self.dims(min_rank,
                                                                        min_dim=min_dim)))

    def of_shape(self, shape: ArrayShape) -> Instruction:
        same = [i for i in self.pool if i.shape == shape]
        if same and self.draw(st.booleans()):
            return self.choose(same)
        return self.new_array(shape)

    def like(self, x: Instruction) -> Instruction:
        return self.of_shape(x.shape)

    def add(self, opcode, operands, attrs=None, calls=None, shape=None) -> Instruction:
        if self.draw(st.integers(0, 3)) == 0:
            self.b.metadata = self.draw(METADATA)
        else:
            self.b.metadata = {}
        inst = self.b.add(opcode, operands, attrs, calls, shape)
        if not inst.shape.is_tuple:
            self.pool.append(inst)
        return inst

    # --- one generator per kind of op ----------------------------------------------------
    def op_unary(self, opcode: str):
        return self.add(opcode, [self.operand(DTYPES_OF_CLASS[OPS[opcode].dtypes])])

    def op_binary(self, opcode: str):
        x = self.operand(DTYPES_OF_CLASS[OPS[opcode].dtypes])
        return self.add(opcode, [x, self.like(x)])

    def op_compare(self):
        x = self.operand(ALL)
        attrs = {"direction": self.choose(["EQ", "NE", "LT", "LE", "GT", "GE"])}
        if x.shape.dtype.is_float and self.draw(st.booleans()):
            attrs["type"] = "FLOAT"
        elif x.shape.dtype.is_signed_int and self.draw(st.booleans()):
            attrs["type"] = "SIGNED"
        elif x.shape.dtype.is_unsigned_int and self.draw(st.booleans()):
            attrs["type"] = "UNSIGNED"
        return self.add("compare", [x, self.like(x)], attrs)

    def op_select(self):
        x = self.operand(ALL)
        if self.draw(st.booleans()):
            pred = self.new_array(ArrayShape(DType.PRED, ()))
        else:
            pred = self.of_shape(x.shape.with_dtype(DType.PRED))
        return self.add("select", [pred, x, self.like(x)])

    def op_clamp(self):
        x = self.operand(NUMERIC)
        scalar = ArrayShape(x.shape.dtype, ())
        lo = self.new_array(scalar) if self.draw(st.booleans()) else self.like(x)
        hi = self.new_array(scalar) if self.draw(st.booleans()) else self.like(x)
        return self.add("clamp", [lo, x, hi])

    def op_convert(self):
        x = self.operand(ALL)
        target = self.choose(ALL)
        if (x.shape.dtype.is_float and x.opcode not in ("parameter", "constant")
                and target.is_float and target.bits > x.shape.dtype.bits):
            # Widening a computed float exposes its last-bit rounding at the wider type's
            # tolerance (transcendentals promise a few ulp, not the exact bits): widen an
            # input instead, as for bitcast-convert.
            x = self.new_array(x.shape)
        return self.add("convert", [x], shape=x.shape.with_dtype(target))

    def op_bitcast_convert(self):
        x = self.operand(NUMERIC)
        if x.shape.dtype.is_float and x.opcode not in ("parameter", "constant"):
            # Reinterpreting a computed float asks for its exact bits, which transcendental
            # ops only promise to a few ulp: reinterpret an input instead.
            x = self.new_array(x.shape)
        same_width = [d for d in NUMERIC if d.bits == x.shape.dtype.bits]
        return self.add("bitcast-convert", [x], shape=x.shape.with_dtype(self.choose(same_width)))

    def op_broadcast(self):
        x = self.operand(ALL, max_size=16)
        new = self.integer(0, 2)
        out_rank = x.shape.rank + new
        mapped = sorted(self.draw(st.permutations(range(out_rank)))[:x.shape.rank])
        out = [self.integer(1, 3) for _ in range(out_rank)]
        for i, d in enumerate(mapped):
            out[d] = x.shape.dims[i]
        return self.add("broadcast", [x], {"dimensions": tuple(mapped)},
                        shape=ArrayShape(x.shape.dtype, tuple(out)))

    def op_reshape(self):
        x = self.operand(ALL)
        dims = list(x.shape.dims)
        choice = self.integer(0, 2)
        if choice == 0:
            dims = [x.shape.size]
        elif choice == 1:
            dims = dims[::-1]
        else:
            dims.insert(self.integer(0, len(dims)), 1)
        return self.add("reshape", [x], shape=ArrayShape(x.shape.dtype, tuple(dims)))

    def op_transpose(self):
        x = self.operand(ALL)
        perm = tuple(self.draw(st.permutations(range(x.shape.rank))))
        return self.add("transpose", [x], {"dimensions": perm})

    def op_slice(self):
        x = self.operand(ALL)
        spec = []
        for d in x.shape.dims:
            start = self.integer(0, d)
            spec.append((start, self.integer(start, d), self.integer(1, 3)))
        return self.add("slice", [x], {"slice": tuple(spec)})

    def op_concatenate(self):
        x = self.operand(ALL, min_rank=1)
        axis = self.integer(0, x.shape.rank - 1)
        parts = [x]
        for _ in range(self.integer(1, 2)):
            dims = list(x.shape.dims)
            dims[axis] = self.integer(0, 3)
            fits = [i for i in self.pool if i.shape.dtype == x.shape.dtype
                    and i.shape.rank == x.shape.rank
                    and all(a == b for k, (a, b) in enumerate(zip(i.shape.dims, x.shape.dims))
                            if k != axis)]
            if fits and self.draw(st.booleans()):
                parts.append(self.choose(fits))
            else:
                parts.append(self.new_array(ArrayShape(x.shape.dtype, tuple(dims))))
        return self.add("concatenate", parts, {"dimensions": (axis,)})

    def op_pad(self):
        x = self.operand(ALL, max_size=24)
        config = []
        for d in x.shape.dims:
            interior = self.integer(0, 2)
            base = d + max(d - 1, 0) * interior
            lo = self.integer(-min(base, 2), 3)
            hi = self.integer(-min(base + lo, 2), 3)
            config.append((lo, hi, interior))
        value = self.scalar_constant(x.shape.dtype)
        return self.add("pad", [x, value], {"padding": tuple(config)})

    def op_reverse(self):
        x = self.operand(ALL)
        dims = self.draw(st.lists(st.integers(0, max(x.shape.rank - 1, 0)), unique=True,
                                  max_size=x.shape.rank)) if x.shape.rank else []
        return self.add("reverse", [x], {"dimensions": tuple(sorted(dims))})

    def reducer(self, dtype: DType) -> Computation:
        """A two-scalar reducer: a plain one numpy can run, or one it must interpret."""
        if self.draw(st.booleans()):
            opcode = self.choose(["and", "or"] if dtype is DType.PRED else
                                 ["add", "multiply", "maximum", "minimum"] +
                                 (["and", "or"] if dtype.is_int else []))
            comp = scalar_computation(opcode, dtype, self.names)
        else:
            b = Builder("custom_reducer", self.names)
            scalar = ArrayShape(dtype, ())
            acc, x = b.parameter(0, scalar, "acc"), b.parameter(1, scalar, "x")
            if dtype is DType.PRED:
                root = b.add("xor", [acc, x])
            else:
                root = b.add(self.choose(["subtract", "maximum"]), [x, acc])
                root = b.add("add", [root, x]) if self.draw(st.booleans()) else root
            comp = b.finish(root)
        self.callees.append(comp)
        return comp

    def op_reduce(self):
        x = self.operand(ALL, max_size=32)
        dims = self.draw(st.lists(st.integers(0, max(x.shape.rank - 1, 0)), unique=True,
                                  max_size=x.shape.rank)) if x.shape.rank else []
        init = self.scalar_constant(x.shape.dtype)
        return self.add("reduce", [x, init], {"dimensions": tuple(dims)},
                        {"to_apply": self.reducer(x.shape.dtype)})

    def op_argmax(self):
        """A variadic reduce (value, index) with the reducer JAX writes for argmax."""
        x = self.operand(NUMERIC, min_rank=1, max_size=32)
        axis = self.integer(0, x.shape.rank - 1)
        b = Builder("argmax_reducer", self.names)
        value, index = ArrayShape(x.shape.dtype, ()), ArrayShape(DType.S32, ())
        acc_v, acc_i = b.parameter(0, value, "acc_v"), b.parameter(1, index, "acc_i")
        new_v, new_i = b.parameter(2, value, "x_v"), b.parameter(3, index, "x_i")
        gt = b.add("compare", [acc_v, new_v], {"direction": "GT"})
        nan = b.add("compare", [acc_v, acc_v], {"direction": "NE"})
        keep = b.add("or", [gt, nan])
        best_v = b.add("select", [keep, acc_v, new_v])
        eq = b.add("compare", [acc_v, new_v], {"direction": "EQ"})
        lower = b.add("compare", [acc_i, new_i], {"direction": "LT"})
        keep_i = b.add("or", [keep, b.add("and", [eq, lower])])
        best_i = b.add("select", [keep_i, acc_i, new_i])
        comp = b.finish(b.add("tuple", [best_v, best_i]))
        self.callees.append(comp)
        iota = self.add("iota", [], {"iota_dimension": axis},
                        shape=x.shape.with_dtype(DType.S32))
        init_v = self.scalar_constant(x.shape.dtype)
        init_i = self.b.constant(np.int32(0), DType.S32)
        both = self.add("reduce", [x, iota, init_v, init_i], {"dimensions": (axis,)},
                        {"to_apply": comp})
        self.add("get-tuple-element", [both], {"index": 0})
        return self.add("get-tuple-element", [both], {"index": 1})

    def op_dot(self):
        lhs = self.operand(NUMERIC + [DType.PRED], min_rank=1, max_size=24)
        rank = lhs.shape.rank
        order = self.draw(st.permutations(range(rank)))
        n_batch = self.integer(0, rank - 1)
        n_contract = self.integer(0, rank - n_batch)
        lb, lc = tuple(order[:n_batch]), tuple(order[n_batch:n_batch + n_contract])
        free = [self.integer(1, 3) for _ in range(self.integer(0, 1))]
        rhs_rank = n_batch + n_contract + len(free)
        slots = self.draw(st.permutations(range(rhs_rank)))
        rb, rc = tuple(slots[:n_batch]), tuple(slots[n_batch:n_batch + n_contract])
        rhs_dims = [0] * rhs_rank
        for a, b in list(zip(lb, rb)) + list(zip(lc, rc)):
            rhs_dims[b] = lhs.shape.dims[a]
        for slot, size in zip(slots[n_batch + n_contract:], free):
            rhs_dims[slot] = size
        rhs = self.new_array(ArrayShape(lhs.shape.dtype, tuple(rhs_dims)))
        return self.add("dot", [lhs, rhs], {"lhs_batch_dims": lb, "rhs_batch_dims": rb,
                                            "lhs_contracting_dims": lc,
                                            "rhs_contracting_dims": rc})

    def op_tuple(self):
        items = [self.operand(ALL) for _ in range(self.integer(1, 3))]
        tup = self.add("tuple", items)
        return self.add("get-tuple-element", [tup], {"index": self.integer(0, len(items) - 1)})

    def op_iota(self):
        dims = self.dims(min_rank=1)
        return self.add("iota", [], {"iota_dimension": self.integer(0, len(dims) - 1)},
                        shape=ArrayShape(self.choose(NUMERIC), dims))

    def start_indices(self, dims) -> list[Instruction]:
        dtype = self.choose([DType.S32, DType.S64, DType.U32, DType.S8])
        lo = -3 if dtype.is_signed_int else 0
        return [self.b.constant(np.array(self.integer(lo, d + 3), dtype=dtype.to_numpy()),
                                dtype) for d in dims]

    def op_dynamic_slice(self):
        x = self.operand(ALL, min_rank=1)
        sizes = tuple(self.integer(0, d) for d in x.shape.dims)
        return self.add("dynamic-slice", [x] + self.start_indices(x.shape.dims),
                        {"dynamic_slice_sizes": sizes})

    def op_dynamic_update_slice(self):
        x = self.operand(ALL, min_rank=1)
        update = self.new_array(ArrayShape(x.shape.dtype,
                                           tuple(self.integer(0, d) for d in x.shape.dims)))
        return self.add("dynamic-update-slice", [x, update] + self.start_indices(x.shape.dims))

    def index_vector(self, size: int) -> Instruction:
        n = self.integer(0, 5)
        values = [self.integer(-size - 2, size + 2) for _ in range(n)]
        return self.b.constant(np.array(values, dtype=np.int32).reshape(n, 1), DType.S32)

    def op_gather(self):
        """`x[idx]` as JAX writes it (out-of-bounds indices included)."""
        x = self.operand(ALL, min_rank=1, min_dim=1)
        rank = x.shape.rank
        return self.add("gather", [x, self.index_vector(x.shape.dims[0])], {
            "offset_dims": tuple(range(1, rank)), "collapsed_slice_dims": (0,),
            "start_index_map": (0,), "index_vector_dim": 1,
            "slice_sizes": (1,) + x.shape.dims[1:]})

    def op_scatter(self):
        """`x.at[idx].add(v)` (or `.set(v)`) as JAX writes it."""
        x = self.operand(NUMERIC, min_rank=1, min_dim=1)
        idx = self.index_vector(x.shape.dims[0])
        updates = self.new_array(ArrayShape(x.shape.dtype, idx.shape.dims[:1] + x.shape.dims[1:]))
        if self.draw(st.booleans()):
            comp = scalar_computation("add", x.shape.dtype, self.names)
        else:
            b = Builder("assign", self.names)
            scalar = ArrayShape(x.shape.dtype, ())
            b.parameter(0, scalar, "old")
            comp = b.finish(b.parameter(1, scalar, "new"))
        self.callees.append(comp)
        rank = x.shape.rank
        return self.add("scatter", [x, idx, updates], {
            "update_window_dims": tuple(range(1, rank)), "inserted_window_dims": (0,),
            "scatter_dims_to_operand_dims": (0,), "index_vector_dim": 1,
            "indices_are_sorted": False, "unique_indices": False}, {"to_apply": comp})

    def batched_indices(self, x: Instruction):
        """For take_along_axis-style gathers and scatters on `x`: (indices, batching dim of
        x, the dim they index, where the batch dim sits among the indices' dims). The
        indices are [batch, n, 1] or [n, batch, 1], out-of-range values included."""
        batching, indexed = self.draw(st.permutations(range(x.shape.rank)))[:2]
        index_batch = self.integer(0, 1)
        count, size = self.integer(0, 3), x.shape.dims[indexed]
        dims = [count, count]
        dims[index_batch] = x.shape.dims[batching]
        values = [self.integer(-size - 2, size + 2) for _ in range(dims[0] * dims[1])]
        indices = self.b.constant(np.array(values, np.int32).reshape(dims + [1]), DType.S32)
        return indices, batching, indexed, index_batch

    def op_batched_gather(self):
        """A gather with batching dims (jnp.take_along_axis, vmap of x[i])."""
        x = self.operand(ALL, min_rank=2, min_dim=1)
        idx, batching, indexed, index_batch = self.batched_indices(x)
        sizes = tuple(1 if d in (batching, indexed) else n for d, n in enumerate(x.shape.dims))
        return self.add("gather", [x, idx], {
            "offset_dims": tuple(range(2, x.shape.rank)), "collapsed_slice_dims": (indexed,),
            "start_index_map": (indexed,), "operand_batching_dims": (batching,),
            "start_indices_batching_dims": (index_batch,), "index_vector_dim": 2,
            "slice_sizes": sizes})

    def op_batched_scatter(self):
        """A scatter-add with batching dims (the VJP of take_along_axis)."""
        x = self.operand(NUMERIC, min_rank=2, min_dim=1)
        idx, batching, indexed, index_batch = self.batched_indices(x)
        window = tuple(n for d, n in enumerate(x.shape.dims) if d not in (batching, indexed))
        updates = self.new_array(ArrayShape(x.shape.dtype, idx.shape.dims[:2] + window))
        comp = scalar_computation("add", x.shape.dtype, self.names)
        self.callees.append(comp)
        return self.add("scatter", [x, idx, updates], {
            "update_window_dims": tuple(range(2, x.shape.rank)),
            "inserted_window_dims": (indexed,), "scatter_dims_to_operand_dims": (indexed,),
            "input_batching_dims": (batching,), "scatter_indices_batching_dims": (index_batch,),
            "index_vector_dim": 2}, {"to_apply": comp})

    def comparator(self, dtypes: list[DType]) -> Computation:
        """A sort comparator over (lhs_0, rhs_0, lhs_1, rhs_1, ...): LT or GT on one
        operand, or lexicographic LT on two; floats compared with type=TOTALORDER (a strict
        weak order even with NaNs, as JAX's comparators are)."""
        b = Builder("comparator", self.names)
        params = [b.parameter(k, ArrayShape(dtypes[k // 2], ()), "cmp")
                  for k in range(2 * len(dtypes))]

        def compare(k, direction):
            attrs = {"direction": direction}
            if dtypes[k].is_float:
                attrs["type"] = "TOTALORDER"
            return b.add("compare", [params[2 * k], params[2 * k + 1]], attrs)
        keys = self.draw(st.permutations(range(len(dtypes))))
        if len(dtypes) > 1 and self.draw(st.booleans()):
            first, second = keys[0], keys[1]
            tie = b.add("and", [compare(first, "EQ"), compare(second, "LT")])
            root = b.add("or", [compare(first, "LT"), tie])
        else:
            root = compare(keys[0], self.choose(["LT", "GT"]))
        comp = b.finish(root)
        self.callees.append(comp)
        return comp

    def op_sort(self):
        x = self.operand(ALL, min_rank=1, max_size=32)
        operands = [x] + [self.of_shape(ArrayShape(self.choose(ALL), x.shape.dims))
                          for _ in range(self.integer(0, 2))]
        axis = self.integer(0, x.shape.rank - 1)
        attrs = {"dimensions": (axis,)}
        if self.draw(st.booleans()):
            attrs["is_stable"] = self.draw(st.booleans())
        sorted_ = self.add("sort", operands, attrs,
                           {"to_apply": self.comparator([o.shape.dtype for o in operands])})
        if len(operands) == 1:
            return sorted_
        return self.add("get-tuple-element", [sorted_],
                        {"index": self.integer(0, len(operands) - 1)})

    def op_topk(self):
        x = self.operand(NUMERIC, min_rank=1, max_size=32)
        attrs = {"k": self.integer(0, x.shape.dims[-1])}
        if self.draw(st.booleans()):
            attrs["largest"] = self.draw(st.booleans())
        both = self.add("topk", [x], attrs)
        return self.add("get-tuple-element", [both], {"index": self.integer(0, 1)})

    # One entry per elementwise opcode, two per structural op (so neither kind dominates).
    STEPS = ([("op_unary", op) for op in UNARY] + [("op_binary", op) for op in BINARY] +
             2 * [(name, None) for name in [
                 "op_compare", "op_select", "op_clamp", "op_convert", "op_bitcast_convert",
                 "op_broadcast", "op_reshape", "op_transpose", "op_slice", "op_concatenate",
                 "op_pad", "op_reverse", "op_reduce", "op_argmax", "op_dot", "op_tuple",
                 "op_iota", "op_dynamic_slice", "op_dynamic_update_slice", "op_gather",
                 "op_scatter", "op_batched_gather", "op_batched_scatter",
                 "op_sort", "op_topk"]])

    def module(self) -> Module:
        last = None
        for _ in range(self.integer(1, 10)):
            method, opcode = self.choose(self.STEPS)
            last = getattr(self, method)(*([opcode] if opcode else []))
        if self.draw(st.booleans()) and len(self.pool) > 1:
            items = self.draw(st.lists(st.sampled_from(self.pool), min_size=1, max_size=3))
            last = self.add("tuple", items)
        entry = self.b.finish(last)
        name = self.choose(["m", "jit_f", "module.7", "a-b_c"])
        return Module(name, entry, self.callees)


@st.composite
def modules_with_args(draw):
    maker = ModuleMaker(draw)
    module = maker.module()
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    args = [random_array(rng, shape) for shape in maker.param_shapes]
    return module, args


def assert_same_instructions(a: Module, b: Module) -> None:
    assert [c.name for c in a.computations] == [c.name for c in b.computations]
    assert a.entry.name == b.entry.name and a.name == b.name
    for ca, cb in zip(a.computations, b.computations):
        assert ca.root.name == cb.root.name
        assert len(ca.instructions) == len(cb.instructions)
        for ia, ib in zip(ca.instructions, cb.instructions):
            assert (ia.name, ia.opcode, ia.shape) == (ib.name, ib.opcode, ib.shape)
            assert [o.name for o in ia.operands] == [o.name for o in ib.operands]
            assert ia.attrs == ib.attrs, ia.name
            assert ia.metadata == ib.metadata, ia.name
            assert {k: (v.name if isinstance(v, Computation) else [c.name for c in v])
                    for k, v in ia.calls.items()} == {
                k: (v.name if isinstance(v, Computation) else [c.name for c in v])
                for k, v in ib.calls.items()}
            if ia.opcode == "constant":
                assert ia.literal.dtype == ib.literal.dtype
                assert ia.literal.tobytes() == ib.literal.tobytes(), ia.name


def assert_bitwise_equal(a, b, path: str = "result") -> None:
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            assert_bitwise_equal(x, y, f"{path}[{k}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert (a.dtype, a.shape) == (b.dtype, b.shape), path
    assert a.tobytes() == b.tobytes(), f"{path}: {a!r} != {b!r}"


def assert_has_shape(value, shape) -> None:
    """The reference produced exactly the declared shape and element type."""
    if isinstance(shape, TupleShape):
        assert isinstance(value, tuple) and len(value) == len(shape.elements)
        for v, s in zip(value, shape.elements):
            assert_has_shape(v, s)
        return
    value = np.asarray(value)
    assert value.dtype == shape.dtype.to_numpy() and value.shape == shape.dims, (value, shape)


