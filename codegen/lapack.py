"""Kernels that run LAPACK: JAX's `lapack_?xxx_ffi` custom calls and HLO's `cholesky` and
`triangular-solve`, one LAPACK call per matrix of the batch (the leading dims).

Layouts: our buffers are row-major, LAPACK's matrices column-major, and a row-major
[m, n] buffer read column-major is the transpose. Where the transposed problem is the same
routine (potrf on a symmetric matrix: flip `uplo`; trsm: flip `side` and `uplo`) the kernel
calls LAPACK on our buffer as it is; the other routines get column-major copies in a scratch
block (malloc'd once per call) and their matrix results are transposed back.
Workspace sizes are LAPACK's own answers, asked once at compile time.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir as llvm_ir

from flowjit.codegen import lapack_symbols
from flowjit.codegen.control import alloca_at_entry, for_range
from flowjit.codegen.llvm_types import F32, F64, I8, I32, I64, PTR, i64
from flowjit.codegen.scalar_ops import ScalarContext
from flowjit.ir.dtypes import DType
from flowjit.ir.lapack_targets import options, parse_target
from flowjit.ir.module import Instruction
from flowjit.ir.shapes import leaves

_FLIP = {"L": "U", "U": "L", "R": "L"}
_TRANSPOSE_TILE = 32


def _smaller(b: llvm_ir.IRBuilder, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


@dataclass
class _Call:
    """What one kernel holds while it emits: the builder, element type, scratch bytes."""

    ctx: ScalarContext
    dtype: DType
    scratch_bytes: int = 0

    @property
    def b(self) -> llvm_ir.IRBuilder:
        return self.ctx.builder

    @property
    def scalar(self) -> llvm_ir.Type:
        return F32 if self.dtype is DType.F32 else F64

    @property
    def prefix(self) -> str:
        return "s" if self.dtype is DType.F32 else "d"

    def reserve(self, elements: int, itemsize: int = 0) -> int:
        """Byte offset of `elements` more elements in the scratch block (16-aligned)."""
        offset = self.scratch_bytes
        size = elements * (itemsize or self.dtype.itemsize)
        self.scratch_bytes += (size + 15) // 16 * 16
        return offset

    def at(self, base, elements, itemsize: int = 0):
        """Pointer `elements` (an i64 value or int) elements past `base`."""
        count = elements if isinstance(elements, llvm_ir.Value) else i64(elements)
        return self.b.gep(base, [self.b.mul(count, i64(itemsize or self.dtype.itemsize))],
                          source_etype=I8)

    def cell(self, typ):
        """A stack slot in the function's entry block (not one per loop iteration)."""
        return alloca_at_entry(self.b, typ, "lapack.arg")

    def char(self, letter: str):
        cell = self.cell(I8)
        self.b.store(llvm_ir.Constant(I8, ord(letter)), cell)
        return cell

    def int(self, value: int):
        cell = self.cell(I32)
        self.b.store(llvm_ir.Constant(I32, value), cell)
        return cell

    def number(self, value: float):
        cell = self.cell(self.scalar)
        self.b.store(llvm_ir.Constant(self.scalar, value), cell)
        return cell

    def call(self, routine: str, args) -> None:
        name = lapack_symbols.symbol(self.prefix + routine)
        fn = self.ctx.declare(name, llvm_ir.VoidType(), [PTR] * len(args))
        self.b.call(fn, args)

    def copy(self, dst, src, elements: int) -> None:
        memmove = self.ctx.declare("llvm.memmove.p0.p0.i64", llvm_ir.VoidType(),
                                   [PTR, PTR, I64, llvm_ir.IntType(1)])
        self.b.call(memmove, [dst, src, i64(elements * self.dtype.itemsize),
                              llvm_ir.Constant(llvm_ir.IntType(1), 0)])

    def zero(self, dst, bytes_: int) -> None:
        memset = self.ctx.declare("llvm.memset.p0.i64", llvm_ir.VoidType(),
                                  [PTR, I8, I64, llvm_ir.IntType(1)])
        self.b.call(memset, [dst, llvm_ir.Constant(I8, 0), i64(bytes_),
                             llvm_ir.Constant(llvm_ir.IntType(1), 0)])

    def transpose(self, dst, src, rows: int, cols: int) -> None:
        """dst[j * rows + i] = src[i * cols + j]: row-major [rows, cols] to column-major
        (and, with rows and cols swapped, back), in square tiles so that both the reads
        and the writes stay in cache (a plain double loop strides through memory on one
        side: 2-3x slower at n = 512)."""
        b = self.b
        tile = _TRANSPOSE_TILE
        with for_range(b, (rows + tile - 1) // tile, "t.ti") as ti:
            with for_range(b, (cols + tile - 1) // tile, "t.tj") as tj:
                i0, j0 = b.mul(ti, i64(tile)), b.mul(tj, i64(tile))
                i1 = _smaller(b, b.add(i0, i64(tile)), i64(rows))
                j1 = _smaller(b, b.add(j0, i64(tile)), i64(cols))
                with for_range(b, i1, "t.i", start=i0) as i:
                    with for_range(b, j1, "t.j", start=j0) as j:
                        value = b.load(b.gep(src, [b.add(b.mul(i, i64(cols)), j)],
                                             source_etype=self.scalar), typ=self.scalar)
                        b.store(value, b.gep(dst, [b.add(b.mul(j, i64(rows)), i)],
                                             source_etype=self.scalar))

    def store_info(self, info_out, batch, cell) -> None:
        self.b.store(self.b.load(cell, typ=I32), self.at(info_out, batch, 4))


def _batch(shape) -> int:
    count = 1
    for d in shape.dims[:-2]:
        count *= d
    return count


def _ld(rows: int) -> int:
    return max(1, rows)


def _potrf(c: _Call, a_dims, uplo, out, a_in, batch, info_cell):
    """The factor in place in `out` (a copy of the input): potrf with `uplo` flipped reads
    and writes the other triangle of the transposed (= the same symmetric) matrix."""
    n = a_dims[-1]
    at = c.at(out, c.b.mul(batch, i64(n * n)))
    c.copy(at, c.at(a_in, c.b.mul(batch, i64(n * n))), n * n)
    c.call("potrf", [c.char(_FLIP[uplo]), c.int(n), at, c.int(_ld(n)), info_cell])
    return at


def _trsm(c: _Call, a_dims, b_dims, config, out, a_in, b_in, batch):
    """op(a) x = b (side L) or x op(a) = b on row-major buffers: the transposed problem,
    with side and uplo flipped, on `out` (a copy of b)."""
    k, m, n = a_dims[-1], b_dims[-2], b_dims[-1]
    x = c.at(out, c.b.mul(batch, i64(m * n)))
    c.copy(x, c.at(b_in, c.b.mul(batch, i64(m * n))), m * n)
    side = "R" if config["side"] == "L" else "L"
    trans = "N" if config["trans_x"] == "N" else "T"
    c.call("trsm", [c.char(side), c.char(_FLIP[config["uplo"]]), c.char(trans),
                    c.char(config["diag"]), c.int(n), c.int(m), c.number(1.0),
                    c.at(a_in, c.b.mul(batch, i64(k * k))), c.int(_ld(k)), x,
                    c.int(_ld(n))])


def emit_lapack_custom_call(ctx: ScalarContext, inst: Instruction, outputs, inputs) -> None:
    """The kernel of a `lapack_?xxx_ffi` custom call (outputs: one pointer per result leaf)."""
    call = parse_target(inst.attrs["custom_call_target"])
    config = options(inst.attrs)
    c = _Call(ctx, call.dtype)
    a = inst.operands[0].shape
    count = _batch(a)
    emit = _EMITTERS[call.routine]
    emit(c, inst, config, outputs, inputs, count)


def _with_scratch(c: _Call, body) -> None:
    """Emit body(scratch pointer) between a malloc and a free of the block reserved so far
    (workspace can be megabytes: not on a thread's stack)."""
    malloc = c.ctx.declare("malloc", PTR, [I64])
    free = c.ctx.declare("free", llvm_ir.VoidType(), [PTR])
    scratch = c.b.call(malloc, [i64(max(16, c.scratch_bytes))])
    body(scratch)
    c.b.call(free, [scratch])


def _emit_potrf(c, inst, config, outputs, inputs, count):
    out, info = outputs
    cell = c.cell(I32)
    with for_range(c.b, count, "potrf.b") as batch:
        _potrf(c, inst.operands[0].shape.dims, config["uplo"], out, inputs[0], batch, cell)
        c.store_info(info, batch, cell)


def _emit_trsm(c, inst, config, outputs, inputs, count):
    with for_range(c.b, count, "trsm.b") as batch:
        _trsm(c, inst.operands[0].shape.dims, inst.operands[1].shape.dims, config,
              outputs[0], inputs[0], inputs[1], batch)


def _emit_getrf(c, inst, config, outputs, inputs, count):
    m, n = inst.operands[0].shape.dims[-2:]
    out, pivots, info = outputs
    cell = c.cell(I32)
    matrix = c.reserve(m * n)

    def body(scratch):
        with for_range(c.b, count, "getrf.b") as batch:
            work = c.at(scratch, matrix, 1)
            src = c.at(inputs[0], c.b.mul(batch, i64(m * n)))
            c.transpose(work, src, m, n)
            c.call("getrf", [c.int(m), c.int(n), work, c.int(_ld(m)),
                             c.at(pivots, c.b.mul(batch, i64(min(m, n))), 4), cell])
            c.transpose(c.at(out, c.b.mul(batch, i64(m * n))), work, n, m)
            c.store_info(info, batch, cell)
    _with_scratch(c, body)


def _emit_geqrf(c, inst, config, outputs, inputs, count):
    m, n = inst.operands[0].shape.dims[-2:]
    k = min(m, n)
    out, tau = outputs
    (lwork,) = lapack_symbols.workspace(c.prefix + "geqrf", m, n, "array", _ld(m), "array",
                                        "work", -1, 0)
    matrix, work = c.reserve(m * n), c.reserve(lwork)
    cell = c.cell(I32)

    def body(scratch):
        with for_range(c.b, count, "geqrf.b") as batch:
            a = c.at(scratch, matrix, 1)
            c.transpose(a, c.at(inputs[0], c.b.mul(batch, i64(m * n))), m, n)
            c.call("geqrf", [c.int(m), c.int(n), a, c.int(_ld(m)),
                             c.at(tau, c.b.mul(batch, i64(k))), c.at(scratch, work, 1),
                             c.int(lwork), cell])
            c.transpose(c.at(out, c.b.mul(batch, i64(m * n))), a, n, m)
    _with_scratch(c, body)


def _emit_orgqr(c, inst, config, outputs, inputs, count):
    m, n = inst.operands[0].shape.dims[-2:]
    k = inst.operands[1].shape.dims[-1]
    (lwork,) = lapack_symbols.workspace(c.prefix + "orgqr", m, n, k, "array", _ld(m),
                                        "array", "work", -1, 0)
    matrix, work = c.reserve(m * n), c.reserve(lwork)
    cell = c.cell(I32)

    def body(scratch):
        with for_range(c.b, count, "orgqr.b") as batch:
            a = c.at(scratch, matrix, 1)
            c.transpose(a, c.at(inputs[0], c.b.mul(batch, i64(m * n))), m, n)
            c.call("orgqr", [c.int(m), c.int(n), c.int(k), a, c.int(_ld(m)),
                             c.at(inputs[1], c.b.mul(batch, i64(k))), c.at(scratch, work, 1),
                             c.int(lwork), cell])
            c.transpose(c.at(outputs[0], c.b.mul(batch, i64(m * n))), a, n, m)
    _with_scratch(c, body)


def _emit_syevd(c, inst, config, outputs, inputs, count):
    n = inst.operands[0].shape.dims[-1]
    vectors, values, info = outputs
    mode, uplo = config["mode"], config["uplo"]
    lwork, liwork = lapack_symbols.workspace(c.prefix + "syevd", mode, uplo, n, "array",
                                             _ld(n), "array", "work", -1, "iwork", -1, 0)
    matrix, work, iwork = c.reserve(n * n), c.reserve(lwork), c.reserve(liwork, 4)
    cell = c.cell(I32)

    def body(scratch):
        with for_range(c.b, count, "syevd.b") as batch:
            a = c.at(scratch, matrix, 1)
            c.transpose(a, c.at(inputs[0], c.b.mul(batch, i64(n * n))), n, n)
            c.call("syevd", [c.char(mode), c.char(uplo), c.int(n), a, c.int(_ld(n)),
                             c.at(values, c.b.mul(batch, i64(n))), c.at(scratch, work, 1),
                             c.int(lwork), c.at(scratch, iwork, 1), c.int(liwork), cell])
            c.transpose(c.at(vectors, c.b.mul(batch, i64(n * n))), a, n, n)
            c.store_info(info, batch, cell)
    _with_scratch(c, body)


def _emit_gesdd(c, inst, config, outputs, inputs, count):
    m, n = inst.operands[0].shape.dims[-2:]
    k = min(m, n)
    out, s, u, vt, info = outputs
    mode = config["mode"]
    u_rows, u_cols = leaves(inst.shape)[2].dims[-2:]
    vt_rows, vt_cols = leaves(inst.shape)[3].dims[-2:]
    ldu, ldvt = _ld(u_rows), _ld(vt_rows)
    (lwork,) = lapack_symbols.workspace(c.prefix + "gesdd", mode, m, n, "array", _ld(m),
                                        "array", "array", ldu, "array", ldvt, "work", -1,
                                        "array", 0)
    matrix, work = c.reserve(m * n), c.reserve(lwork)
    u_at, vt_at = c.reserve(u_rows * u_cols), c.reserve(vt_rows * vt_cols)
    iwork = c.reserve(8 * max(k, 1), 4)
    cell = c.cell(I32)

    def body(scratch):
        with for_range(c.b, count, "gesdd.b") as batch:
            a = c.at(scratch, matrix, 1)
            uc, vtc = c.at(scratch, u_at, 1), c.at(scratch, vt_at, 1)
            c.transpose(a, c.at(inputs[0], c.b.mul(batch, i64(m * n))), m, n)
            c.call("gesdd", [c.char(mode), c.int(m), c.int(n), a, c.int(_ld(m)),
                             c.at(s, c.b.mul(batch, i64(k))), uc, c.int(ldu), vtc,
                             c.int(ldvt), c.at(scratch, work, 1), c.int(lwork),
                             c.at(scratch, iwork, 1), cell])
            c.transpose(c.at(out, c.b.mul(batch, i64(m * n))), a, n, m)
            u_out = c.at(u, c.b.mul(batch, i64(u_rows * u_cols)))
            vt_out = c.at(vt, c.b.mul(batch, i64(vt_rows * vt_cols)))
            if mode == "N":      # LAPACK does not touch them: zeros, not stale memory
                c.zero(u_out, u_rows * u_cols * c.dtype.itemsize)
                c.zero(vt_out, vt_rows * vt_cols * c.dtype.itemsize)
            else:
                c.transpose(u_out, uc, u_cols, u_rows)
                c.transpose(vt_out, vtc, vt_cols, vt_rows)
            c.store_info(info, batch, cell)
    _with_scratch(c, body)


_EMITTERS = {"potrf": _emit_potrf, "trsm": _emit_trsm, "getrf": _emit_getrf,
             "geqrf": _emit_geqrf, "orgqr": _emit_orgqr, "syevd": _emit_syevd,
             "gesdd": _emit_gesdd}


def emit_cholesky(ctx: ScalarContext, inst: Instruction, outputs, inputs) -> None:
    """HLO cholesky: potrf, the other triangle zeroed, NaN where it fails (as the
    reference semantics say)."""
    c = _Call(ctx, inst.shape.dtype)
    b = c.b
    n = inst.shape.dims[-1]
    lower = inst.attrs.get("lower", False)
    cell = c.cell(I32)
    nan = llvm_ir.Constant(c.scalar, float("nan"))
    zero = llvm_ir.Constant(c.scalar, 0.0)
    with for_range(b, _batch(inst.shape), "chol.b") as batch:
        at = _potrf(c, inst.shape.dims, "L" if lower else "U", outputs[0], inputs[0], batch,
                    cell)
        failed = b.icmp_signed("!=", b.load(cell, typ=I32), llvm_ir.Constant(I32, 0))
        with for_range(b, n, "chol.i") as i:
            with for_range(b, n, "chol.j") as j:
                slot = b.gep(at, [b.add(b.mul(i, i64(n)), j)], source_etype=c.scalar)
                other = b.icmp_signed(">" if lower else "<", j, i)
                value = b.select(other, zero, b.load(slot, typ=c.scalar))
                b.store(b.select(failed, nan, value), slot)


def emit_triangular_solve(ctx: ScalarContext, inst: Instruction, outputs, inputs) -> None:
    """HLO triangular-solve: trsm on the transposed problem (see _trsm)."""
    c = _Call(ctx, inst.shape.dtype)
    a = inst.operands[0].shape
    config = {"side": "L" if inst.attrs.get("left_side", False) else "R",
              "uplo": "L" if inst.attrs.get("lower", False) else "U",
              "trans_x": "N" if inst.attrs.get("transpose_a", "NO_TRANSPOSE") ==
              "NO_TRANSPOSE" else "T",
              "diag": "U" if inst.attrs.get("unit_diagonal", False) else "N"}
    with for_range(c.b, _batch(a), "trsm.b") as batch:
        _trsm(c, a.dims, inst.shape.dims, config, outputs[0], inputs[0], inputs[1], batch)
