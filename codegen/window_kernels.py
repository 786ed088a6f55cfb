"""Kernels of the windowed ops that are not one value per output element.

- A reduce-window that is a prefix scan (JAX lowers cumsum, cumprod, cummax... to a window
  as long as the axis, padded on one side) runs as one pass along the axis, carrying the
  running fold, instead of folding a window of n elements for each of n outputs (O(n^2)).
  Its operand may be a fused elementwise producer, computed once per element.
- select-and-scatter fills its result with the init value, then for each source element
  (row-major) picks one operand element of its window with `select` and combines the
  source element into the result there with `scatter` (XLA's order, so ties and
  non-commutative combiners give XLA's answer).
"""
from __future__ import annotations

from typing import Optional

from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, for_range, level_bounds
from flowjit.codegen.elemental import (ElementalEmitter, emit_scalar_computation, linearize,
                                       load_element)
from flowjit.codegen.llvm_types import i64, memory_type
from flowjit.codegen.scalar_ops import (ScalarContext, from_memory, to_memory,
                                        wide_accumulator)
from flowjit.codegen.window_elemental import tap_position
from flowjit.ir.module import Instruction
from flowjit.ir.windows import is_pooling, is_prefix_scan, is_trivial, prefix_scan_axis


def prefix_scan_of(inst: Instruction) -> Optional[Instruction]:
    """The single-operand prefix-scan reduce-window `inst` computes (itself, or the root of
    the fusion it is), if any."""
    root = inst.calls["calls"].root if inst.opcode == "fusion" else inst
    return root if is_prefix_scan(root) else None


def scan_splits_rows(inst: Instruction) -> bool:
    """Whether a prefix scan runs along dimension 0 (its rows cannot be split over threads)."""
    scan = prefix_scan_of(inst)
    return scan is not None and prefix_scan_axis(scan.operands[0].shape.dims,
                                                 scan.attrs["window"])[0] == 0


def _store(ctx: ScalarContext, pointer, shape, index: list, value) -> None:
    b = ctx.builder
    address = b.gep(pointer, [linearize(b, index, shape.dims)], inbounds=True,
                    source_etype=memory_type(shape.dtype))
    b.store(to_memory(ctx, value, shape.dtype), address)


def emit_prefix_scan(ctx: ScalarContext, emitter: ElementalEmitter, scan: Instruction,
                     out, rows=None) -> None:
    """out[..., i, ...] = fold(init, x[..., 0..i, ...]) (reverse: x[..., i..n-1, ...]) in one
    pass. With trailing dims the running fold is the previous output row (a vectorizable
    loop over the row); without, it is carried in a register."""
    x, init = scan.operands
    axis, reverse = prefix_scan_axis(x.shape.dims, scan.attrs["window"])
    comp = scan.calls["to_apply"]
    dims = x.shape.dims
    shape = scan.shape
    b = ctx.builder
    n = dims[axis]
    initial = emitter.value(init, [])
    inner = dims[axis + 1:]
    index: list = []

    def combine(previous, position: list):
        """fold(previous, x[position]); just x[position] when previous is None."""
        emitter.push_scope()
        element = emitter.value(x, position)
        emitter.pop_scope()
        if previous is None:
            return element
        return emit_scalar_computation(emitter, comp, [previous, element])

    def along_axis() -> None:
        if all(d == 1 for d in inner) and _vector_scan_op(scan) is not None:
            _vector_scan(ctx, scan, out, index, n, len(inner), reverse, initial, combine,
                         emitter.buffers)
            return
        if all(d == 1 for d in inner):
            # f16/bf16 sums and products carry an f32 total, each output rounded once.
            wide = wide_accumulator(comp, shape.dtype)
            start = wide.widen(ctx, initial) if wide is not None else initial
            slot = alloca_at_entry(b, start.type, "scan.acc")
            b.store(start, slot)
            with for_range(b, n, "scan") as step:
                i = b.sub(i64(n - 1), step) if reverse else step
                position = index + [i] + [i64(0)] * len(inner)
                if wide is not None:
                    element = wide.widen(ctx, combine(None, position))
                    folded = wide.combine(ctx, b.load(slot), element)
                    stored = wide.narrow(ctx, folded)
                else:
                    folded = stored = combine(b.load(slot), position)
                b.store(folded, slot)
                _store(ctx, out, shape, position, stored)
            return
        with for_range(b, n, "scan") as step:
            i = b.sub(i64(n - 1), step) if reverse else step
            first = b.icmp_signed("==", step, i64(0))
            before = b.add(i, i64(1)) if reverse else b.sub(i, i64(1))
            before = b.select(first, i, before)   # in bounds; not used on the first step
            inner_index: list = []

            def row(level: int) -> None:
                if level == len(inner):
                    previous = load_element(ctx, out, shape, index + [before] + inner_index)
                    previous = b.select(first, initial, previous)
                    position = index + [i] + inner_index
                    _store(ctx, out, shape, position, combine(previous, position))
                    return
                with for_range(b, inner[level], f"scan.inner{level}") as v:
                    inner_index.append(v)
                    row(level + 1)
                    inner_index.pop()
            row(0)

    def outer(level: int) -> None:
        if level == axis:
            along_axis()
            return
        with for_range(b, name=f"scan.outer{level}",
                       **level_bounds(level, dims[level], rows)) as v:
            index.append(v)
            outer(level + 1)
            index.pop()
    if shape.size:
        outer(0)


# Lanes of the in-register scan: 8 x f32 is one AVX2 register (wider types take two);
# vectors per loop step: their prefixes are independent, only the running total is chained.
_SCAN_LANES = 8
_SCAN_VECTORS = 4


def _vector_scan_op(scan: Instruction) -> Optional[str]:
    """The LLVM instruction of a sum or product scan over 32/64-bit numbers (which the
    in-register scan handles), else None."""
    from flowjit.ir.reference import simple_reducer
    dtype = scan.shape.dtype
    if dtype.bits not in (32, 64) or not (dtype.is_float or dtype.is_int):
        return None
    kind = simple_reducer(scan.calls["to_apply"])
    if kind == "add":
        return "fadd" if dtype.is_float else "add"
    if kind == "multiply":
        return "fmul" if dtype.is_float else "mul"
    return None


def _vector_scan(ctx: ScalarContext, scan: Instruction, out, index: list, n: int,
                 trailing: int, reverse: bool, initial, combine, buffers: dict) -> None:
    """A sum/product scan along a contiguous axis, _SCAN_VECTORS vectors of _SCAN_LANES
    elements per step: each vector's own prefix in log2(lanes) shifted adds, the vectors
    chained to each other, then the running total added to all. The loop-carried chain is
    one add and one lane broadcast per step instead of one add per element, so the scan
    runs near memory speed. Like a reduction's, the sum is reassociated (within a step)."""
    b = ctx.builder
    dtype = scan.shape.dtype
    opname = _vector_scan_op(scan)
    vector_type = llvm_ir.VectorType(initial.type, _SCAN_LANES)
    identity = 0 if opname in ("fadd", "add") else 1
    identities = llvm_ir.Constant(vector_type, [llvm_ir.Constant(
        initial.type, float(identity) if dtype.is_float else identity).constant] * _SCAN_LANES)
    apply = getattr(b, opname)
    step_size = _SCAN_LANES * _SCAN_VECTORS
    # The running total is kept broadcast to every lane.
    carry = alloca_at_entry(b, vector_type, "scan.carry")
    b.store(_broadcast(b, initial, vector_type, 0), carry)

    def position(offset) -> list:
        i = b.sub(i64(n - 1), offset) if reverse else offset
        return index + [i] + [i64(0)] * trailing

    def address(pointer, first):
        """Where the vector of elements first .. first + lanes - 1 starts in memory."""
        lowest = position(b.add(first, i64(_SCAN_LANES - 1 if reverse else 0)))
        return b.gep(pointer, [linearize(b, lowest, scan.shape.dims)], inbounds=True,
                     source_etype=memory_type(dtype))

    def load(first):
        source = buffers.get(id(scan.operands[0]))
        if source is not None and scan.operands[0].shape.dtype == dtype:
            # An operand in memory: one vector load (LLVM splits per-lane loads up).
            return _reversed(b, b.load(address(source, first), typ=vector_type,
                                       align=dtype.itemsize), reverse)
        lanes = llvm_ir.Constant(vector_type, None)
        for lane in range(_SCAN_LANES):
            element = combine(None, position(b.add(first, i64(lane))))
            lanes = b.insert_element(lanes, element, llvm_ir.Constant(llvm_ir.IntType(32),
                                                                       lane))
        return lanes

    with for_range(b, n // step_size, "scan.step") as step:
        first = b.mul(step, i64(step_size))
        vectors = []
        for k in range(_SCAN_VECTORS):
            lanes = _prefix_in_register(b, apply, load(b.add(first, i64(k * _SCAN_LANES))),
                                        identities)
            if vectors:
                lanes = apply(_broadcast(b, vectors[-1], vector_type, _SCAN_LANES - 1), lanes)
            vectors.append(lanes)
        total = b.load(carry)
        for k, lanes in enumerate(vectors):
            lanes = apply(total, lanes)
            b.store(_reversed(b, lanes, reverse),
                    address(out, b.add(first, i64(k * _SCAN_LANES))), align=dtype.itemsize)
        b.store(apply(total, _broadcast(b, vectors[-1], vector_type, _SCAN_LANES - 1)), carry)
    tail = alloca_at_entry(b, initial.type, "scan.tail.carry")
    b.store(b.extract_element(b.load(carry), llvm_ir.Constant(llvm_ir.IntType(32), 0)), tail)
    with for_range(b, n, "scan.tail", start=i64(n // step_size * step_size)) as offset:
        folded = combine(b.load(tail), position(offset))
        b.store(folded, tail)
        _store(ctx, out, scan.shape, position(offset), folded)


def _prefix_in_register(b: llvm_ir.IRBuilder, apply, lanes, identities):
    """Each lane folded with the lanes before it: log2(lanes) shifts (identity shifted in)."""
    count = lanes.type.count
    shift = 1
    while shift < count:
        mask = [count + j if j < shift else j - shift for j in range(count)]
        shifted = b.shuffle_vector(lanes, identities, llvm_ir.Constant(
            llvm_ir.VectorType(llvm_ir.IntType(32), count), mask))
        lanes = apply(lanes, shifted)
        shift *= 2
    return lanes


def _reversed(b: llvm_ir.IRBuilder, lanes, reverse: bool):
    """The lanes in reverse order when `reverse` (a backwards scan's memory order)."""
    if not reverse:
        return lanes
    count = lanes.type.count
    return b.shuffle_vector(lanes, lanes, llvm_ir.Constant(
        llvm_ir.VectorType(llvm_ir.IntType(32), count), list(range(count - 1, -1, -1))))


def _broadcast(b: llvm_ir.IRBuilder, value, vector_type, lane: int):
    """Lane `lane` of vector `value` (or scalar `value`) in every lane."""
    i32 = llvm_ir.IntType(32)
    if not isinstance(value.type, llvm_ir.VectorType):
        value = b.insert_element(llvm_ir.Constant(vector_type, None), value,
                                 llvm_ir.Constant(i32, 0))
        lane = 0
    return b.shuffle_vector(value, value, llvm_ir.Constant(
        llvm_ir.VectorType(i32, vector_type.count), [lane] * vector_type.count))


def pooling_of(inst: Instruction) -> Optional[Instruction]:
    """The pooling reduce-window `inst` computes (itself, or its fusion's root), if any."""
    root = inst.calls["calls"].root if inst.opcode == "fusion" else inst
    if not is_pooling(root) or wide_accumulator(root.calls["to_apply"],
                                                root.shape.dtype) is not None:
        return None   # f16/bf16 sums: the elemental rule accumulates them in f32
    return root


def emit_pooling(ctx: ScalarContext, emitter: ElementalEmitter, pool: Instruction, out,
                 rows=None) -> None:
    """For each output position but the minor dimension: fill its row with the init value,
    then for each window tap (bounds checked once per tap, not per element) fold the
    operand's row into it, a contiguous loop that LLVM vectorizes (NHWC: the channels)."""
    x, init = pool.operands
    window = pool.attrs["window"]
    comp = pool.calls["to_apply"]
    shape = pool.shape
    dims, in_dims = shape.dims, x.shape.dims
    minor = dims[-1]
    b = ctx.builder
    initial = emitter.value(init, [])
    index: list = []

    def fold(operand_index: list) -> None:
        with for_range(b, minor, "pool.minor") as c:
            emitter.push_scope()
            value = emitter.value(x, operand_index + [c])
            emitter.pop_scope()
            old = load_element(ctx, out, shape, index + [c])
            ctx.reassociate = True
            try:
                new = emit_scalar_computation(emitter, comp, [old, value])
            finally:
                ctx.reassociate = False
            _store(ctx, out, shape, index + [c], new)

    def taps(d: int, operand_index: list, conditions: list) -> None:
        if d == len(dims) - 1:
            live = [c for c in conditions if c is not None]
            if not live:
                fold(operand_index)
                return
            condition = live[0]
            for c in live[1:]:
                condition = b.and_(condition, c)
            with b.if_then(condition):
                fold(operand_index)
            return
        w = window[d]
        if is_trivial(w):
            taps(d + 1, operand_index + [index[d]], conditions)
            return
        with for_range(b, w.size, f"pool.tap{d}") as k:
            position, condition = tap_position(b, index[d], k, w, in_dims[d], dims[d])
            taps(d + 1, operand_index + [position], conditions + [condition])

    def outer(level: int) -> None:
        if level == len(dims) - 1:
            with for_range(b, minor, "pool.fill") as c:
                _store(ctx, out, shape, index + [c], initial)
            taps(0, [], [])
            return
        with for_range(b, name=f"pool.out{level}",
                       **level_bounds(level, dims[level], rows)) as v:
            index.append(v)
            outer(level + 1)
            index.pop()
    if shape.size:
        outer(0)


def select_and_scatter_rows(inst: Instruction) -> int:
    """Rows of dimension 0 a select-and-scatter can be split into across threads: all of
    them when its window passes dimension 0 through (each row's windows then write only
    that row, as in a batch of images), else 0."""
    if not inst.shape.rank or not is_trivial(inst.attrs["window"][0]):
        return 0
    return inst.shape.dims[0]


def emit_select_and_scatter(ctx: ScalarContext, emitter: ElementalEmitter, inst: Instruction,
                            out, operand_ptr, source_ptr, rows=None) -> None:
    """The result: init everywhere, then each source element scattered onto the operand
    element its window selects (with `rows`, only rows [begin, end) of dimension 0, which
    select_and_scatter_rows allows)."""
    operand, source, init = inst.operands
    window = inst.attrs["window"]
    b = ctx.builder
    shape = inst.shape
    initial = emitter.value(init, [])
    row_size = shape.size // shape.dims[0] if shape.rank and shape.dims[0] else 0
    fill = ({"start": b.mul(rows[0], i64(row_size)), "count": b.mul(rows[1], i64(row_size))}
            if rows is not None else {"count": shape.size})
    with for_range(b, name="fill", **fill) as k:
        address = b.gep(out, [k], inbounds=True, source_etype=memory_type(shape.dtype))
        b.store(to_memory(ctx, initial, shape.dtype), address)
    if source.shape.size == 0 or shape.size == 0:
        return
    dtype = operand.shape.dtype
    probe = load_element(ctx, operand_ptr, operand.shape, [i64(0)] * operand.shape.rank)
    chosen = alloca_at_entry(b, probe.type, "select.value")
    where = alloca_at_entry(b, llvm_ir.IntType(64), "select.where")
    found = alloca_at_entry(b, llvm_ir.IntType(1), "select.found")
    position: list = []
    tap_index: list = []
    conditions: list = []

    def consider() -> None:
        value = load_element(ctx, operand_ptr, operand.shape, tap_index)
        has = b.load(found)
        keep = emit_scalar_computation(emitter, inst.calls["select"], [b.load(chosen), value])
        take = b.or_(b.not_(has), b.not_(keep))
        with b.if_then(take):
            b.store(value, chosen)
            b.store(linearize(b, tap_index, operand.shape.dims), where)
            b.store(llvm_ir.Constant(llvm_ir.IntType(1), 1), found)

    def taps(d: int) -> None:
        if d == len(window):
            live = [c for c in conditions if c is not None]
            if not live:
                consider()
                return
            condition = live[0]
            for c in live[1:]:
                condition = b.and_(condition, c)
            with b.if_then(condition):
                consider()
            return
        with for_range(b, window[d].size, f"tap{d}") as k:
            index, condition = tap_position(b, position[d], k, window[d],
                                            operand.shape.dims[d], source.shape.dims[d])
            tap_index.append(index)
            conditions.append(condition)
            taps(d + 1)
            conditions.pop()
            tap_index.pop()

    def sources(d: int) -> None:
        if d == source.shape.rank:
            b.store(llvm_ir.Constant(llvm_ir.IntType(1), 0), found)
            b.store(probe, chosen)
            taps(0)
            with b.if_then(b.load(found)):
                target = b.load(where)
                address = b.gep(out, [target], inbounds=True,
                                source_etype=memory_type(dtype))
                old = from_memory(ctx, b.load(address, typ=memory_type(dtype)), dtype)
                update = load_element(ctx, source_ptr, source.shape, position)
                combined = emit_scalar_computation(emitter, inst.calls["scatter"],
                                                   [old, update])
                b.store(to_memory(ctx, combined, dtype), address)
            return
        with for_range(b, name=f"source{d}",
                       **level_bounds(d, source.shape.dims[d], rows)) as v:
            position.append(v)
            sources(d + 1)
            position.pop()
    sources(0)
