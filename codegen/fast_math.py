"""Vectorizable transcendental functions emitted inline (no libm calls in the loop).

A call to libm stops LLVM from vectorizing a loop; these polynomial versions (after Cephes
and fdlibm, reduced to straight-line code with selects) let a fused gelu or softmax run in
SIMD lanes. Accuracy is bounded in ulp against numpy/scipy by tests/codegen/test_fast_math.py,
under every CPU feature set. NaN, ±inf, overflow, underflow to subnormals and zero follow
IEEE as numpy does.

Written for throughput: polynomials are evaluated with `llvm.fmuladd` (one FMA per term
where the CPU has FMA), rounding to an integer uses the add-a-magic-constant trick (no
round or float→int conversion, whose NaN result would be poison), and special cases fall
out of clamping the input rather than from selects on the result.
"""
from __future__ import annotations

import functools
from fractions import Fraction

from llvmlite import ir as llvm_ir

from flowjit.codegen.llvm_types import F32, F64, I32, I64


def _c(t, v):
    return llvm_ir.Constant(t, v)


def _mul_add(ctx, a, b, c):
    """a * b + c, fused where the CPU has FMA (and two roundings where it has not)."""
    return ctx.call_intrinsic("fmuladd", a, b, c)


def _poly(ctx, x, coefficients):
    """Horner with one multiply-add per term: coefficients from the highest power down."""
    acc = _c(x.type, coefficients[0])
    for c in coefficients[1:]:
        acc = _mul_add(ctx, acc, x, _c(x.type, c))
    return acc


def _clamp(b, x, lo, hi):
    """x limited to [lo, hi]; NaN stays NaN (ordered compares are false for it)."""
    x = b.select(b.fcmp_ordered(">", x, _c(x.type, hi)), _c(x.type, hi), x)
    return b.select(b.fcmp_ordered("<", x, _c(x.type, lo)), _c(x.type, lo), x)


def _round_to_integer(ctx, x, scale):
    """(round(x * scale) as a float, the integer's low bits in an integer register): adding
    1.5 * 2**mantissa_bits rounds to an integer and leaves it in the low mantissa bits."""
    b = ctx.builder
    is_f32 = x.type == F32
    magic = 12582912.0 if is_f32 else 6755399441055744.0   # 1.5 * 2**23, 1.5 * 2**52
    shifted = _mul_add(ctx, x, _c(x.type, scale), _c(x.type, magic))
    as_float = b.fsub(shifted, _c(x.type, magic))
    return as_float, b.bitcast(shifted, I32 if is_f32 else I64)


def _ldexp(b, value, n_bits, is_f32: bool):
    """value * 2**n, n held in the low bits of `n_bits` (`_round_to_integer`), for n in
    [-2 * max_exponent, 2 * max_exponent]: two exponent-built factors, so that results that
    are subnormal are rounded once and results past the largest float become inf."""
    int_t, bias, shift = (I32, 127, 23) if is_f32 else (I64, 1023, 52)
    float_t = F32 if is_f32 else F64
    magic_bits = 0x4B400000 if is_f32 else 0x4338000000000000
    n = b.sub(n_bits, _c(int_t, magic_bits))
    half = b.ashr(n, _c(int_t, 1))
    rest = b.sub(n, half)

    def pow2(k):
        return b.bitcast(b.shl(b.add(k, _c(int_t, bias)), _c(int_t, shift)), float_t)
    return b.fmul(b.fmul(value, pow2(half)), pow2(rest))


# Inputs clamped to these give inf and 0 by overflow and underflow of the final scaling:
# exp(88.8) > FLT_MAX, exp(-104) < 2**-150 (half the smallest subnormal).
_EXP_RANGE = {F32: (-104.0, 88.8), F64: (-745.2, 709.8)}


# ln 2 = hi + lo, hi with few bits so that n * hi is exact.
_LN2_PARTS = {F32: (0.693359375, -2.12194440e-4),
              F64: (6.93145751953125e-1, 1.42860682030941723212e-6)}


def _reduce_by_ln2(ctx, x):
    """(r, n_bits) with x = n ln 2 + r, |r| <= ln(2) / 2, n = round(x / ln 2) in the low
    bits of `n_bits`."""
    hi, lo = _LN2_PARTS[x.type]
    n_float, n_bits = _round_to_integer(ctx, x, 1.4426950408889634073599)
    r = _mul_add(ctx, n_float, _c(x.type, -hi), x)
    return _mul_add(ctx, n_float, _c(x.type, -lo), r), n_bits


def _expm1_polynomial(ctx, r):
    """e**r - 1 for f32 |r| <= ln(2) / 2 (Cephes' expf polynomial), by Estrin's scheme:
    three independent pairs joined by r² and r⁴, a dependency chain half Horner's length
    (a fused gelu is otherwise bound by latency, not by the number of operations)."""
    b = ctx.builder
    t = r.type
    c5, c4, c3, c2, c1, c0 = [_c(t, v) for v in (1.9875691500e-4, 1.3981999507e-3,
                                                  8.3334519073e-3, 4.1665795894e-2,
                                                  1.6666665459e-1, 5.0000001201e-1)]
    z = b.fmul(r, r)
    low = _mul_add(ctx, c1, r, c0)
    middle = _mul_add(ctx, c3, r, c2)
    high = _mul_add(ctx, c5, r, c4)
    p = _mul_add(ctx, b.fmul(z, z), high, _mul_add(ctx, z, middle, low))
    return _mul_add(ctx, p, z, r)


def _exp_of_reduced_f64(ctx, r):
    """e**r for f64 |r| <= ln(2) / 2, a Padé form: 1 + 2 r P(r²) / (Q(r²) - r P(r²))."""
    b = ctx.builder
    t = F64
    z = b.fmul(r, r)
    px = b.fmul(r, _poly(ctx, z, [1.26177193074810590878e-4, 3.02994407707441961300e-2,
                                  9.99999999999999999910e-1]))
    q = _poly(ctx, z, [3.00198505138664455042e-6, 2.52448340349684104192e-3,
                       2.27265548208155028766e-1, 2.00000000000000000009e0])
    return b.fadd(_c(t, 1.0), b.fmul(_c(t, 2.0), b.fdiv(px, b.fsub(q, px))))


def exp(ctx, x):
    """e**x for every x: clamped so that overflow gives inf and underflow 0 (or a
    subnormal, rounded once)."""
    b = ctx.builder
    r, n_bits = _reduce_by_ln2(ctx, _clamp(b, x, *_EXP_RANGE[x.type]))
    if x.type == F32:
        y = b.fadd(_expm1_polynomial(ctx, r), _c(F32, 1.0))
    else:
        y = _exp_of_reduced_f64(ctx, r)
    return _ldexp(b, y, n_bits, x.type == F32)


def log_f32(ctx, x):
    """Natural log (f32): x = m * 2**e with m in [sqrt(.5), sqrt(2)), then fdlibm's form
    log(1 + f) = f - (f²/2 - s (f²/2 + R(s²))), s = f / (2 + f): a division and a short
    polynomial instead of a long one. Subnormals are scaled up first."""
    b = ctx.builder
    t = F32
    tiny = b.fcmp_ordered("<", x, _c(t, 1.1754943508222875e-38))
    scaled = b.select(tiny, b.fmul(x, _c(t, 8388608.0)), x)  # 2**23
    # Offsetting the bits by 1.0 - sqrt(.5) carries mantissas >= sqrt(.5) into the exponent
    # field: what is left of the mantissa, offset back, is m in [sqrt(.5), sqrt(2)).
    sqrt_half = 0x3F3504F3
    shifted = b.add(b.bitcast(scaled, I32), _c(I32, 0x3F800000 - sqrt_half))
    exponent = b.sub(b.lshr(shifted, _c(I32, 23)),
                     b.select(tiny, _c(I32, 127 + 23), _c(I32, 127)))
    m = b.bitcast(b.add(b.and_(shifted, _c(I32, 0x007FFFFF)), _c(I32, sqrt_half)), t)
    e = b.sitofp(exponent, t)
    f = b.fsub(m, _c(t, 1.0))
    s = b.fdiv(f, b.fadd(f, _c(t, 2.0)))
    z = b.fmul(s, s)
    # 2 atanh(s) = 2s + s (2/3 s² + 2/5 s⁴ + ...): R is the series past 2s, |s| < 0.172.
    r = b.fmul(z, _poly(ctx, z, [2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3]))
    half_f_squared = b.fmul(_c(t, 0.5), b.fmul(f, f))
    log_m = b.fsub(f, b.fsub(half_f_squared, b.fmul(s, b.fadd(half_f_squared, r))))
    hi, lo = _LN2_PARTS[F32]
    result = _mul_add(ctx, e, _c(t, hi), _mul_add(ctx, e, _c(t, lo), log_m))
    # inf and NaN are their own log (their exponent field is all ones), -inf is not.
    special = b.icmp_unsigned(">=", b.and_(b.bitcast(x, I32), _c(I32, 0x7FFFFFFF)),
                              _c(I32, 0x7F800000))
    result = b.select(special, x, result)
    # x86's default NaN (sign bit set), the one libm and numpy return for log(-1).
    default_nan = b.bitcast(_c(I32, 0xFFC00000), t)
    result = b.select(b.fcmp_ordered("<", x, _c(t, 0.0)), default_nan, result)
    return b.select(b.fcmp_ordered("==", x, _c(t, 0.0)), _c(t, float("-inf")), result)


def tanh_f32(ctx, x):
    """tanh (f32) as expm1(2|x|) / (expm1(2|x|) + 2), with x's sign; |x| is clamped at 9,
    where tanh rounds to 1.

    expm1 comes from exp's own reduction: e**2|x| = 2**n (1 + q) with q = e**r - 1
    accurate, so expm1 = 2**n q + (2**n - 1) has no cancellation near 0 and needs no
    separate small-x polynomial. Fewer multiplies than a rational approximation, which
    matters on CPUs where additions have pipes of their own."""
    b = ctx.builder
    t = F32
    ax = ctx.call_intrinsic("fabs", x)
    clamped = b.select(b.fcmp_ordered(">", ax, _c(t, 9.0)), _c(t, 9.0), ax)
    r, n_bits = _reduce_by_ln2(ctx, b.fadd(clamped, clamped))
    q = _expm1_polynomial(ctx, r)
    # 2**n from n's bits: (n_bits << 23) is n << 23, the magic constant's bits shift out.
    scale = b.bitcast(b.add(b.shl(n_bits, _c(I32, 23)), _c(I32, 127 << 23)), t)
    expm1 = _mul_add(ctx, scale, q, b.fsub(scale, _c(t, 1.0)))
    result = b.fdiv(expm1, b.fadd(expm1, _c(t, 2.0)))
    # tanh is odd: the result (>= 0) gets x's sign bit, -0 and NaN included; one xor where
    # copysign would clear and merge.
    sign = b.and_(b.bitcast(x, I32), _c(I32, -0x80000000))
    return b.bitcast(b.xor(b.bitcast(result, I32), sign), t)


def logistic(ctx, x):
    """1 / (1 + e**-x), as e**x / (1 + e**x) for negative x so it never overflows: one
    exp and one division either way."""
    b = ctx.builder
    one = _c(x.type, 1.0)
    e = exp(ctx, b.fneg(ctx.call_intrinsic("fabs", x)))
    numerator = b.select(b.fcmp_ordered("<", x, _c(x.type, 0.0)), e, one)
    return b.fdiv(numerator, b.fadd(one, e))


def erf_f32(ctx, x):
    """erf (f32): x P(x²) / Q(x²), the rational approximation XLA and Eigen use, on x
    clamped to ±3.832 (where erf rounds to ±1). Evaluated as x * (P / Q) so that tiny and
    subnormal x keep their precision."""
    b = ctx.builder
    clamped = _clamp(b, x, -3.832, 3.832)
    z = b.fmul(clamped, clamped)
    p = _poly(ctx, z, [-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                       -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                       -1.60960333262415e-02])
    q = _poly(ctx, z, [-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                       -7.37332916720468e-03, -1.42647390514189e-02])
    return b.fmul(clamped, b.fdiv(p, q))


# fdlibm's kernels for |r| <= pi/4, in double precision, made for results rounded to f32.
_SIN_KERNEL = [2.7183114939898219064e-06, -1.98393348360966317347e-4,
               8.3333293858894631756e-3, -1.66666666416265235595e-1]
_COS_KERNEL = [2.43904487962774090654e-05, -1.38867637746099294692e-3,
               4.16666233237390631894e-2, -4.99999997251031003120e-1]
_PI_OVER_2_HI, _PI_OVER_2_LO = 1.5707963267948966, 6.123233995736766e-17
# From 2**50 on, n = round(x * 2/pi) outgrows the rounding trick and the two-part pi/2.
_HUGE_EXPONENT = 127 + 50


@functools.lru_cache(maxsize=1)
def _two_pi_residues() -> tuple[list[float], list[float]]:
    """2**k mod 2 pi for k = 0..104 as double-doubles (hi list, lo list), from pi to 400
    bits by Machin's formula in integers; a NaN at k = 105 (where inf and NaN land)."""
    bits = 400
    one = 1 << bits

    def arctan_of_inverse(n: int) -> int:   # atan(1/n) * 2**bits
        total, power, k = 0, one // n, 0
        while power:
            total += -(power // (2 * k + 1)) if k % 2 else power // (2 * k + 1)
            power //= n * n
            k += 1
        return total
    two_pi = 2 * (16 * arctan_of_inverse(5) - 4 * arctan_of_inverse(239))
    his, los = [], []
    for k in range(105):
        residue = Fraction((one << k) % two_pi, one)
        his.append(float(residue))
        los.append(float(residue - Fraction(his[-1])))
    return his + [float("nan")], los + [0.0]


def _constant_table(ctx, name: str, values: list[float]):
    """A constant global array of doubles in the module being emitted (made once)."""
    existing = ctx.module.globals.get(name)
    if existing is not None:
        return existing
    array_type = llvm_ir.ArrayType(F64, len(values))
    table = llvm_ir.GlobalVariable(ctx.module, array_type, name)
    table.global_constant = True
    table.linkage = "internal"
    table.initializer = llvm_ir.Constant(array_type, values)
    return table


def _without_huge_multiples_of_2_pi(ctx, x):
    """(hi, lo), a double-double equal to f32 x modulo 2 pi where |x| >= 2**50 (x itself
    elsewhere): x = m * 2**k with a 24-bit integer m, and x mod 2 pi = m * (2**k mod 2 pi)
    with that residue from a table, multiplied exactly by FMA. inf and NaN become NaN."""
    b = ctx.builder
    bits = b.bitcast(x, I32)
    biased_exponent = b.and_(b.lshr(bits, _c(I32, 23)), _c(I32, 0xFF))
    huge = b.icmp_unsigned(">=", biased_exponent, _c(I32, _HUGE_EXPONENT))
    k = b.select(huge, b.sub(biased_exponent, _c(I32, 150)), _c(I32, 0))
    wide = b.fpext(x, F64)
    # x's significand as an integer, with x's sign: -(|x| mod 2 pi) is x mod 2 pi.
    significand = ctx.call_intrinsic("copysign", b.sitofp(
        b.or_(b.and_(bits, _c(I32, 0x7FFFFF)), _c(I32, 0x800000)), F64), wide)
    his, los = _two_pi_residues()
    residue = []
    for name, values in (("flowjit.two_pi_residues.hi", his), ("flowjit.two_pi_residues.lo", los)):
        table = _constant_table(ctx, name, values)
        residue.append(b.load(b.gep(table, [_c(I32, 0), k], inbounds=True)))
    product = b.fmul(significand, residue[0])
    error = ctx.call_intrinsic("fma", significand, residue[0], b.fneg(product))
    low = _mul_add(ctx, significand, residue[1], error)
    return b.select(huge, product, wide), b.select(huge, low, _c(F64, 0.0))


def _sin_cos_f32(ctx, x, quarter_turns: int):
    """sin(x + quarter_turns * pi/2) for f32 x, computed in double: r = x - n pi/2 with a
    two-part pi/2 and fused multiply-adds (exact products), after huge x are reduced by
    2 pi (`_without_huge_multiples_of_2_pi`); then sin(r) or cos(r) by the quadrant."""
    b = ctx.builder
    wide, wide_low = _without_huge_multiples_of_2_pi(ctx, x)
    n_float, n_bits = _round_to_integer(ctx, wide, 0.63661977236758134308)   # 2 / pi
    # llvm.fma, not fmuladd: the reduction needs the exact product even without FMA.
    r = ctx.call_intrinsic("fma", n_float, _c(F64, -_PI_OVER_2_HI), wide)
    r = ctx.call_intrinsic("fma", n_float, _c(F64, -_PI_OVER_2_LO), r)
    r = b.fadd(r, wide_low)
    z = b.fmul(r, r)
    sin_r = _mul_add(ctx, b.fmul(z, r), _poly(ctx, z, _SIN_KERNEL), r)
    cos_r = _mul_add(ctx, z, _poly(ctx, z, _COS_KERNEL), _c(F64, 1.0))
    quadrant = b.add(b.trunc(n_bits, I32), _c(I32, quarter_turns))
    odd = b.icmp_unsigned("!=", b.and_(quadrant, _c(I32, 1)), _c(I32, 0))
    value = b.select(odd, cos_r, sin_r)
    # Quadrants 2 and 3 are the negatives of 0 and 1: flip the sign bit.
    sign = b.shl(b.zext(b.and_(quadrant, _c(I32, 2)), I64), _c(I64, 62))
    value = b.bitcast(b.xor(b.bitcast(value, I64), sign), F64)
    return b.fptrunc(value, F32)


def sin_f32(ctx, x):
    """sin (f32), see `_sin_cos_f32`."""
    return _sin_cos_f32(ctx, x, 0)


def cos_f32(ctx, x):
    """cos (f32) = sin(x + pi/2), see `_sin_cos_f32`."""
    return _sin_cos_f32(ctx, x, 1)
