"""Scalar lowering of every elementwise opcode: one rule per opcode, one signature.

A rule is `rule(ctx, inst, args) -> value`: `args` are the operands' register values,
`inst.operands[i].shape.dtype` their types, `inst.shape.dtype` the result type. Semantics are
XLA's (see ir/reference.py): x/0 = -1 and x%0 = x for integers, INT_MIN/-1 = INT_MIN,
saturating float→int conversion with NaN → 0, NaN-propagating maximum/minimum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llvmlite import ir as llvm_ir

from flowjit.codegen import fast_math
from flowjit.codegen.control import alloca_at_entry
from flowjit.codegen.llvm_types import F32, I1, I16, I32, memory_type, register_type
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Instruction
from flowjit.ir.opcodes import Opcode


@dataclass
class ScalarContext:
    """What a rule needs: the builder and the LLVM module (to declare intrinsics)."""

    builder: llvm_ir.IRBuilder
    module: llvm_ir.Module
    inline_math: bool = True   # vectorizable polynomial exp/log/tanh/erf/sin/cos, not libm
    reassociate: bool = False  # set while emitting a reducer: lets LLVM vectorize sums
    target: str = "cpu"        # "cuda": math that NVPTX cannot lower goes to libdevice

    def intrinsic(self, name: str, ret: llvm_ir.Type, args: list) -> llvm_ir.Function:
        return self.declare(name, ret, [a.type for a in args])

    def declare(self, name: str, ret: llvm_ir.Type, arg_types: list) -> llvm_ir.Function:
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        return llvm_ir.Function(self.module, llvm_ir.FunctionType(ret, arg_types), name)

    def call_intrinsic(self, base: str, *args):
        if self.target == "cuda" and base in _LIBDEVICE_INTRINSICS:
            return self.call_libm(_LIBDEVICE_INTRINSICS[base], *args)
        suffix = {"half": "f16", "float": "f32", "double": "f64"}[str(args[0].type)]
        fn = self.intrinsic(f"llvm.{base}.{suffix}", args[0].type, list(args))
        return self.builder.call(fn, list(args))

    def call_libm(self, base: str, *args):
        """A libm function (f32 → name+'f'); f16 is computed in f32."""
        t = args[0].type
        b = self.builder
        if str(t) == "half":
            widened = [b.fpext(a, F32) for a in args]
            return b.fptrunc(self.call_libm(base, *widened), t)
        name = base + ("f" if str(t) == "float" else "")
        if self.target == "cuda":
            name = "__nv_" + name   # libdevice, linked in by codegen/ptx.py
        fn = self.declare(name, t, [t] * len(args))
        return b.call(fn, list(args))

    def float_remainder(self, x, y):
        """fmod(x, y), exactly: LLVM's frem, or on CUDA libdevice's fmod (NVPTX lowers frem
        to a divide and truncate, which is inexact for large quotients)."""
        if self.target == "cuda":
            return self.call_libm("fmod", x, y)
        return self.builder.frem(x, y)


Rule = Callable[[ScalarContext, Instruction, list], llvm_ir.Value]

# LLVM intrinsics the NVPTX backend has no lowering for: libdevice names instead.
_LIBDEVICE_INTRINSICS = {"exp": "exp", "log": "log", "sin": "sin", "cos": "cos",
                         "pow": "pow", "round": "round"}


def _dtype(inst: Instruction, i: int = 0) -> DType:
    return inst.operands[i].shape.dtype


def _float_or_int(float_op: str, signed_op: str, unsigned_op: str) -> Rule:
    def rule(ctx, inst, args):
        dt = _dtype(inst)
        b = ctx.builder
        if dt.is_float:
            flags = ["reassoc"] if ctx.reassociate else []
            return getattr(b, float_op)(*args, flags=flags)
        if dt.is_unsigned_int or dt.is_pred:
            return getattr(b, unsigned_op)(*args)
        return getattr(b, signed_op)(*args)
    return rule


def _intrinsic(name: str) -> Rule:
    return lambda ctx, inst, args: ctx.call_intrinsic(name, *args)


def _libm(name: str) -> Rule:
    return lambda ctx, inst, args: ctx.call_libm(name, *args)


def _negate(ctx, inst, args):
    b = ctx.builder
    if _dtype(inst).is_float:
        return b.fneg(args[0])
    return b.sub(llvm_ir.Constant(args[0].type, 0), args[0])


def _abs(ctx, inst, args):
    dt, b, (x,) = _dtype(inst), ctx.builder, args
    if dt.is_float:
        return ctx.call_intrinsic("fabs", x)
    if dt.is_unsigned_int:
        return x
    negative = b.icmp_signed("<", x, llvm_ir.Constant(x.type, 0))
    return b.select(negative, b.sub(llvm_ir.Constant(x.type, 0), x), x)


def _sign(ctx, inst, args):
    dt, b, (x,) = _dtype(inst), ctx.builder, args
    zero = llvm_ir.Constant(x.type, 0)
    if dt.is_float:
        one = llvm_ir.Constant(x.type, 1.0)
        s = b.select(b.fcmp_ordered(">", x, zero), one,
                     b.select(b.fcmp_ordered("<", x, zero), b.fneg(one), x))
        return s  # keeps NaN and ±0 as they are
    if dt.is_unsigned_int:
        return b.zext(b.icmp_unsigned("!=", x, zero), x.type)
    pos = b.zext(b.icmp_signed(">", x, zero), x.type)
    neg = b.zext(b.icmp_signed("<", x, zero), x.type)
    return b.sub(pos, neg)


def _inline_or_libm(inline, libm_name: str, intrinsic: bool, types=("float", "double")):
    """The inline vectorizable version for the listed float types, else libm/intrinsic."""
    def rule(ctx, inst, args):
        (x,) = args
        if ctx.inline_math and str(x.type) in types:
            return inline(ctx, x)
        if intrinsic:
            return ctx.call_intrinsic(libm_name, x)
        return ctx.call_libm(libm_name, x)
    return rule


def _logistic_libm(ctx, x):
    b = ctx.builder
    one = llvm_ir.Constant(x.type, 1.0)
    return b.fdiv(one, b.fadd(one, ctx.call_intrinsic("exp", b.fneg(x))))


def _half_in_f32(rule: Rule) -> Rule:
    """`rule` computed in f32 for f16 operands and rounded once: a formula of several steps
    in f16 loses ulps at each and overflows early (exp(11.1) is past f16's max)."""
    def widened(ctx, inst, args):
        if str(args[0].type) != "half":
            return rule(ctx, inst, args)
        b = ctx.builder
        return b.fptrunc(rule(ctx, inst, [b.fpext(a, F32) for a in args]), args[0].type)
    return widened


@_half_in_f32
def _logistic(ctx, inst, args):
    (x,) = args
    if ctx.inline_math and str(x.type) in ("float", "double"):
        return fast_math.logistic(ctx, x)
    return _logistic_libm(ctx, x)


@_half_in_f32
def _rsqrt(ctx, inst, args):
    b, (x,) = ctx.builder, args
    return b.fdiv(llvm_ir.Constant(x.type, 1.0), ctx.call_intrinsic("sqrt", x))


def _round_afz(ctx, inst, args):
    return ctx.call_intrinsic("round", args[0])


def _not(ctx, inst, args):
    b, (x,) = ctx.builder, args
    return b.not_(x)


def _bit_count(name: str) -> Rule:
    """LLVM's llvm.ctpop / llvm.ctlz (clz defined as the width for 0, as in XLA)."""
    def rule(ctx, inst, args):
        (x,) = args
        flags = [llvm_ir.Constant(I1, 0)] if name == "ctlz" else []
        fn = ctx.intrinsic(f"llvm.{name}.i{x.type.width}", x.type, [x] + flags)
        return ctx.builder.call(fn, [x] + flags)
    return rule


def _is_finite(ctx, inst, args):
    b, (x,) = ctx.builder, args
    inf = llvm_ir.Constant(x.type, float("inf"))
    return b.fcmp_ordered("<", ctx.call_intrinsic("fabs", x), inf)


def _int_division(ctx, inst, args, remainder: bool):
    """XLA's integer divide/remainder, with the undefined cases defined."""
    dt, b = _dtype(inst), ctx.builder
    x, y = args
    zero = llvm_ir.Constant(y.type, 0)
    one = llvm_ir.Constant(y.type, 1)
    is_zero = b.icmp_unsigned("==", y, zero)
    if dt.is_unsigned_int or dt.is_pred:
        safe = b.select(is_zero, one, y)
        result = b.urem(x, safe) if remainder else b.udiv(x, safe)
        return b.select(is_zero, x if remainder else llvm_ir.Constant(y.type, -1 & (
            (1 << dt.bits) - 1)), result)
    minimum = llvm_ir.Constant(x.type, -(1 << (dt.bits - 1)))
    overflow = b.and_(b.icmp_signed("==", x, minimum),
                      b.icmp_signed("==", y, llvm_ir.Constant(y.type, -1)))
    safe = b.select(b.or_(is_zero, overflow), one, y)
    result = b.srem(x, safe) if remainder else b.sdiv(x, safe)
    if remainder:
        result = b.select(overflow, zero, result)
        return b.select(is_zero, x, result)
    result = b.select(overflow, minimum, result)
    return b.select(is_zero, llvm_ir.Constant(x.type, -1), result)


def _divide(ctx, inst, args):
    if _dtype(inst).is_float:
        return ctx.builder.fdiv(*args)
    return _int_division(ctx, inst, args, remainder=False)


def _remainder(ctx, inst, args):
    if _dtype(inst).is_float:
        return ctx.float_remainder(*args)
    return _int_division(ctx, inst, args, remainder=True)


def _power(ctx, inst, args):
    dt, b = _dtype(inst), ctx.builder
    if dt.is_float:
        return ctx.call_intrinsic("pow", *args)
    # Integer power by squaring over the exponent's bits; negative exponents as XLA.
    x, y = args
    t = x.type
    acc_slot, base_slot, exp_slot = (alloca_at_entry(b, t) for _ in range(3))
    b.store(llvm_ir.Constant(t, 1), acc_slot)
    b.store(x, base_slot)
    b.store(y, exp_slot)
    loop = b.append_basic_block("ipow.loop")
    body = b.append_basic_block("ipow.body")
    done = b.append_basic_block("ipow.done")
    b.branch(loop)
    b.position_at_end(loop)
    e = b.load(exp_slot)
    positive = (b.icmp_unsigned if dt.is_unsigned_int else b.icmp_signed)(
        ">", e, llvm_ir.Constant(t, 0))
    b.cbranch(positive, body, done)
    b.position_at_end(body)
    acc, base = b.load(acc_slot), b.load(base_slot)
    odd = b.trunc(e, I1)
    b.store(b.select(odd, b.mul(acc, base), acc), acc_slot)
    b.store(b.mul(base, base), base_slot)
    b.store(b.lshr(e, llvm_ir.Constant(t, 1)), exp_slot)
    b.branch(loop)
    b.position_at_end(done)
    result = b.load(acc_slot)
    if dt.is_unsigned_int:
        return result
    negative = b.icmp_signed("<", y, llvm_ir.Constant(t, 0))
    one = llvm_ir.Constant(t, 1)
    minus_one = llvm_ir.Constant(t, -1)
    odd_y = b.trunc(y, I1)
    neg_value = b.select(b.icmp_signed("==", x, one), one,
                         b.select(b.icmp_signed("==", x, minus_one),
                                  b.select(odd_y, minus_one, one), llvm_ir.Constant(t, 0)))
    return b.select(negative, neg_value, result)


def _extremum(kind: str) -> Rule:
    def rule(ctx, inst, args):
        dt, b = _dtype(inst), ctx.builder
        x, y = args
        if dt.is_float:
            return ctx.call_intrinsic("maximum" if kind == ">" else "minimum", x, y)
        cmp = b.icmp_unsigned if (dt.is_unsigned_int or dt.is_pred) else b.icmp_signed
        return b.select(cmp(kind, x, y), x, y)
    return rule


def _atan2(ctx, inst, args):
    return ctx.call_libm("atan2", *args)


def _shift(kind: str) -> Rule:
    def rule(ctx, inst, args):
        dt, b = _dtype(inst), ctx.builder
        x, y = args
        width = llvm_ir.Constant(y.type, dt.bits)
        too_big = b.icmp_unsigned(">=", y, width)  # negative amounts are huge unsigned
        safe = b.select(too_big, llvm_ir.Constant(y.type, 0), y)
        if kind == "left":
            return b.select(too_big, llvm_ir.Constant(x.type, 0), b.shl(x, safe))
        if kind == "logical":
            return b.select(too_big, llvm_ir.Constant(x.type, 0), b.lshr(x, safe))
        # XLA's arithmetic shift copies the top bit, for unsigned values too.
        fill = b.ashr(x, llvm_ir.Constant(x.type, dt.bits - 1))
        return b.select(too_big, fill, b.ashr(x, safe))
    return rule


_FLOAT_PREDICATES = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}


def _total_order_bits(ctx, value, dtype: DType):
    """A float's bits as a signed integer ordered as XLA's TOTALORDER orders the floats
    (-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN): negatives get their magnitude
    bits flipped."""
    b = ctx.builder
    if dtype is DType.BF16:   # computed in f32 registers; f32's order is bf16's
        dtype = DType.F32
    bits = dtype.bits
    int_type = llvm_ir.IntType(bits)
    signed = b.bitcast(value, int_type)
    sign = b.ashr(signed, llvm_ir.Constant(int_type, bits - 1))
    return b.xor(signed, b.and_(sign, llvm_ir.Constant(int_type, (1 << (bits - 1)) - 1)))


def _compare(ctx, inst, args):
    dt, b = _dtype(inst), ctx.builder
    op = _FLOAT_PREDICATES[inst.attrs["direction"]]
    if dt.is_float and inst.attrs.get("type") == "TOTALORDER":
        return b.icmp_signed(op, *(_total_order_bits(ctx, a, dt) for a in args))
    if dt.is_float:
        # NE is true for NaN operands (unordered); the others are false.
        return b.fcmp_unordered(op, *args) if op == "!=" else b.fcmp_ordered(op, *args)
    if dt.is_unsigned_int or dt.is_pred:
        return b.icmp_unsigned(op, *args)
    return b.icmp_signed(op, *args)


def _select(ctx, inst, args):
    return ctx.builder.select(*args)


def _clamp(ctx, inst, args):
    lo, x, hi = args
    maximum, minimum = _extremum(">"), _extremum("<")
    fake = _Typed(inst.operands[1].shape.dtype)
    return minimum(ctx, fake, [maximum(ctx, fake, [x, lo]), hi])


class _Typed:
    """Stands in for an instruction when a rule only needs the operand dtype."""

    def __init__(self, dtype: DType):
        self.operands = [_Shaped(dtype), _Shaped(dtype)]


class _Shaped:
    def __init__(self, dtype: DType):
        self.shape = type("S", (), {"dtype": dtype})()


def convert(ctx: ScalarContext, value, source: DType, target: DType):
    """`value` (register form of `source`) converted to `target`, as XLA converts."""
    b = ctx.builder
    src_t, dst_t = register_type(source), register_type(target)
    if source == target or (src_t == dst_t and source.is_float == target.is_float
                            and source.is_signed_int == target.is_signed_int):
        return value
    if target is DType.PRED:
        zero = llvm_ir.Constant(src_t, 0.0 if source.is_float else 0)
        return b.fcmp_unordered("!=", value, zero) if source.is_float else b.icmp_unsigned(
            "!=", value, zero)
    if source.is_float and target.is_float:
        if _float_bits(src_t) < _float_bits(dst_t):
            return b.fpext(value, dst_t)
        if source is DType.F64 and target is DType.F16:
            # x86 has no f64 -> f16 instruction and LLVM would call __truncdfhf2, which the
            # JIT cannot always resolve; round to odd in f32, then f32 -> f16 rounds once.
            value = _to_f32_rounding_to_odd(ctx, value)
        return b.fptrunc(value, dst_t) if src_t != dst_t else value
    if source.is_float:
        name = "fptosi.sat" if target.is_signed_int else "fptoui.sat"
        suffix_in = {"half": "f16", "float": "f32", "double": "f64"}[str(src_t)]
        fn = ctx.declare(f"llvm.{name}.i{dst_t.width}.{suffix_in}", dst_t, [src_t])
        return b.call(fn, [value])
    if target.is_float:
        if source.is_signed_int:
            return b.sitofp(value, dst_t)
        return b.uitofp(value, dst_t)
    if src_t.width == dst_t.width:
        return value
    if src_t.width > dst_t.width:
        return b.trunc(value, dst_t)
    return b.sext(value, dst_t) if source.is_signed_int else b.zext(value, dst_t)


def _to_f32_rounding_to_odd(ctx: ScalarContext, value):
    """f64 -> f32 rounded toward zero with the last bit set when inexact ("round to odd"):
    rounding that to any narrower format gives the correctly rounded result."""
    b = ctx.builder
    I32 = llvm_ir.IntType(32)
    fabs = ctx.declare("llvm.fabs.f64", value.type, [value.type])
    nearest = b.fptrunc(value, llvm_ir.FloatType())
    back = b.fpext(nearest, value.type)
    bits = b.bitcast(nearest, I32)
    overshoot = b.fcmp_ordered(">", b.call(fabs, [back]), b.call(fabs, [value]))
    bits = b.select(overshoot, b.sub(bits, llvm_ir.Constant(I32, 1)), bits)  # one ulp in
    inexact = b.fcmp_ordered("!=", back, value)
    bits = b.select(inexact, b.or_(bits, llvm_ir.Constant(I32, 1)), bits)
    return b.bitcast(bits, llvm_ir.FloatType())


def _float_bits(t) -> int:
    return {"half": 16, "float": 32, "double": 64}[str(t)]


def _convert(ctx, inst, args):
    return convert(ctx, args[0], _dtype(inst), inst.shape.dtype)


def _bitcast_convert(ctx, inst, args):
    b = ctx.builder
    source, target = _dtype(inst), inst.shape.dtype
    stored = to_memory(ctx, args[0], source)
    cast = b.bitcast(stored, memory_type(target))
    return from_memory(ctx, cast, target)


def to_memory(ctx: ScalarContext, value, dtype: DType):
    """Register form → memory form (pred i1 → i8, bf16 f32 → i16 rounded to nearest even)."""
    b = ctx.builder
    if dtype is DType.PRED:
        return b.zext(value, llvm_ir.IntType(8))
    if dtype is DType.BF16:
        bits = b.bitcast(value, I32)
        is_nan = b.fcmp_unordered("uno", value, value)
        lsb = b.and_(b.lshr(bits, llvm_ir.Constant(I32, 16)), llvm_ir.Constant(I32, 1))
        rounded = b.add(bits, b.add(llvm_ir.Constant(I32, 0x7FFF), lsb))
        rounded = b.select(is_nan, b.or_(bits, llvm_ir.Constant(I32, 0x400000)), rounded)
        return b.trunc(b.lshr(rounded, llvm_ir.Constant(I32, 16)), I16)
    return value


def from_memory(ctx: ScalarContext, value, dtype: DType):
    """Memory form → register form."""
    b = ctx.builder
    if dtype is DType.PRED:
        return b.icmp_unsigned("!=", value, llvm_ir.Constant(value.type, 0))
    if dtype is DType.BF16:
        return b.bitcast(b.shl(b.zext(value, I32), llvm_ir.Constant(I32, 16)), F32)
    return value


def _copy(ctx, inst, args):
    return args[0]


def round_to_dtype(ctx: ScalarContext, value, dtype: DType):
    """`value`, an f32 register holding a wider result, rounded once to `dtype`'s values."""
    if dtype is DType.BF16:
        return from_memory(ctx, to_memory(ctx, value, dtype), dtype)
    return convert(ctx, value, DType.F32, dtype)


@dataclass(frozen=True)
class WideAccumulator:
    """A sum or product of f16/bf16 values kept in f32 and rounded once at the end, as XLA
    does: accumulated in f16, a sum of 5000 ones stops at 2048."""

    dtype: DType        # the values' and the result's type
    instruction: str    # "fadd" or "fmul"

    def widen(self, ctx: ScalarContext, value):
        return convert(ctx, value, self.dtype, DType.F32)

    def combine(self, ctx: ScalarContext, accumulator, value):
        # Reassociable, as the reducer's own add would be, so LLVM can vectorize it.
        return getattr(ctx.builder, self.instruction)(accumulator, value, flags=["reassoc"])

    def narrow(self, ctx: ScalarContext, value):
        return round_to_dtype(ctx, value, self.dtype)


_WIDENED_REDUCERS = {Opcode.ADD: "fadd", Opcode.MULTIPLY: "fmul"}


def wide_accumulator(reducer, dtype: DType):
    """A WideAccumulator when a reduction of `dtype` values by the scalar computation
    `reducer` is a plain f16/bf16 sum or product (ROOT add(p0, p1)), else None."""
    if dtype not in (DType.F16, DType.BF16):
        return None
    params, root = reducer.parameters, reducer.root
    if (len(params) != 2 or len(reducer.instructions) != 3 or root.opcode not in
            _WIDENED_REDUCERS or set(map(id, root.operands)) != set(map(id, params))
            or root.shape.dtype is not dtype):
        return None
    return WideAccumulator(dtype, _WIDENED_REDUCERS[root.opcode])


SCALAR_RULES: dict[Opcode, Rule] = {
    Opcode.NEGATE: _negate, Opcode.ABS: _abs, Opcode.SIGN: _sign,
    Opcode.EXPONENTIAL: _inline_or_libm(fast_math.exp, "exp", True),
    Opcode.EXPONENTIAL_MINUS_ONE: _libm("expm1"),
    Opcode.LOG: _inline_or_libm(fast_math.log_f32, "log", True, ("float",)),
    Opcode.LOG_PLUS_ONE: _libm("log1p"), Opcode.SQRT: _intrinsic("sqrt"),
    Opcode.RSQRT: _rsqrt, Opcode.CBRT: _libm("cbrt"),
    Opcode.TANH: _inline_or_libm(fast_math.tanh_f32, "tanh", False, ("float",)),
    Opcode.LOGISTIC: _logistic,
    Opcode.SINE: _inline_or_libm(fast_math.sin_f32, "sin", True, ("float",)),
    Opcode.COSINE: _inline_or_libm(fast_math.cos_f32, "cos", True, ("float",)),
    Opcode.TAN: _libm("tan"),
    Opcode.ERF: _inline_or_libm(fast_math.erf_f32, "erf", False, ("float",)),
    Opcode.FLOOR: _intrinsic("floor"), Opcode.CEIL: _intrinsic("ceil"),
    Opcode.ROUND_NEAREST_EVEN: _intrinsic("roundeven"), Opcode.ROUND_NEAREST_AFZ: _round_afz,
    Opcode.NOT: _not, Opcode.POPCNT: _bit_count("ctpop"), Opcode.CLZ: _bit_count("ctlz"),
    Opcode.IS_FINITE: _is_finite, Opcode.COPY: _copy,
    Opcode.ADD: _float_or_int("fadd", "add", "add"),
    Opcode.SUBTRACT: _float_or_int("fsub", "sub", "sub"),
    Opcode.MULTIPLY: _float_or_int("fmul", "mul", "mul"),
    Opcode.DIVIDE: _divide, Opcode.REMAINDER: _remainder, Opcode.POWER: _power,
    Opcode.MAXIMUM: _extremum(">"), Opcode.MINIMUM: _extremum("<"), Opcode.ATAN2: _atan2,
    Opcode.AND: lambda ctx, inst, args: ctx.builder.and_(*args),
    Opcode.OR: lambda ctx, inst, args: ctx.builder.or_(*args),
    Opcode.XOR: lambda ctx, inst, args: ctx.builder.xor(*args),
    Opcode.SHIFT_LEFT: _shift("left"), Opcode.SHIFT_RIGHT_LOGICAL: _shift("logical"),
    Opcode.SHIFT_RIGHT_ARITHMETIC: _shift("arithmetic"),
    Opcode.COMPARE: _compare, Opcode.SELECT: _select, Opcode.CLAMP: _clamp,
    Opcode.CONVERT: _convert, Opcode.BITCAST_CONVERT: _bitcast_convert,
}


def emit_scalar(ctx: ScalarContext, inst: Instruction, args: list):
    """The register value of elementwise `inst` applied to `args`."""
    # bf16 math is done in f32 registers and rounded once on the way to memory.
    return SCALAR_RULES[inst.opcode](ctx, inst, args)
