"""CPU kernels of sort and topk: each row along the sorted dimension sorted on its own,
rows split over the runtime's threads by dimension 0 (when that is not the sorted one).

sort, by what its comparator is (ir/sorting.py):
- *keyed* (`compare(f(lhs_i), f(rhs_i))`, LT or GT, on a total order: JAX's comparators,
  argsort's, the VJP's): each element's key f(x) is computed once and mapped to unsigned
  bits in the same order; the (key, position) pairs are sorted by an LSD radix sort, 8 bits
  a pass, skipping passes where every key has the same digit (an insertion sort for rows
  of at most SHORT_ROW), and each operand gathered by the sorted positions. Radix sorts
  are stable, so ties keep their order as XLA's stable sort does.
- any other comparator: a stable merge sort of the elements (all operands moved together),
  insertion-sorted runs of RUN elements merged bottom-up between two scratch buffers, the
  comparator inlined at each comparison through the scalar emitter.
topk: a selection keeping the best k (insertion into a sorted list of k) when k is at most
SELECT_K; a radix sort of the row's keys otherwise.
Scratch memory comes from malloc, once per kernel call (per thread's share of the rows).
"""
from __future__ import annotations

import math
from typing import Optional

from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, for_range
from flowjit.codegen.elemental import ElementalEmitter, emit_scalar_computation
from flowjit.codegen.llvm_types import I32, I64, PTR, i64, memory_type
from flowjit.codegen.parallel import MIN_PARALLEL_WORK, thread_count
from flowjit.codegen.scalar_ops import ScalarContext, from_memory
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Instruction
from flowjit.ir.opcodes import Opcode
from flowjit.ir.sorting import SortKey, sort_key

SORT_OPCODES = frozenset({Opcode.SORT, Opcode.TOPK})
SHORT_ROW = 32      # rows up to this long: insertion sort (a radix pass costs 256 counters)
RUN = 16            # merge sort: runs insertion-sorted before merging
SELECT_K = 32       # topk: keep a sorted list of the best k up to this k
RADIX_BITS = 11     # radix passes of at most this many bits (2048 counters of 4 bytes)


def _sorted_axis(inst: Instruction) -> int:
    if inst.opcode == "topk":
        return inst.operands[0].shape.rank - 1
    return inst.attrs["dimensions"][0]


def sort_parallel_rows(inst: Instruction) -> int:
    """Rows of dimension 0 to split over threads (0: one thread): when dimension 0 is not
    the sorted one and there is enough work (n log n per row)."""
    dims = inst.operands[0].shape.dims
    axis = _sorted_axis(inst)
    if thread_count() < 2 or axis == 0 or not dims or dims[0] < thread_count():
        return 0
    n = dims[axis]
    work = math.prod(dims) * max(1, n.bit_length()) * len(inst.operands) * 4
    return dims[0] if work >= MIN_PARALLEL_WORK else 0


def _key_bits(dtype: DType) -> int:
    return 8 if dtype is DType.PRED else dtype.bits


def radix_key_of(inst: Instruction) -> Optional[SortKey]:
    """The keyed comparator a sort's fast path can use (a total order on its key)."""
    keyed = sort_key(inst.calls["to_apply"])
    if keyed is None:
        return None
    dtype = keyed.key.shape.dtype
    if dtype.is_float and not keyed.total_order:
        return None   # IEEE < on floats: -0.0 ties 0.0 and NaN ties everything
    return keyed


class _Row:
    """Where one row of an operand lies: base element and the stride along the row."""

    def __init__(self, kernel: "_Kernel", base, stride):
        self.kernel, self.base, self.stride = kernel, base, stride

    def address(self, b, pointer, position, dtype: DType):
        offset = b.add(self.base, b.mul(position, self.stride))
        return self.kernel.at(pointer, offset, memory_type(dtype))


def _while(b: llvm_ir.IRBuilder, condition_fn, body_fn, name: str) -> None:
    """while (condition_fn()) body_fn(); loop state lives in allocas (mem2reg's to lift)."""
    header = b.append_basic_block(f"{name}.header")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.exit")
    b.branch(header)
    b.position_at_end(header)
    b.cbranch(condition_fn(), body, done)
    b.position_at_end(body)
    body_fn()
    b.branch(header)
    b.position_at_end(done)


class _Kernel:
    """Emits one sort or topk kernel body."""

    def __init__(self, ctx: ScalarContext, constants, inst: Instruction, outputs, inputs,
                 rows):
        self.ctx, self.b = ctx, ctx.builder
        self.constants = constants
        self.inst = inst
        self.outputs, self.inputs = outputs, inputs
        self.rows = rows
        self.dims = inst.operands[0].shape.dims
        self.axis = _sorted_axis(inst)
        self.n = self.dims[self.axis]
        self.inner = math.prod(self.dims[self.axis + 1:])
        self.pointee: dict[int, tuple] = {}

    # --- memory -----------------------------------------------------------------------
    def malloc(self, nbytes: int):
        fn = self.ctx.declare("malloc", PTR, [I64])
        return self.b.call(fn, [i64(max(nbytes, 16))])

    def free(self, pointer) -> None:
        self.b.call(self.ctx.declare("free", llvm_ir.VoidType(), [PTR]), [pointer])

    def at(self, pointer, index, typ):
        return self.typed(self.b.gep(pointer, [index], inbounds=True, source_etype=typ), typ)

    def typed(self, pointer, typ):
        """`pointer`, remembered to point at a `typ` (opaque pointers do not say)."""
        self.pointee[id(pointer)] = (pointer, typ)
        return pointer

    def load(self, pointer):
        return self.b.load(pointer, typ=self.pointee[id(pointer)][1])

    def variable(self, typ, initial, name: str):
        slot = self.typed(alloca_at_entry(self.b, typ, name), typ)
        self.b.store(initial, slot)
        return slot

    # --- rows -----------------------------------------------------------------------------
    def for_each_row(self, body, rows_dims: tuple) -> None:
        """body(outer, column, base) for each row along the sorted axis of `rows_dims` (the
        operand's dims): `outer` numbers the dims before the axis, `column` those after it,
        `base` is the row's first element; dimension 0 limited to `rows` when split."""
        b = self.b
        axis, inner = self.axis, self.inner
        lead = rows_dims[:axis]
        if self.rows is not None:
            per_lead0 = math.prod(lead[1:])
            count = b.sub(self.rows[1], self.rows[0])
            outer_start = b.mul(self.rows[0], i64(per_lead0))
            outer_end = b.add(outer_start, b.mul(count, i64(per_lead0)))
        else:
            outer_start, outer_end = i64(0), i64(math.prod(lead))
        with for_range(b, outer_end, "row", start=outer_start) as outer:
            with for_range(b, inner, "column") as column:
                base = b.add(b.mul(b.mul(outer, i64(self.n)), i64(inner)), column)
                body(outer, column, base)

    # --- keys -----------------------------------------------------------------------------
    def key_bits(self, keyed_value, dtype: DType, descending: bool):
        """Unsigned bits ordered as `dtype`'s total order (descending: reversed)."""
        b = self.b
        bits = _key_bits(dtype)
        int_type = llvm_ir.IntType(bits)
        if dtype is DType.PRED:
            value = b.zext(keyed_value, int_type)
        elif dtype.is_float:
            if dtype is DType.BF16:   # held in f32 registers: its top 16 bits
                wide = b.bitcast(keyed_value, I32)
                value = b.trunc(b.lshr(wide, llvm_ir.Constant(I32, 16)), int_type)
            else:
                value = b.bitcast(keyed_value, int_type)
            # Negative: flip every bit; positive: flip the sign bit.
            sign = b.ashr(value, llvm_ir.Constant(int_type, bits - 1))
            mask = b.or_(sign, llvm_ir.Constant(int_type, 1 << (bits - 1)))
            value = b.xor(value, mask)
        elif dtype.is_signed_int:
            value = b.xor(keyed_value, llvm_ir.Constant(int_type, 1 << (bits - 1)))
        else:
            value = keyed_value
        if descending:
            value = b.xor(value, llvm_ir.Constant(int_type, (1 << bits) - 1))
        return value

    def key_function(self, keyed: SortKey):
        """x (register value of the keyed operand) -> f(x), through the scalar emitter."""
        def evaluate(x):
            emitter = ElementalEmitter(self.ctx, lambda param, index: x, self.constants)
            return emitter.value(keyed.key, [])
        return evaluate

    # --- sorting (key, position) pairs -------------------------------------------------------
    def pairs(self, count: int, bits: int) -> "_Pairs":
        return _Pairs(self, count, bits)

    def insertion_sort(self, columns, count) -> None:
        """Stable insertion sort of rows [0, count) of `columns` (buffer, spare, type) by
        the unsigned value of the first."""
        b = self.b
        keys, _, key_type = columns[0]
        with for_range(b, count, "ins", start=i64(1)) as i:
            held = [self.load(self.at(buffer, i, t)) for buffer, _, t in columns]
            j = self.variable(I64, i, "ins.j")

            def condition():
                at = self.load(j)
                positive = b.icmp_signed(">", at, i64(0))
                # keys[j - 1] only when j > 0: the index is clamped instead of branching.
                before = b.select(positive, b.sub(at, i64(1)), i64(0))
                previous = self.load(self.at(keys, before, key_type))
                return b.and_(positive, b.icmp_unsigned(">", previous, held[0]))

            def shift():
                at = self.load(j)
                before = b.sub(at, i64(1))
                for buffer, _, t in columns:
                    b.store(self.load(self.at(buffer, before, t)), self.at(buffer, at, t))
                b.store(before, j)
            _while(b, condition, shift, "ins.shift")
            at = self.load(j)
            for (buffer, _, t), value in zip(columns, held):
                b.store(value, self.at(buffer, at, t))

    def radix_sort(self, columns, digits, counts) -> list:
        """LSD radix sort of n rows of `columns` by the unsigned first column, one pass per
        (shift, width) digit, skipping passes where every row has the same digit; returns
        the buffers holding the result (which of each pair depends on the passes run)."""
        b = self.b
        n = self.n
        key_type = columns[0][2]
        offsets, total = [], 0
        for _, width in digits:
            offsets.append(total)
            total += 1 << width
        memset = self.ctx.declare("llvm.memset.p0.i64", llvm_ir.VoidType(),
                                  [PTR, llvm_ir.IntType(8), I64, llvm_ir.IntType(1)])
        b.call(memset, [counts, llvm_ir.Constant(llvm_ir.IntType(8), 0), i64(total * 4),
                        llvm_ir.Constant(llvm_ir.IntType(1), 0)])

        def counter(key, p):
            shift, width = digits[p]
            shifted = b.lshr(key, llvm_ir.Constant(key_type, shift)) if shift else key
            digit = b.and_(shifted, llvm_ir.Constant(key_type, (1 << width) - 1))
            index = b.zext(digit, I64) if key_type.width < 64 else digit
            return self.at(counts, b.add(i64(offsets[p]), index), I32)

        with for_range(b, n, "histogram") as j:
            key = self.load(self.at(columns[0][0], j, key_type))
            for p in range(len(digits)):
                slot = counter(key, p)
                b.store(b.add(self.load(slot), llvm_ir.Constant(I32, 1)), slot)
        source = [self.variable(PTR, buffer, "radix.from") for buffer, _, _ in columns]
        target = [self.variable(PTR, spare, "radix.to") for _, spare, _ in columns]
        for p in range(len(digits)):
            first_key = self.load(self.at(self.load(source[0]), i64(0), key_type))
            held = self.load(counter(first_key, p))
            with b.if_then(b.icmp_unsigned("!=", held, llvm_ir.Constant(I32, n))):
                self.radix_pass(columns, source, target, counts, offsets[p], digits[p][1],
                                lambda key, p=p: counter(key, p))
        return [self.load(slot) for slot in source]

    def radix_pass(self, columns, source, target, counts, offset: int, width: int,
                   counter) -> None:
        b = self.b
        total = self.variable(I32, llvm_ir.Constant(I32, 0), "radix.total")
        with for_range(b, 1 << width, "prefix") as d:
            slot = self.at(counts, b.add(i64(offset), d), I32)
            count = self.load(slot)
            running = self.load(total)
            b.store(running, slot)
            b.store(b.add(running, count), total)
        sources = [self.load(slot) for slot in source]
        targets = [self.load(slot) for slot in target]
        key_type = columns[0][2]
        with for_range(b, self.n, "scatter") as j:
            key = self.load(self.at(sources[0], j, key_type))
            slot = counter(key)
            where = self.load(slot)
            b.store(b.add(where, llvm_ir.Constant(I32, 1)), slot)
            where = b.zext(where, I64)
            b.store(key, self.at(targets[0], where, key_type))
            for (_, _, t), origin, destination in zip(columns[1:], sources[1:], targets[1:]):
                b.store(self.load(self.at(origin, j, t)), self.at(destination, where, t))
        for slot, value in zip(source + target, targets + sources):
            b.store(value, slot)

    def sort_pairs(self, pairs: "_Pairs") -> "_Pairs":
        """The pairs in key order (ties by position); the result's buffers."""
        if self.n <= SHORT_ROW:
            self.insertion_sort(pairs.columns, i64(self.n))
            return pairs.sorted([buffer for buffer, _, _ in pairs.columns])
        return pairs.sorted(self.radix_sort(pairs.columns, pairs.digits, pairs.counts))

    # --- sort -----------------------------------------------------------------------------
    def emit_keyed_sort(self, keyed: SortKey) -> None:
        b = self.b
        operands = self.inst.operands
        key_dtype = keyed.key.shape.dtype
        n = self.n
        pairs = self.pairs(n, _key_bits(key_dtype))
        key_of = self.key_function(keyed)
        source_dtype = operands[keyed.operand].shape.dtype

        def row(outer, column, base):
            layout = _Row(self, base, i64(self.inner))
            with for_range(b, n, "keys") as j:
                x = self.load(layout.address(b, self.inputs[keyed.operand], j, source_dtype))
                value = key_of(from_memory(self.ctx, x, source_dtype))
                pairs.put(j, self.key_bits(value, key_dtype, keyed.descending), j)
            order = self.sort_pairs(pairs)
            with for_range(b, n, "gather") as j:
                source = order.position(j)
                for k, operand in enumerate(operands):
                    dtype = operand.shape.dtype
                    value = self.load(layout.address(b, self.inputs[k], source, dtype))
                    b.store(value, layout.address(b, self.outputs[k], j, dtype))
        self.for_each_row(row, self.dims)
        pairs.release()

    def emit_merge_sort(self) -> None:
        """Stable merge sort with the comparator inlined (any comparator)."""
        b = self.b
        operands = self.inst.operands
        n = self.n
        types = [memory_type(o.shape.dtype) for o in operands]
        sizes = [o.shape.dtype.itemsize for o in operands]
        scratch = self.malloc(2 * n * sum(sizes))
        buffers, offset = [], 0
        for size in sizes:
            first = b.gep(scratch, [i64(offset)], source_etype=llvm_ir.IntType(8))
            second = b.gep(scratch, [i64(offset + n * size)], source_etype=llvm_ir.IntType(8))
            buffers.append((first, second))
            offset += 2 * n * size
        comparator = self.inst.calls["to_apply"]
        emitter = ElementalEmitter(self.ctx, lambda param, index: None, self.constants)

        def element(arrays, position):
            return [self.load(self.at(a, position, t)) for a, t in zip(arrays, types)]

        def less(lhs, rhs):
            args = []
            for x, y, o in zip(lhs, rhs, operands):
                args += [from_memory(self.ctx, x, o.shape.dtype),
                         from_memory(self.ctx, y, o.shape.dtype)]
            return emit_scalar_computation(emitter, comparator, args)

        def store(arrays, position, values):
            for a, t, v in zip(arrays, types, values):
                b.store(v, self.at(a, position, t))

        def row(outer, column, base):
            layout = _Row(self, base, i64(self.inner))
            first = [pair[0] for pair in buffers]
            with for_range(b, n, "load") as j:
                for k, o in enumerate(operands):
                    value = self.load(layout.address(b, self.inputs[k], j, o.shape.dtype))
                    b.store(value, self.at(first[k], j, types[k]))
            self.insertion_runs(first, element, less, store)
            result = self.merge_passes(buffers, element, less, store)
            with for_range(b, n, "store") as j:
                for k, o in enumerate(operands):
                    value = self.load(self.at(result[k], j, types[k]))
                    b.store(value, layout.address(b, self.outputs[k], j, o.shape.dtype))
        self.for_each_row(row, self.dims)
        self.free(scratch)

    def insertion_runs(self, arrays, element, less, store) -> None:
        b = self.b
        n = self.n
        runs = -(-n // RUN)
        with for_range(b, runs, "run") as run:
            start = b.mul(run, i64(RUN))
            end = b.add(start, i64(RUN))
            end = b.select(b.icmp_signed("<", end, i64(n)), end, i64(n))
            with for_range(b, end, "ins", start=b.add(start, i64(1))) as i:
                held = element(arrays, i)
                j = self.variable(I64, i, "ins.j")

                def condition():
                    at = self.load(j)
                    inside = b.icmp_signed(">", at, start)
                    previous = b.select(inside, b.sub(at, i64(1)), start)
                    # Only compare when j > start (the comparator may be costly).
                    outcome = self.variable(llvm_ir.IntType(1), inside, "ins.more")
                    with b.if_then(inside):
                        b.store(less(held, element(arrays, previous)), outcome)
                    return self.load(outcome)

                def shift():
                    at = self.load(j)
                    before = b.sub(at, i64(1))
                    store(arrays, at, element(arrays, before))
                    b.store(before, j)
                _while(b, condition, shift, "ins.shift")
                store(arrays, self.load(j), held)

    def merge_passes(self, buffers, element, less, store):
        """Bottom-up merges of runs of RUN, 2 RUN, ...; returns the arrays holding the
        result (which of the two scratch buffers, known at compile time from n)."""
        b = self.b
        n = self.n
        source = [pair[0] for pair in buffers]
        target = [pair[1] for pair in buffers]
        width = RUN
        while width < n:
            merges = -(-n // (2 * width))
            with for_range(b, merges, "merge") as m:
                low = b.mul(m, i64(2 * width))
                middle = self.clamp(b.add(low, i64(width)))
                high = self.clamp(b.add(low, i64(2 * width)))
                left = self.variable(I64, low, "merge.left")
                right = self.variable(I64, middle, "merge.right")
                with for_range(b, high, "out", start=low) as k:
                    i, j = self.load(left), self.load(right)
                    left_done = b.icmp_signed(">=", i, middle)
                    right_done = b.icmp_signed(">=", j, high)
                    take_right = self.variable(llvm_ir.IntType(1), left_done, "merge.pick")
                    both = b.and_(b.not_(left_done), b.not_(right_done))
                    with b.if_then(both):
                        # The right one only when strictly less: ties keep their order.
                        b.store(less(element(source, j), element(source, i)), take_right)
                    pick_right = self.load(take_right)
                    where = b.select(pick_right, j, i)
                    store(target, k, element(source, where))
                    b.store(b.select(pick_right, b.add(j, i64(1)), j), right)
                    b.store(b.select(pick_right, i, b.add(i, i64(1))), left)
            source, target = target, source
            width *= 2
        return source

    def clamp(self, value):
        b = self.b
        return b.select(b.icmp_signed("<", value, i64(self.n)), value, i64(self.n))

    # --- topk -----------------------------------------------------------------------------
    def emit_topk(self) -> None:
        b = self.b
        (operand,) = self.inst.operands
        dtype = operand.shape.dtype
        k = self.inst.attrs["k"]
        largest = self.inst.attrs.get("largest", True)
        if k == 0 or operand.shape.size == 0:
            return
        bits = _key_bits(dtype)
        key_type = llvm_ir.IntType(bits)
        n = self.n
        values_out, indices_out = self.outputs
        select = k <= SELECT_K
        if select:
            scratch = self.malloc(k * (bits // 8 + 4))
            keys = scratch
            positions = b.gep(scratch, [i64(k * (bits // 8))], source_etype=llvm_ir.IntType(8))
        else:
            pairs = self.pairs(n, bits)

        def key_at(layout, j):
            x = from_memory(self.ctx, self.load(layout.address(b, self.inputs[0], j, dtype)),
                            dtype)
            # Ascending order of these keys puts the best first.
            return self.key_bits(x, dtype, descending=largest)

        def row(outer, column, base):
            layout = _Row(self, base, i64(1))
            if select:
                best = self.select_best(layout, key_at, keys, positions, key_type, k)
                position_of = lambda t: b.zext(self.load(self.at(best, t, I32)), I64)  # noqa
            else:
                with for_range(b, n, "keys") as j:
                    pairs.put(j, key_at(layout, j), j)
                position_of = self.sort_pairs(pairs).position
            out_base = b.mul(outer, i64(k))
            with for_range(b, k, "best") as t:
                source = position_of(t)
                value = self.load(layout.address(b, self.inputs[0], source, dtype))
                b.store(value, self.at(values_out, b.add(out_base, t), memory_type(dtype)))
                b.store(b.trunc(source, I32), self.at(indices_out, b.add(out_base, t), I32))
        self.for_each_row(row, self.dims)
        if select:
            self.free(scratch)
        else:
            pairs.release()

    def select_best(self, layout, key_at, keys, positions, key_type, k: int):
        """The positions of the k best (smallest keys) of the row, best first; a later
        element must be strictly better to enter (ties: the lower index wins)."""
        b = self.b
        filled = self.variable(I64, i64(0), "best.filled")
        with for_range(b, self.n, "scan") as j:
            key = key_at(layout, j)
            count = self.load(filled)
            room = b.icmp_signed("<", count, i64(k))
            last = self.load(self.at(keys, i64(k - 1), key_type))
            # A select, not an or: keys[k - 1] is not written yet while there is room.
            better = b.select(room, llvm_ir.Constant(llvm_ir.IntType(1), 1),
                              b.icmp_unsigned("<", key, last))
            with b.if_then(better):
                start = b.select(room, count, i64(k - 1))
                b.store(b.select(room, b.add(count, i64(1)), count), filled)
                at = self.variable(I64, start, "best.at")

                def condition():
                    where = self.load(at)
                    inside = b.icmp_signed(">", where, i64(0))
                    previous = self.load(self.at(keys, b.select(inside, b.sub(where, i64(1)),
                                                             i64(0)), key_type))
                    return b.and_(inside, b.icmp_unsigned(">", previous, key))

                def shift():
                    where = self.load(at)
                    before = b.sub(where, i64(1))
                    b.store(self.load(self.at(keys, before, key_type)),
                            self.at(keys, where, key_type))
                    b.store(self.load(self.at(positions, before, I32)),
                            self.at(positions, where, I32))
                    b.store(before, at)
                _while(b, condition, shift, "best.shift")
                where = self.load(at)
                b.store(key, self.at(keys, where, key_type))
                b.store(b.trunc(j, I32), self.at(positions, where, I32))
        return positions


def _digits(bits: int, offset: int) -> list[tuple[int, int]]:
    """(shift, width) of each radix pass over a `bits`-bit key starting at bit `offset`:
    as few passes as digits of at most RADIX_BITS allow, widths as even as can be."""
    passes = -(-bits // RADIX_BITS)
    widths = [bits // passes + (p < bits % passes) for p in range(passes)]
    shifts = [offset + sum(widths[:p]) for p in range(passes)]
    return list(zip(shifts, widths))


class _Pairs:
    """Scratch holding a row's (key, position) pairs for sorting: one u64 per pair, the key
    above the position, when the key has at most 32 bits (a radix pass then moves one
    value, and equal keys are ordered by position, which makes any sort stable); a key
    column and a position column otherwise. Each column has a spare for the radix passes."""

    def __init__(self, kernel: _Kernel, count: int, bits: int):
        self.kernel = kernel
        self.packed = bits <= 32
        types = [I64] if self.packed else [llvm_ir.IntType(bits), I32]
        self.digits = _digits(bits, 32 if self.packed else 0)
        counters = sum(1 << width for _, width in self.digits)
        sizes = [t.width // 8 for t in types]
        self.scratch = kernel.malloc(2 * count * sum(sizes) + 4 * counters)
        b = kernel.b
        self.columns, offset = [], 0
        for t, size in zip(types, sizes):
            first = kernel.typed(b.gep(self.scratch, [i64(offset)],
                                       source_etype=llvm_ir.IntType(8)), t)
            spare = b.gep(self.scratch, [i64(offset + count * size)],
                          source_etype=llvm_ir.IntType(8))
            self.columns.append((first, spare, t))
            offset += 2 * count * size
        self.counts = b.gep(self.scratch, [i64(offset)], source_etype=llvm_ir.IntType(8))
        self.result = [first for first, _, _ in self.columns]

    def put(self, j, key, position) -> None:
        """Row j holds (key, position); key: the unsigned key bits, position: i64."""
        b, k = self.kernel.b, self.kernel
        if self.packed:
            packed = b.or_(b.shl(b.zext(key, I64), i64(32)), position)
            b.store(packed, k.at(self.columns[0][0], j, I64))
        else:
            b.store(key, k.at(self.columns[0][0], j, self.columns[0][2]))
            b.store(b.trunc(position, I32), k.at(self.columns[1][0], j, I32))

    def sorted(self, buffers: list) -> "_Pairs":
        self.result = buffers
        return self

    def position(self, j):
        """The position (i64) of the pair at row j of the result."""
        b, k = self.kernel.b, self.kernel
        if self.packed:
            return b.and_(k.load(k.at(self.result[0], j, I64)), i64(0xFFFFFFFF))
        return b.zext(k.load(k.at(self.result[1], j, I32)), I64)

    def release(self) -> None:
        self.kernel.free(self.scratch)


def emit_sort_kernel(ctx: ScalarContext, constants, inst: Instruction, outputs: list,
                     inputs: list, rows=None) -> None:
    """The body of a sort or topk kernel: outputs from inputs, rows [begin, end) of
    dimension 0 when `rows` is given (see sort_parallel_rows)."""
    if inst.operands[0].shape.size == 0:
        return
    kernel = _Kernel(ctx, constants, inst, outputs, inputs, rows)
    if inst.opcode == "topk":
        kernel.emit_topk()
        return
    keyed = radix_key_of(inst)
    if keyed is not None:
        kernel.emit_keyed_sort(keyed)
    else:
        kernel.emit_merge_sort()
