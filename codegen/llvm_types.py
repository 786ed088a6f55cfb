"""LLVM types for IR element types: how a value sits in a register and in memory."""
from __future__ import annotations

from llvmlite import ir as llvm_ir

from flowjit.ir.dtypes import DType

I1, I8, I16, I32, I64 = (llvm_ir.IntType(n) for n in (1, 8, 16, 32, 64))
F16, F32, F64 = llvm_ir.HalfType(), llvm_ir.FloatType(), llvm_ir.DoubleType()
PTR = llvm_ir.PointerType()  # opaque pointer

_REGISTER = {
    DType.PRED: I1, DType.S8: I8, DType.U8: I8, DType.S16: I16, DType.U16: I16,
    DType.S32: I32, DType.U32: I32, DType.S64: I64, DType.U64: I64,
    DType.F16: F16, DType.BF16: F32, DType.F32: F32, DType.F64: F64,
}
_MEMORY = {**_REGISTER, DType.PRED: I8, DType.BF16: I16}


def register_type(dtype: DType) -> llvm_ir.Type:
    """The type a value of `dtype` has while computed (pred: i1; bf16: computed in f32)."""
    return _REGISTER[dtype]


def memory_type(dtype: DType) -> llvm_ir.Type:
    """The type of one element in a buffer (pred: i8; bf16: its 16 bits)."""
    return _MEMORY[dtype]


def const(dtype: DType, value) -> llvm_ir.Constant:
    """A register constant of `dtype`."""
    t = register_type(dtype)
    if dtype.is_float:
        return llvm_ir.Constant(t, float(value))
    if dtype is DType.PRED:
        return llvm_ir.Constant(t, int(bool(value)))
    bits = dtype.bits
    return llvm_ir.Constant(t, int(value) & ((1 << bits) - 1))


def i64(value: int) -> llvm_ir.Constant:
    return llvm_ir.Constant(I64, int(value))
