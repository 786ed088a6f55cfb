"""Vectorizable transcendental functions emitted inline (no libm calls in the loop).

A call to libm stops LLVM from vectorizing a loop; these polynomial versions (after Cephes,
reduced to straight-line code with selects) let a fused gelu or softmax run in SIMD lanes.
Accuracy is bounded in ulp against numpy by tests/codegen/test_fast_math.py. NaN, ±inf,
overflow, underflow to subnormals and zero follow IEEE as numpy does.
"""
from __future__ import annotations

from llvmlite import ir as llvm_ir

from flowjit.codegen.llvm_types import F32, F64, I32, I64


def _c(t, v):
    return llvm_ir.Constant(t, v)


def _poly(b, x, coefficients):
    """Horner: coefficients from the highest power down."""
    acc = _c(x.type, coefficients[0])
    for c in coefficients[1:]:
        acc = b.fadd(b.fmul(acc, x), _c(x.type, c))
    return acc


def _ldexp(b, value, n, is_f32: bool):
    """value * 2**n for integer n in a wide range, via two exponent-built factors (so
    results that are subnormal come out right)."""
    int_t, bias, shift = (I32, 127, 23) if is_f32 else (I64, 1023, 52)
    float_t = F32 if is_f32 else F64
    half = b.ashr(n, _c(int_t, 1))
    rest = b.sub(n, half)

    def pow2(k):
        return b.bitcast(b.shl(b.add(k, _c(int_t, bias)), _c(int_t, shift)), float_t)
    return b.fmul(b.fmul(value, pow2(half)), pow2(rest))


def exp(ctx, x):
    """e**x: n = round(x / ln 2), r = x - n ln 2, e**r by a polynomial, times 2**n."""
    b = ctx.builder
    is_f32 = x.type == F32
    t = x.type
    int_t = I32 if is_f32 else I64
    if is_f32:
        hi, lo, log2e = 0.693359375, -2.12194440e-4, 1.44269504088896341
        overflow, underflow = 88.72283905206835, -103.97208
    else:
        hi, lo, log2e = 6.93145751953125e-1, 1.42860682030941723212e-6, 1.4426950408889634073599
        overflow, underflow = 709.782712893384, -745.1332191019412
    clamped = b.select(b.fcmp_ordered(">", x, _c(t, overflow)), _c(t, overflow), x)
    clamped = b.select(b.fcmp_ordered("<", clamped, _c(t, underflow)), _c(t, underflow),
                       clamped)
    n_float = ctx.call_intrinsic("roundeven", b.fmul(clamped, _c(t, log2e)))
    r = b.fsub(b.fsub(clamped, b.fmul(n_float, _c(t, hi))), b.fmul(n_float, _c(t, lo)))
    if is_f32:
        z = b.fmul(r, r)
        p = _poly(b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                         1.6666665459e-1, 5.0000001201e-1])
        y = b.fadd(b.fadd(b.fmul(p, z), r), _c(t, 1.0))
    else:
        z = b.fmul(r, r)
        px = b.fmul(r, _poly(b, z, [1.26177193074810590878e-4, 3.02994407707441961300e-2,
                                    9.99999999999999999910e-1]))
        q = _poly(b, z, [3.00198505138664455042e-6, 2.52448340349684104192e-3,
                         2.27265548208155028766e-1, 2.00000000000000000009e0])
        y = b.fadd(_c(t, 1.0), b.fmul(_c(t, 2.0), b.fdiv(px, b.fsub(q, px))))
    n = b.fptosi(n_float, int_t)
    result = _ldexp(b, y, n, is_f32)
    result = b.select(b.fcmp_ordered(">", x, _c(t, overflow)), _c(t, float("inf")), result)
    result = b.select(b.fcmp_ordered("<", x, _c(t, underflow)), _c(t, 0.0), result)
    return b.select(b.fcmp_unordered("uno", x, x), x, result)


def log_f32(ctx, x):
    """Natural log (f32): x = m * 2**e with m in [sqrt(.5), sqrt(2)), log1p(m-1) by a
    polynomial; subnormals are scaled up first."""
    b = ctx.builder
    t = F32
    tiny = b.fcmp_ordered("<", x, _c(t, 1.1754943508222875e-38))
    scaled = b.select(tiny, b.fmul(x, _c(t, 8388608.0)), x)  # 2**23
    bits = b.bitcast(scaled, I32)
    exponent = b.sub(b.and_(b.lshr(bits, _c(I32, 23)), _c(I32, 0xFF)), _c(I32, 126))
    exponent = b.select(tiny, b.sub(exponent, _c(I32, 23)), exponent)
    mantissa = b.bitcast(b.or_(b.and_(bits, _c(I32, 0x807FFFFF)), _c(I32, 0x3F000000)), t)
    small = b.fcmp_ordered("<", mantissa, _c(t, 0.707106781186547524))
    e = b.sitofp(b.select(small, b.sub(exponent, _c(I32, 1)), exponent), t)
    m = b.select(small, b.fsub(b.fadd(mantissa, mantissa), _c(t, 1.0)),
                 b.fsub(mantissa, _c(t, 1.0)))
    z = b.fmul(m, m)
    p = _poly(b, m, [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                     1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                     3.3333331174e-1])
    y = b.fmul(b.fmul(m, z), p)
    y = b.fadd(y, b.fmul(e, _c(t, -2.12194440e-4)))
    y = b.fsub(y, b.fmul(z, _c(t, 0.5)))
    result = b.fadd(b.fadd(m, y), b.fmul(e, _c(t, 0.693359375)))
    result = b.select(b.fcmp_ordered("==", x, _c(t, 0.0)), _c(t, float("-inf")), result)
    # x86's default NaN (sign bit set), the one libm and numpy return for log(-1).
    default_nan = b.bitcast(_c(I32, 0xFFC00000), t)
    result = b.select(b.fcmp_ordered("<", x, _c(t, 0.0)), default_nan, result)
    result = b.select(b.fcmp_ordered("==", x, _c(t, float("inf"))), x, result)
    return b.select(b.fcmp_unordered("uno", x, x), x, result)


def tanh_f32(ctx, x):
    """tanh (f32): an odd polynomial for |x| < 0.625, 1 - 2/(e**2|x| + 1) beyond."""
    b = ctx.builder
    t = F32
    ax = ctx.call_intrinsic("fabs", x)
    z = b.fmul(x, x)
    p = _poly(b, z, [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                     1.33314422036e-1, -3.33332819422e-1])
    small = b.fadd(b.fmul(b.fmul(p, z), x), x)
    e = exp(ctx, b.fadd(ax, ax))
    large = b.fsub(_c(t, 1.0), b.fdiv(_c(t, 2.0), b.fadd(e, _c(t, 1.0))))
    result = b.select(b.fcmp_ordered("<", ax, _c(t, 0.625)), small, large)
    # tanh is odd: the sign is x's, -0 included (the polynomial's x + p*x^3 gives +0 there).
    return ctx.call_intrinsic("copysign", result, x)


def logistic(ctx, x):
    """1 / (1 + e**-x), as e**x / (1 + e**x) for negative x so it never overflows."""
    b = ctx.builder
    one = _c(x.type, 1.0)
    e = exp(ctx, b.fneg(ctx.call_intrinsic("fabs", x)))
    denominator = b.fadd(one, e)
    positive = b.fdiv(one, denominator)
    negative = b.fdiv(e, denominator)
    return b.select(b.fcmp_ordered("<", x, _c(x.type, 0.0)), negative, positive)
