"""GPU kernel bodies over the shared elemental emitter: grid-stride loops over an output,
block-per-row reductions (warp shuffles + shared memory, one pass over the data), scatter.

Each `emit_*` function fills a kernel whose builder is `ctx.builder`; `outputs` and
`buffers` are its pointer arguments, as in codegen/kernels.py.
"""
from __future__ import annotations

import math
from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, select_by_branch
from flowjit.codegen.elemental import (ConstantPool, ElementalEmitter, emit_scalar_computation,
                                       linearize, load_element, scatter_target)
from flowjit.codegen.ptx_target import (WARP, barrier, delinearize_narrow, load_shared,
                                        shared_array, shared_element, shuffle, special_register,
                                        strided_loop)
from flowjit.codegen.scalar_ops import ScalarContext, from_memory, to_memory, wide_accumulator
from flowjit.codegen.llvm_types import I8, I32, I64, i64, memory_type
from flowjit.ir.dtypes import DType
from flowjit.ir.graph import post_order
from flowjit.ir.module import Instruction
from flowjit.ir.shapes import leaves

LOOP_BLOCK = 256
MAX_GRID = 65535
ROW_KERNEL_MIN = 32   # reductions over fewer elements run one per thread, in a loop kernel


def no_parameters(inst: Instruction, index: list):
    raise NotImplementedError(f"parameter %{inst.name} has no buffer in this kernel")


def thread_geometry(ctx: ScalarContext, axis: str = "x") -> tuple:
    """(thread in block, block, threads per block, blocks) along `axis`, as i64."""
    b = ctx.builder
    return tuple(b.zext(special_register(ctx, f"{name}.{axis}"), I64)
                 for name in ("tid", "ctaid", "ntid", "nctaid"))


def store_element(ctx: ScalarContext, pointer, shape, index: list, value) -> None:
    """buffer[index] = value (register form converted to memory form)."""
    b = ctx.builder
    address = b.gep(pointer, [linearize(b, index, shape.dims)], inbounds=True,
                    source_etype=memory_type(shape.dtype))
    b.store(to_memory(ctx, value, shape.dtype), address)


def loop_grid(size: int, block: int = LOOP_BLOCK) -> tuple[int, int, int]:
    return (max(1, min(MAX_GRID, -(-size // block))), 1, 1)


# --- elementwise and loop fusions ------------------------------------------------------

def emit_loop_kernel(ctx: ScalarContext, constants: ConstantPool, root: Instruction,
                     outputs: list, buffers: dict) -> int:
    """out[i] = value(root, i) for every output element, one grid-stride loop over the
    flattened output (per group of equally shaped outputs); returns the largest size."""
    out_shapes = leaves(root.shape)
    groups = [list(range(len(out_shapes)))]
    if len({s.dims for s in out_shapes}) > 1:
        groups = [[k] for k in range(len(out_shapes))]
    b = ctx.builder
    tid, block, threads, blocks = thread_geometry(ctx)
    start = b.add(b.mul(block, threads), tid)
    stride = b.mul(threads, blocks)
    emitter = ElementalEmitter(ctx, no_parameters, constants, buffers)
    largest = 0
    for group in groups:
        shape = out_shapes[group[0]]
        largest = max(largest, shape.size)
        if shape.size == 0:
            continue
        with strided_loop(b, start, i64(shape.size), stride, f"e{group[0]}") as flat:
            index = delinearize_narrow(b, flat, shape.dims, shape.size)
            emitter.push_scope()
            value = emitter.value(root, index)
            values = value if isinstance(value, list) else [value]
            for k in group:
                store_element(ctx, outputs[k], out_shapes[k], index, values[k])
            emitter.pop_scope()
    return largest


# --- reductions: one block per output row ------------------------------------------------

def row_reductions(root: Instruction, buffers: dict) -> tuple[int, list[Instruction]]:
    """(row rank r, reductions) when `root` is best computed one block per row: a reduce
    root (r = its rank), or a fusion whose reductions produce values indexed by the first r
    dims of the output (softmax, layer norm). r = -1 when there are none."""
    if root.opcode == "reduce":
        first = root.operands[0].shape
        size = math.prod(first.dims[d] for d in root.attrs["dimensions"])
        rank = first.rank - len(root.attrs["dimensions"])
        return (rank, [root]) if size >= ROW_KERNEL_MIN else (-1, [])
    if root.shape.is_tuple:
        return -1, []
    found: dict[int, list[Instruction]] = {}
    for node in post_order([root], stop=lambda inst: id(inst) in buffers):
        if node.opcode != "reduce" or node.shape.is_tuple:
            continue
        rank = node.shape.rank
        size = math.prod(node.operands[0].shape.dims[d] for d in node.attrs["dimensions"])
        if root.shape.dims[:rank] == node.shape.dims and size >= ROW_KERNEL_MIN:
            found.setdefault(rank, []).append(node)
    if not found:
        return -1, []
    rank = max(found)
    return rank, found[rank]


def row_block_size(reduced: int, rows: int) -> int:
    """Threads per block for rows of `reduced` elements: a power of two in [32, 1024]."""
    size = 1 << max(5, (reduced - 1).bit_length())
    return min(size, 1024 if rows == 1 else 256)


def emit_row_kernel(ctx: ScalarContext, constants: ConstantPool, root: Instruction,
                    rank: int, reductions: list[Instruction], outputs: list, buffers: dict,
                    block: int) -> int:
    """Blocks stride over the output's rows (its first `rank` dims); per row, each reduction
    is computed once by the whole block, then the row's outputs by all its threads.
    Returns the number of rows."""
    b = ctx.builder
    tid, block_id, _, blocks = thread_geometry(ctx)
    row_dims = root.shape.dims[:rank] if not root.shape.is_tuple else leaves(
        root.shape)[0].dims
    rows = math.prod(row_dims)
    col_dims = () if root.opcode == "reduce" else root.shape.dims[rank:]
    cols = math.prod(col_dims)
    emitter = ElementalEmitter(ctx, no_parameters, constants, buffers)
    if rows == 0:
        return 0
    with strided_loop(b, block_id, i64(rows), blocks, "row") as row:
        row_index = delinearize_narrow(b, row, row_dims, rows)
        emitter.push_scope()
        for k, reduction in enumerate(reductions):
            value = _block_reduce(emitter, reduction, row_index, tid, block, f"red{k}")
            emitter.scopes[-1][(id(reduction), tuple(id(v) for v in row_index))] = value
        if root.opcode == "reduce":
            values = emitter.value(root, row_index)
            values = values if isinstance(values, list) else [values]
            with b.if_then(b.icmp_unsigned("==", tid, i64(0))):
                for out, shape, value in zip(outputs, leaves(root.shape), values):
                    store_element(ctx, out, shape, row_index, value)
        elif cols:
            with strided_loop(b, tid, i64(cols), i64(block), "col") as col:
                index = row_index + delinearize_narrow(b, col, col_dims, cols)
                emitter.push_scope()
                store_element(ctx, outputs[0], root.shape, index, emitter.value(root, index))
                emitter.pop_scope()
        emitter.pop_scope()
    return rows


def _block_reduce(em: ElementalEmitter, reduction: Instruction, row_index: list, tid,
                  block: int, name: str) -> object:
    """The value of `reduction` at `row_index`, computed by all threads of the block: each
    folds a strided share of the elements, then warps combine by shuffles and the warps'
    partial results meet in shared memory. Every thread gets the result. Threads without
    elements carry a `has` flag instead of assuming the init value is an identity."""
    ctx, b = em.ctx, em.b
    n = len(reduction.operands) // 2
    inputs, inits = reduction.operands[:n], reduction.operands[n:]
    reduced = sorted(reduction.attrs["dimensions"])
    shape = inputs[0].shape
    kept = [d for d in range(shape.rank) if d not in reduced]
    reduced_dims = tuple(shape.dims[d] for d in reduced)
    size = math.prod(reduced_dims)
    comp = reduction.calls["to_apply"]
    wide = wide_accumulator(comp, reduction.shape.dtype) if n == 1 else None
    init_values = [em.value(i, []) for i in inits]
    if wide is not None:   # f16/bf16 sums and products accumulate in f32
        init_values = [wide.widen(ctx, init_values[0])]

    def elements(flat) -> list:
        full = [None] * shape.rank
        for d, v in zip(kept, row_index):
            full[d] = v
        for d, v in zip(reduced, delinearize_narrow(b, flat, reduced_dims, size)):
            full[d] = v
        em.push_scope()
        values = [em.value(x, full) for x in inputs]
        em.pop_scope()
        return [wide.widen(ctx, values[0])] if wide is not None else values

    def combine(left: list, right: list) -> list:
        if wide is not None:
            return [wide.combine(ctx, left[0], right[0])]
        ctx.reassociate = True
        try:
            result = emit_scalar_computation(em, comp, left + right)
        finally:
            ctx.reassociate = False
        return result if isinstance(result, list) else [result]

    has = b.icmp_unsigned("<", tid, i64(size))
    first = select_by_branch(b, has, lambda: elements(tid), lambda: list(init_values),
                             f"{name}.first")
    slots = [alloca_at_entry(b, v.type, f"{name}.acc") for v in init_values]
    for slot, value in zip(slots, first):
        b.store(value, slot)
    with strided_loop(b, b.add(tid, i64(block)), i64(size), i64(block), f"{name}.fold") as j:
        folded = combine([b.load(s) for s in slots], elements(j))
        for slot, value in zip(slots, folded):
            b.store(value, slot)
    acc = [b.load(s) for s in slots]
    lane = b.trunc(b.and_(tid, i64(WARP - 1)), I32)
    warps = block // WARP
    acc, has = _warp_reduce(ctx, combine, acc, has, lane, WARP, "bfly" if warps == 1 else "down")
    if warps > 1:
        types = [v.type for v in acc]
        partial = [shared_array(ctx.module, _shared_type(t), WARP, f"{name}.partial{k}")
                   for k, t in enumerate(types)]
        flags = shared_array(ctx.module, I8, WARP, f"{name}.has")
        warp = b.trunc(b.lshr(tid, i64(5)), I32)
        with b.if_then(b.icmp_unsigned("==", lane, llvm_ir.Constant(I32, 0))):
            for array, value in zip(partial, acc):
                b.store(_to_shared(b, value), shared_element(b, array, warp))
            b.store(b.zext(has, I8), shared_element(b, flags, warp))
        barrier(ctx)
        # Each group of `warps` lanes reads all partials, so every lane ends with the total.
        source = b.and_(lane, llvm_ir.Constant(I32, warps - 1))
        acc = [_from_shared(b, load_shared(b, array, source), t)
               for array, t in zip(partial, types)]
        flag = load_shared(b, flags, source)
        has = b.icmp_unsigned("!=", flag, llvm_ir.Constant(I8, 0))
        acc, has = _warp_reduce(ctx, combine, acc, has, lane, warps, "bfly")
        barrier(ctx)  # the partials are read before the next row overwrites them
    total = combine(list(init_values), acc)
    result = [b.select(has, t, i) for t, i in zip(total, init_values)]
    if wide is not None:
        return wide.narrow(ctx, result[0])
    return result[0] if n == 1 else result


def _warp_reduce(ctx, combine, acc: list, has, lane, width: int, mode: str):
    """Combine `acc` across the first `width` lanes (a power of two); with `bfly` every
    lane gets the total, with `down` lane 0 does."""
    b = ctx.builder
    offset = width // 2
    while offset:
        other = [shuffle(ctx, mode, v, offset) for v in acc]
        other_has = shuffle(ctx, mode, has, offset)
        if mode == "down":  # a lane past the warp's end reads its own value: ignore it
            inside = b.icmp_unsigned("<", b.add(lane, llvm_ir.Constant(I32, offset)),
                                     llvm_ir.Constant(I32, WARP))
            other_has = b.and_(other_has, inside)
        both = b.and_(has, other_has)
        combined = combine(acc, other)
        acc = [b.select(both, c, b.select(has, a, o)) for c, a, o in zip(combined, acc, other)]
        has = b.or_(has, other_has)
        offset //= 2
    return acc, has


def _shared_type(t: llvm_ir.Type) -> llvm_ir.Type:
    return I8 if t == llvm_ir.IntType(1) else t


def _to_shared(b, value):
    return b.zext(value, I8) if value.type == llvm_ir.IntType(1) else value


def _from_shared(b, value, t):
    return b.icmp_unsigned("!=", value, llvm_ir.Constant(I8, 0)) if t == llvm_ir.IntType(
        1) else value


# --- scatter ------------------------------------------------------------------------------

def scatter_is_atomic(inst: Instruction) -> bool:
    """Whether a scatter's updates can run in parallel (32/64-bit elements: atomics)."""
    return inst.shape.dtype.bits in (32, 64) and inst.shape.dtype is not DType.PRED


def emit_scatter_kernel(ctx: ScalarContext, constants: ConstantPool, inst: Instruction,
                        out, indices_ptr, updates_ptr) -> int:
    """Combine every in-bounds update window into `out` (already holding the operand), one
    thread per update element: atomic add where the combiner is an add, else a
    compare-and-swap loop; for 8/16-bit elements one thread does all, in order."""
    operand, indices, updates = inst.operands
    b = ctx.builder
    shape = operand.shape
    comp = inst.calls["to_apply"]
    emitter = ElementalEmitter(ctx, no_parameters, constants)
    atomic = scatter_is_atomic(inst)
    if updates.shape.size == 0:
        return 0
    if atomic:
        tid, block, threads, blocks = thread_geometry(ctx)
        start, stride = b.add(b.mul(block, threads), tid), b.mul(threads, blocks)
    else:
        start, stride = i64(0), i64(1)
    with strided_loop(b, start, i64(updates.shape.size), stride, "update") as flat:
        index = delinearize_narrow(b, flat, updates.shape.dims, updates.shape.size)
        in_bounds, target = scatter_target(ctx, inst, indices_ptr, index)
        with b.if_then(in_bounds):
            update = load_element(ctx, updates_ptr, updates.shape, index)
            address = b.gep(out, [linearize(b, target, shape.dims)], inbounds=True,
                            source_etype=memory_type(shape.dtype))
            if not atomic:
                old = load_element(ctx, out, shape, target)
                new = emit_scalar_computation(emitter, comp, [old, update])
                b.store(to_memory(ctx, new, shape.dtype), address)
            elif _is_add(comp):
                op = "fadd" if shape.dtype.is_float else "add"
                b.atomic_rmw(op, address, update, "monotonic")
            else:
                _compare_and_swap(ctx, emitter, comp, shape.dtype, address, update)
    return updates.shape.size


def _is_add(comp) -> bool:
    root = comp.root
    return root.opcode == "add" and all(o.opcode == "parameter" for o in root.operands)


def _compare_and_swap(ctx, emitter, comp, dtype: DType, address, update) -> None:
    """*address = comp(*address, update), retried until no other thread came between."""
    b = ctx.builder
    bits_type = llvm_ir.IntType(dtype.bits)
    mtype = memory_type(dtype)
    first = b.load(address, typ=bits_type)
    entry = b.block
    loop = b.append_basic_block("cas.loop")
    done = b.append_basic_block("cas.done")
    b.branch(loop)
    b.position_at_end(loop)
    expected = b.phi(bits_type, "cas.expected")
    expected.add_incoming(first, entry)
    old = from_memory(ctx, b.bitcast(expected, mtype), dtype)
    new = emit_scalar_computation(emitter, comp, [old, update])
    desired = b.bitcast(to_memory(ctx, new, dtype), bits_type)
    pair = b.cmpxchg(address, expected, desired, "monotonic", "monotonic")
    seen = b.extract_value(pair, 0)
    expected.add_incoming(seen, b.block)
    b.cbranch(b.extract_value(pair, 1), done, loop)
    b.position_at_end(done)
