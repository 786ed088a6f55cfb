"""The GPU dot kernel: shared-memory tiles, a register micro-tile per thread, and the
elementwise epilogue of an output fusion (bias, activation, scale) applied before the store.

A block of 16×16 threads computes a (16·tm)×(16·tn) tile of one batch's output; the K
dimension is walked in steps of 16, each step staging one tile of each operand in shared
memory. Operands are read through the elemental emitter, so a fused producer (a transpose,
a convert) is computed as the tile is loaded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, select_by_branch
from flowjit.codegen.dot import epilogue_of
from flowjit.codegen.elemental import ConstantPool, ElementalEmitter
from flowjit.codegen.ptx_kernels import MAX_GRID, no_parameters, store_element, thread_geometry
from flowjit.codegen.ptx_target import (barrier, delinearize_narrow, load_shared, shared_array,
                                        shared_element, strided_loop)
from flowjit.codegen.scalar_ops import ScalarContext, convert
from flowjit.codegen.llvm_types import i64, register_type
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Computation, Instruction

THREADS = 16      # threads per block along each output dim (256 in all)
TILE_K = 16


@dataclass(frozen=True)
class DotTiling:
    """How one dot maps onto tiles: its dims by role, sizes, micro-tile and accumulator."""

    lhs_batch: tuple
    rhs_batch: tuple
    lhs_free: Optional[int]
    rhs_free: Optional[int]
    lhs_contracting: int
    rhs_contracting: int
    batch_dims: tuple
    m: int
    n: int
    k: int
    tm: int
    tn: int
    accumulate: DType

    @property
    def tiles(self) -> int:
        rows, cols = -(-self.m // (THREADS * self.tm)), -(-self.n // (THREADS * self.tn))
        return math.prod(self.batch_dims) * rows * cols


def dot_tiling(dot: Instruction) -> Optional[DotTiling]:
    """A tiling when `dot` has one contracting dim, at most one free dim per side and a
    number type (not pred); None otherwise (the loop kernel computes it then)."""
    lhs, rhs = dot.operands
    a = dot.attrs
    lb, rb = tuple(a.get("lhs_batch_dims", ())), tuple(a.get("rhs_batch_dims", ()))
    lc, rc = tuple(a.get("lhs_contracting_dims", ())), tuple(a.get("rhs_contracting_dims", ()))
    out = dot.shape.dtype
    if len(lc) != 1 or out is DType.PRED or dot.shape.size == 0:
        return None
    lfree = [d for d in range(lhs.shape.rank) if d not in lb and d not in lc]
    rfree = [d for d in range(rhs.shape.rank) if d not in rb and d not in rc]
    if len(lfree) > 1 or len(rfree) > 1:
        return None
    m = lhs.shape.dims[lfree[0]] if lfree else 1
    n = rhs.shape.dims[rfree[0]] if rfree else 1
    accumulate = DType.F32 if out in (DType.F16, DType.BF16) else out
    return DotTiling(lb, rb, lfree[0] if lfree else None, rfree[0] if rfree else None,
                     lc[0], rc[0], tuple(lhs.shape.dims[d] for d in lb), m, n,
                     lhs.shape.dims[lc[0]], 4 if m >= 64 else 1, 4 if n >= 64 else 1,
                     accumulate)


def fusion_dot(comp: Computation) -> Optional[Instruction]:
    """The dot an output fusion is built around, when the tiled kernel can compute it."""
    dot = epilogue_of(comp)
    return dot if dot is not None and dot_tiling(dot) is not None else None


def emit_dot_kernel(ctx: ScalarContext, constants: ConstantPool, root: Instruction,
                    dot: Instruction, outputs: list, buffers: dict) -> int:
    """out = epilogue(dot) over all output tiles; returns the number of tiles (blocks)."""
    plan = dot_tiling(dot)
    lhs, rhs = dot.operands
    b = ctx.builder
    acc_type = register_type(plan.accumulate)
    zero = llvm_ir.Constant(acc_type, 0.0 if plan.accumulate.is_float else 0)
    block_m, block_n = THREADS * plan.tm, THREADS * plan.tn
    row_tiles, col_tiles = -(-plan.m // block_m), -(-plan.n // block_n)
    lhs_tile = shared_array(ctx.module, acc_type, TILE_K * block_m, "dot.lhs")
    rhs_tile = shared_array(ctx.module, acc_type, TILE_K * block_n, "dot.rhs")
    emitter = ElementalEmitter(ctx, no_parameters, constants, buffers)
    tid, block_id, _, blocks = thread_geometry(ctx)
    tx, ty = b.and_(tid, i64(THREADS - 1)), b.lshr(tid, i64(4))
    slots = [[alloca_at_entry(b, acc_type, f"acc{i}.{j}") for j in range(plan.tn)]
             for i in range(plan.tm)]

    def operand_value(operand, batch_index, batch_dims, free, free_value, contracting,
                      k_value, dtype):
        index = [None] * operand.shape.rank
        for d, v in zip(batch_dims, batch_index):
            index[d] = v
        if free is not None:
            index[free] = free_value
        index[contracting] = k_value
        return convert(ctx, emitter.value(operand, index), dtype, plan.accumulate)

    def stage(tile, extent, free_size, k0, base, contiguous_k, load):
        """Copy one TILE_K × extent operand tile to shared memory, zero outside the array."""
        for s in range(extent // THREADS):
            e = b.add(tid, i64(THREADS * THREADS * s))
            if contiguous_k:  # consecutive threads read consecutive k: coalesced
                kk, ff = b.and_(e, i64(TILE_K - 1)), b.lshr(e, i64(4))
            else:
                kk, ff = b.udiv(e, i64(extent)), b.urem(e, i64(extent))
            f, k = b.add(base, ff), b.add(k0, kk)
            inside = b.and_(b.icmp_unsigned("<", f, i64(free_size)),
                            b.icmp_unsigned("<", k, i64(plan.k)))
            value = select_by_branch(b, inside, emitter.inside_branch(lambda: load(f, k)),
                                     lambda: zero, "stage")
            b.store(value, shared_element(b, tile, b.add(b.mul(kk, i64(extent)), ff)))

    def multiply_add(acc, x, y):
        if plan.accumulate.is_float:
            return b.fadd(acc, b.fmul(x, y, flags=["contract"]), flags=["contract"])
        return b.add(acc, b.mul(x, y))

    with strided_loop(b, block_id, i64(plan.tiles), blocks, "tile") as tile:
        per_batch = row_tiles * col_tiles
        batch = b.udiv(tile, i64(per_batch))
        within = b.urem(tile, i64(per_batch))
        m0 = b.mul(b.udiv(within, i64(col_tiles)), i64(block_m))
        n0 = b.mul(b.urem(within, i64(col_tiles)), i64(block_n))
        batch_size = max(1, math.prod(plan.batch_dims))
        batch_index = delinearize_narrow(b, batch, plan.batch_dims, batch_size) \
            if plan.batch_dims else []
        emitter.push_scope()
        for row in slots:
            for slot in row:
                b.store(zero, slot)
        with strided_loop(b, i64(0), i64(plan.k), i64(TILE_K), "k") as k0:
            stage(lhs_tile, block_m, free_size=plan.m, k0=k0, base=m0,
                  contiguous_k=plan.lhs_contracting == lhs.shape.rank - 1,
                  load=lambda f, k: operand_value(lhs, batch_index, plan.lhs_batch,
                                                  plan.lhs_free, f, plan.lhs_contracting, k,
                                                  lhs.shape.dtype))
            stage(rhs_tile, block_n, free_size=plan.n, k0=k0, base=n0,
                  contiguous_k=plan.rhs_contracting == rhs.shape.rank - 1,
                  load=lambda f, k: operand_value(rhs, batch_index, plan.rhs_batch,
                                                  plan.rhs_free, f, plan.rhs_contracting, k,
                                                  rhs.shape.dtype))
            barrier(ctx)
            acc = [[b.load(slot) for slot in row] for row in slots]
            for kk in range(TILE_K):
                xs = [load_shared(b, lhs_tile, b.add(ty, i64(kk * block_m + THREADS * i)))
                      for i in range(plan.tm)]
                ys = [load_shared(b, rhs_tile, b.add(tx, i64(kk * block_n + THREADS * j)))
                      for j in range(plan.tn)]
                acc = [[multiply_add(acc[i][j], xs[i], ys[j]) for j in range(plan.tn)]
                       for i in range(plan.tm)]
            for row, values in zip(slots, acc):
                for slot, value in zip(row, values):
                    b.store(value, slot)
            barrier(ctx)  # the tiles are read before the next step overwrites them
        for i in range(plan.tm):
            for j in range(plan.tn):
                _store_result(ctx, emitter, root, dot, plan, outputs, batch_index,
                              b.add(m0, b.add(ty, i64(THREADS * i))),
                              b.add(n0, b.add(tx, i64(THREADS * j))), b.load(slots[i][j]))
        emitter.pop_scope()
    return plan.tiles


def _store_result(ctx, emitter, root, dot, plan, outputs, batch_index, row, col, acc):
    """outputs[0][index] = root's value there, with the dot's value seeded from `acc`."""
    b = ctx.builder
    inside = b.and_(b.icmp_unsigned("<", row, i64(plan.m)), b.icmp_unsigned("<", col,
                                                                              i64(plan.n)))
    with b.if_then(inside):
        index = list(batch_index)
        if plan.lhs_free is not None:
            index.append(row)
        if plan.rhs_free is not None:
            index.append(col)
        emitter.push_scope()
        value = convert(ctx, acc, plan.accumulate, dot.shape.dtype)
        emitter.scopes[-1][(id(dot), tuple(id(v) for v in index))] = value
        store_element(ctx, outputs[0], root.shape, index, emitter.value(root, index))
        emitter.pop_scope()


def dot_grid(dot: Instruction) -> tuple[int, int, int]:
    return (max(1, min(MAX_GRID, dot_tiling(dot).tiles)), 1, 1)
