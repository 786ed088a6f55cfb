"""Dot kernels: row-major matrix products through BLAS or a vectorizable loop, with the
elementwise epilogue of an output fusion applied in the same kernel."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from llvmlite import ir as llvm_ir

from flowjit.codegen.blas import gemm_symbols
from flowjit.codegen.control import for_range
from flowjit.codegen.scalar_ops import ScalarContext
from flowjit.codegen.llvm_types import F32, F64, I32, I64, PTR, i64
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Computation, Instruction
from flowjit.ir.ops import spec


@dataclass
class GemmPlan:
    """out[b] = op(lhs[b]) @ op(rhs[b]) for `batch` row-major matrices."""

    batch: int
    m: int
    n: int
    k: int
    lhs_transposed: bool   # lhs stored [K, M]
    rhs_transposed: bool   # rhs stored [N, K]
    dtype: DType
    # The rows threads split the output by: its first dim when that is a batch dim (batch
    # is a multiple of it), else the lhs's free dims merged (the m rows of the product: a
    # [4, 128, D] @ [D, E] splits its 512 rows, not 4 batch rows of 128); 1 when neither.
    lead: int = 1
    # How many of the output's leading dims those rows run over (merged when > 1).
    row_dims: int = 1


def _matrix_view(dims: tuple, nb: int, contracting: tuple, k_last_is_plain: bool):
    """(free size, transposed) when dims (after nb batch dims) read as a row-major matrix
    of the free dims (merged) and the contracting dims (merged, in order), else None. For
    the lhs a plain matrix is [M..., K...]; for the rhs it is [K..., N...]."""
    rank = len(dims)
    free = [d for d in range(nb, rank) if d not in contracting]
    size = 1
    for d in free:
        size *= dims[d]
    count = len(contracting)
    # Free dims of size 1 take no room in memory: they may sit anywhere (a vmapped
    # matrix-vector product's rhs is [B, K, 1]).
    placed = [d for d in range(nb, rank) if d in contracting or dims[d] != 1]
    at_end = contracting == tuple(placed[len(placed) - count:])
    at_start = contracting == tuple(placed[:count])
    plain, transposed = (at_end, at_start) if k_last_is_plain else (at_start, at_end)
    if plain:
        return size, False
    if transposed:
        return size, True
    return None


def gemm_plan(dot: Instruction) -> Optional[GemmPlan]:
    """A GemmPlan when `dot` is a (batched) float matrix product in row-major form: each
    operand is [batch..., free..., K] or [batch..., K, free...], its free dims merged
    (x of shape [B, T, D] times w of shape [D, E] is one [B*T, D] x [D, E] product)."""
    lhs, rhs = dot.operands
    a = dot.attrs
    dtype = dot.shape.dtype
    if dtype not in (DType.F32, DType.F64) or lhs.shape.dtype != dtype:
        return None
    lb, rb = tuple(a.get("lhs_batch_dims", ())), tuple(a.get("rhs_batch_dims", ()))
    lc, rc = tuple(a.get("lhs_contracting_dims", ())), tuple(a.get("rhs_contracting_dims", ()))
    nb = len(lb)
    if lb != tuple(range(nb)) or rb != tuple(range(nb)) or not lc:
        return None
    # Several contracting dims merge into one K when they are adjacent and in the same
    # order on both sides (the weight gradient of [B, T, D] @ [D, E] contracts B and T).
    lhs_view = _matrix_view(lhs.shape.dims, nb, lc, k_last_is_plain=True)
    rhs_view = _matrix_view(rhs.shape.dims, nb, rc, k_last_is_plain=False)
    if lhs_view is None or rhs_view is None:
        return None
    batch = 1
    for d in lhs.shape.dims[:nb]:
        batch *= d
    (m, lhs_t), (n, rhs_t) = lhs_view, rhs_view
    lead = dot.shape.dims[0] if dot.shape.rank else 1
    row_dims = 1
    lhs_free = lhs.shape.rank - nb - len(lc)
    if nb == 0:
        # The output is [lhs free..., rhs free...]: its first lhs_free dims are the m rows.
        lead, row_dims = (m, lhs_free) if lhs_free else (1, 1)
    k = 1
    for d in lc:
        k *= lhs.shape.dims[d]
    return GemmPlan(batch, m, n, k, lhs_t, rhs_t, dtype, lead, row_dims)


def epilogue_of(comp: Computation) -> Optional[Instruction]:
    """The dot of an output fusion whose other work is elementwise on the dot's result at
    the same index (bias, activation, scale), or None."""
    dots = [i for i in comp.instructions if i.opcode == "dot"]
    if len(dots) != 1 or comp.root.shape.is_tuple:
        return None
    dot = dots[0]
    if comp.root.shape.dims != dot.shape.dims:
        return None
    users = comp.users()
    stack = [dot]
    while stack:
        node = stack.pop()
        for user in users.get(node, []):
            if not spec(user.opcode).elementwise or user.shape.dims != dot.shape.dims:
                return None
            stack.append(user)
    return dot


# Products at least this large (2*m*n*k flops) are split by rows across flowjit's threads.
MIN_PARALLEL_FLOPS = 1 << 22


def uses_blas(plan: GemmPlan) -> bool:
    return gemm_symbols() is not None and plan.m * plan.n * plan.k >= 32 ** 3


def row_split(plan: GemmPlan, threads: int) -> int:
    """Rows of the output's first dim to split across `threads` (0: one thread), for a
    BLAS product; each holds m / lead rows of the matrix product."""
    flops = 2 * plan.batch * plan.m * plan.n * plan.k
    if threads < 2 or plan.lead < threads or not uses_blas(plan) or flops < MIN_PARALLEL_FLOPS:
        return 0
    if plan.batch == 1 and plan.m < 4 * threads:
        return 0
    return plan.lead


# OpenBLAS's kernels treat the rows of a partial register tile differently (another micro-
# kernel, another order of additions): a thread's rows start at a multiple of this, so each
# row is computed exactly as a single call computes it, whatever the number of threads.
BLAS_ROW_TILE = 48    # a multiple of every sgemm/dgemm tile height OpenBLAS uses (4 to 24)


def row_alignment(plan: GemmPlan) -> int:
    """Rows of the output's first dim a split must keep together for results identical to
    one thread's (whole batch elements already are)."""
    if plan.batch > 1:
        return 1
    per_row = plan.m // max(plan.lead, 1)     # an empty product has a zero-sized dim
    return BLAS_ROW_TILE // math.gcd(per_row, BLAS_ROW_TILE)


def emit_gemm(ctx: ScalarContext, plan: GemmPlan, out, lhs, rhs, rows=None,
              accumulate: bool = False) -> None:
    """out = lhs @ rhs (out += lhs @ rhs with `accumulate`), through BLAS when it is there,
    else a loop LLVM vectorizes; with `rows` (begin, end), only those rows of the output (a
    single product, split by row_split)."""
    if uses_blas(plan):
        _emit_blas(ctx, plan, out, lhs, rhs, gemm_symbols(), rows, accumulate)
    else:
        _emit_loops(ctx, plan, out, lhs, rhs, accumulate)


def _emit_blas(ctx: ScalarContext, plan: GemmPlan, out, lhs, rhs, symbols,
               rows=None, accumulate: bool = False) -> None:
    b = ctx.builder
    sname, dname, bits = symbols
    int_t = I64 if bits == 64 else I32
    scalar = F32 if plan.dtype is DType.F32 else F64
    name = sname if plan.dtype is DType.F32 else dname
    gemm = ctx.declare(name, llvm_ir.VoidType(),
                       [I32, I32, I32, int_t, int_t, int_t, scalar, PTR, int_t, PTR, int_t,
                        scalar, PTR, int_t])
    no_trans, trans, row_major = 111, 112, 101
    lda = plan.m if plan.lhs_transposed else plan.k
    ldb = plan.k if plan.rhs_transposed else plan.n
    itemsize = plan.dtype.itemsize
    m = llvm_ir.Constant(int_t, plan.m)
    lhs_start = out_start = i64(0)       # elements skipped to the first row computed
    batches = (i64(0), i64(plan.batch))
    if rows is not None and plan.batch > 1:   # the output's first dim is a batch dim
        per_row = plan.batch // plan.lead
        batches = tuple(b.mul(r, i64(per_row)) for r in rows)
    elif rows is not None:   # rows of the output's first dim, each m / lead matrix rows
        per_row = plan.m // plan.lead
        begin, end = (b.mul(r, i64(per_row)) for r in rows)
        m = b.trunc(b.sub(end, begin), int_t) if int_t is I32 else b.sub(end, begin)
        # Row i of op(lhs) starts at i*K, or at column i of a stored [K, M] lhs.
        lhs_start = begin if plan.lhs_transposed else b.mul(begin, i64(plan.k))
        out_start = b.mul(begin, i64(plan.n))
    with for_range(b, batches[1], "gemm.b", start=batches[0]) as batch:
        def at(ptr, elements, start):
            offset = b.add(b.mul(batch, i64(elements)), start)
            return b.gep(ptr, [b.mul(offset, i64(itemsize))],
                         source_etype=llvm_ir.IntType(8))
        b.call(gemm, [
            llvm_ir.Constant(I32, row_major),
            llvm_ir.Constant(I32, trans if plan.lhs_transposed else no_trans),
            llvm_ir.Constant(I32, trans if plan.rhs_transposed else no_trans),
            m, llvm_ir.Constant(int_t, plan.n),
            llvm_ir.Constant(int_t, plan.k), llvm_ir.Constant(scalar, 1.0),
            at(lhs, plan.m * plan.k, lhs_start), llvm_ir.Constant(int_t, lda),
            at(rhs, plan.k * plan.n, i64(0)), llvm_ir.Constant(int_t, ldb),
            llvm_ir.Constant(scalar, 1.0 if accumulate else 0.0),
            at(out, plan.m * plan.n, out_start),
            llvm_ir.Constant(int_t, plan.n)])


def _emit_loops(ctx: ScalarContext, plan: GemmPlan, out, lhs, rhs,
                accumulate: bool = False) -> None:
    """for i: row = 0; for k: row += lhs[i,k] * rhs[k,:] — the j loop is contiguous."""
    b = ctx.builder
    scalar = F32 if plan.dtype is DType.F32 else F64
    m, n, k = plan.m, plan.n, plan.k

    def element(ptr, base, index):
        return b.gep(ptr, [b.add(base, index)], inbounds=True, source_etype=scalar)
    with for_range(b, plan.batch, "mm.b") as batch:
        out_base = b.mul(batch, i64(m * n))
        lhs_base = b.mul(batch, i64(m * k))
        rhs_base = b.mul(batch, i64(k * n))
        with for_range(b, m, "mm.i") as i:
            row = b.mul(i, i64(n))
            if not accumulate:
                with for_range(b, n, "mm.z") as j:
                    b.store(llvm_ir.Constant(scalar, 0.0),
                            element(out, out_base, b.add(row, j)))
            with for_range(b, k, "mm.k") as kk:
                a_index = b.add(b.mul(kk, i64(m)), i) if plan.lhs_transposed else b.add(
                    b.mul(i, i64(k)), kk)
                a = b.load(element(lhs, lhs_base, a_index), typ=scalar)
                with for_range(b, n, "mm.j") as j:
                    b_index = b.add(b.mul(j, i64(k)), kk) if plan.rhs_transposed else b.add(
                        b.mul(kk, i64(n)), j)
                    bv = b.load(element(rhs, rhs_base, b_index), typ=scalar)
                    slot = element(out, out_base, b.add(row, j))
                    b.store(b.fadd(b.load(slot, typ=scalar), b.fmul(a, bv)), slot)
