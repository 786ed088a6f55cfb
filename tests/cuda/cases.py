"""Hand-written modules, one or more per GPU kernel kind, with arguments to run them on.

Fusions are written out (not left to the fusion pass) so each case keeps its kernel kind.
"""
from __future__ import annotations

import glob
import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures")

_ADD = """
%add_f32 {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}
%max_f32 {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %m = f32[] maximum(%a, %b)
}
"""

CASES: dict[str, tuple[str, str]] = {}   # name -> (kernel kind expected, HLO text)

CASES["elementwise_transcendentals"] = ("loop", """HloModule elementwise
%fused {
  %x = f32[1000] parameter(0)
  %y = f32[1000] parameter(1)
  %e = f32[1000] exponential(%x)
  %t = f32[1000] tanh(%y)
  %ab = f32[1000] abs(%y)
  %l = f32[1000] log-plus-one(%ab)
  %erf = f32[1000] erf(%x)
  %sin = f32[1000] sine(%y)
  %cos = f32[1000] cosine(%x)
  %at = f32[1000] atan2(%x, %y)
  %em = f32[1000] exponential-minus-one(%y)
  %cb = f32[1000] cbrt(%x)
  %lg = f32[1000] logistic(%y)
  %pw = f32[1000] power(%ab, %x)
  %rm = f32[1000] remainder(%x, %y)
  %lo = f32[1000] log(%ab)
  %a1 = f32[1000] add(%e, %t)
  %a2 = f32[1000] add(%a1, %l)
  %a3 = f32[1000] add(%a2, %erf)
  %a4 = f32[1000] add(%a3, %sin)
  %a5 = f32[1000] add(%a4, %cos)
  %a6 = f32[1000] add(%a5, %at)
  %a7 = f32[1000] add(%a6, %em)
  %a8 = f32[1000] add(%a7, %cb)
  %a9 = f32[1000] add(%a8, %lg)
  %a10 = f32[1000] add(%a9, %pw)
  %a11 = f32[1000] add(%a10, %rm)
  ROOT %a12 = f32[1000] add(%a11, %lo)
}
ENTRY %main {
  %p0 = f32[1000] parameter(0)
  %p1 = f32[1000] parameter(1)
  ROOT %f = f32[1000] fusion(%p0, %p1), kind=kLoop, calls=%fused
}
""")

CASES["elementwise_f64"] = ("loop", """HloModule elementwise_f64
%fused {
  %x = f64[3,50] parameter(0)
  %e = f64[3,50] exponential(%x)
  %t = f64[3,50] tanh(%x)
  %r = f64[3,50] remainder(%e, %t)
  ROOT %m = f64[3,50] multiply(%r, %x)
}
ENTRY %main {
  %p0 = f64[3,50] parameter(0)
  ROOT %f = f64[3,50] fusion(%p0), kind=kLoop, calls=%fused
}
""")

CASES["elementwise_f16"] = ("loop", """HloModule elementwise_f16
%fused {
  %x = f16[7,33] parameter(0)
  %y = f16[7,33] parameter(1)
  %e = f16[7,33] exponential(%x)
  %t = f16[7,33] tanh(%y)
  %m = f16[7,33] maximum(%e, %t)
  %d = f16[7,33] divide(%m, %e)
  ROOT %c = f32[7,33] convert(%d)
}
ENTRY %main {
  %p0 = f16[7,33] parameter(0)
  %p1 = f16[7,33] parameter(1)
  ROOT %f = f32[7,33] fusion(%p0, %p1), kind=kLoop, calls=%fused
}
""")

CASES["row_reduction"] = ("row-reduction", "HloModule row_reduction\n" + _ADD + """
ENTRY %main {
  %x = f32[6,300] parameter(0)
  %zero = f32[] constant(0)
  ROOT %r = f32[6] reduce(%x, %zero), dimensions={1}, to_apply=%add_f32
}
""")

CASES["reduction_middle_dims"] = ("row-reduction", "HloModule reduction_middle\n" + _ADD + """
ENTRY %main {
  %x = f32[5,40,7] parameter(0)
  %low = f32[] constant(-inf)
  ROOT %r = f32[40] reduce(%x, %low), dimensions={0,2}, to_apply=%max_f32
}
""")

CASES["reduction_to_scalar"] = ("row-reduction", "HloModule reduction_to_scalar\n" + _ADD + """
ENTRY %main {
  %x = f32[1500] parameter(0)
  %init = f32[] constant(1.5)
  ROOT %r = f32[] reduce(%x, %init), dimensions={0}, to_apply=%add_f32
}
""")

CASES["reduction_short_rows"] = ("row-reduction", "HloModule reduction_short_rows\n" + _ADD
                                 + """
ENTRY %main {
  %x = f32[9,40] parameter(0)
  %init = f32[] constant(2)
  ROOT %r = f32[9] reduce(%x, %init), dimensions={1}, to_apply=%add_f32
}
""")

CASES["argmax"] = ("row-reduction", """HloModule argmax
%argmax {
  %v0 = f32[] parameter(0)
  %i0 = s32[] parameter(1)
  %v1 = f32[] parameter(2)
  %i1 = s32[] parameter(3)
  %gt = pred[] compare(%v0, %v1), direction=GT
  %eq = pred[] compare(%v0, %v1), direction=EQ
  %lt = pred[] compare(%i0, %i1), direction=LT
  %tie = pred[] and(%eq, %lt)
  %first = pred[] or(%gt, %tie)
  %v = f32[] select(%first, %v0, %v1)
  %i = s32[] select(%first, %i0, %i1)
  ROOT %t = (f32[], s32[]) tuple(%v, %i)
}
%fused {
  %x = f32[20,100] parameter(0)
  %iota = s32[20,100] iota(), iota_dimension=1
  %low = f32[] constant(-inf)
  %zero = s32[] constant(0)
  ROOT %r = (f32[20], s32[20]) reduce(%x, %iota, %low, %zero), dimensions={1}, to_apply=%argmax
}
ENTRY %main {
  %p0 = f32[20,100] parameter(0)
  ROOT %f = (f32[20], s32[20]) fusion(%p0), kind=kInput, calls=%fused
}
""")

CASES["softmax"] = ("row-reduction", "HloModule softmax\n" + _ADD + """
%fused {
  %x = f32[7,300] parameter(0)
  %low = f32[] constant(-inf)
  %max = f32[7] reduce(%x, %low), dimensions={1}, to_apply=%max_f32
  %bmax = f32[7,300] broadcast(%max), dimensions={0}
  %shifted = f32[7,300] subtract(%x, %bmax)
  %e = f32[7,300] exponential(%shifted)
  %zero = f32[] constant(0)
  %sum = f32[7] reduce(%e, %zero), dimensions={1}, to_apply=%add_f32
  %bsum = f32[7,300] broadcast(%sum), dimensions={0}
  ROOT %out = f32[7,300] divide(%e, %bsum)
}
ENTRY %main {
  %p0 = f32[7,300] parameter(0)
  ROOT %f = f32[7,300] fusion(%p0), kind=kInput, calls=%fused
}
""")

CASES["dot_epilogue"] = ("dot", """HloModule dot_epilogue
%fused {
  %a = f32[130,70] parameter(0)
  %b = f32[70,90] parameter(1)
  %bias = f32[90] parameter(2)
  %d = f32[130,90] dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %bb = f32[130,90] broadcast(%bias), dimensions={1}
  %s = f32[130,90] add(%d, %bb)
  %zero = f32[] constant(0)
  %z = f32[130,90] broadcast(%zero), dimensions={}
  ROOT %relu = f32[130,90] maximum(%s, %z)
}
ENTRY %main {
  %p0 = f32[130,70] parameter(0)
  %p1 = f32[70,90] parameter(1)
  %p2 = f32[90] parameter(2)
  ROOT %f = f32[130,90] fusion(%p0, %p1, %p2), kind=kOutput, calls=%fused
}
""")

CASES["dot_batched_transposed"] = ("dot", """HloModule dot_batched
ENTRY %main {
  %a = f32[3,20,50] parameter(0)
  %b = f32[3,40,20] parameter(1)
  ROOT %d = f32[3,50,40] dot(%a, %b), lhs_batch_dims={0}, rhs_batch_dims={0},
      lhs_contracting_dims={1}, rhs_contracting_dims={2}
}
""")

CASES["dot_matrix_vector_f64"] = ("dot", """HloModule dot_vector
ENTRY %main {
  %a = f64[77,30] parameter(0)
  %v = f64[30] parameter(1)
  ROOT %d = f64[77] dot(%a, %v), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}
""")

CASES["dot_int"] = ("dot", """HloModule dot_int
ENTRY %main {
  %a = s32[12,19] parameter(0)
  %b = s32[19,21] parameter(1)
  ROOT %d = s32[12,21] dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}
""")

CASES["dot_f16"] = ("dot", """HloModule dot_f16
ENTRY %main {
  %a = f16[16,24] parameter(0)
  %b = f16[24,8] parameter(1)
  ROOT %d = f16[16,8] dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}
""")

CASES["scatter_multiply"] = ("scatter", """HloModule scatter_multiply
%mul {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %m = f32[] multiply(%a, %b)
}
ENTRY %main {
  %x = f32[6,4] parameter(0)
  %idx = s32[9,1] parameter(1)
  %v = f32[9,4] parameter(2)
  ROOT %s = f32[6,4] scatter(%x, %idx, %v), update_window_dims={1},
      inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1,
      to_apply=%mul
}
""")

CASES["scatter_f16_sequential"] = ("scatter", """HloModule scatter_f16
%add {
  %a = f16[] parameter(0)
  %b = f16[] parameter(1)
  ROOT %s = f16[] add(%a, %b)
}
ENTRY %main {
  %x = f16[6,4] parameter(0)
  %idx = s32[9,1] parameter(1)
  %v = f16[9,4] parameter(2)
  ROOT %s = f16[6,4] scatter(%x, %idx, %v), update_window_dims={1},
      inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1,
      to_apply=%add
}
""")

CASES["pad_concat"] = ("loop", """HloModule pad_concat
%fused {
  %x = f32[30,20] parameter(0)
  %y = f32[30,5] parameter(1)
  %zero = f32[] constant(0)
  %p = f32[34,44] pad(%x, %zero), padding=2_2x1_4_1
  %s = f32[30,44] slice(%p), slice={[2:32], [0:44]}
  ROOT %c = f32[30,49] concatenate(%s, %y), dimensions={1}
}
ENTRY %main {
  %p0 = f32[30,20] parameter(0)
  %p1 = f32[30,5] parameter(1)
  ROOT %f = f32[30,49] fusion(%p0, %p1), kind=kLoop, calls=%fused
}
""")

CASES["integer_ops"] = ("loop", """HloModule integer_ops
%fused {
  %x = s32[500] parameter(0)
  %y = s32[500] parameter(1)
  %d = s32[500] divide(%x, %y)
  %r = s32[500] remainder(%x, %y)
  %sh = s32[500] shift-right-arithmetic(%x, %y)
  %u = u8[500] convert(%x)
  %uu = u8[500] multiply(%u, %u)
  %back = s32[500] convert(%uu)
  %a = s32[500] add(%d, %r)
  %b = s32[500] xor(%a, %sh)
  %pc = s32[500] popcnt(%x)
  %lz = s32[500] clz(%y)
  %bits = s32[500] add(%pc, %lz)
  %w = u8[500] clz(%u)
  %wide = s32[500] convert(%w)
  %more = s32[500] add(%bits, %wide)
  %c0 = s32[500] add(%b, %back)
  ROOT %c = s32[500] add(%c0, %more)
}
ENTRY %main {
  %p0 = s32[500] parameter(0)
  %p1 = s32[500] parameter(1)
  ROOT %f = s32[500] fusion(%p0, %p1), kind=kLoop, calls=%fused
}
""")

# Batching dims that are not leading and pair in a different order: operand dims 1 and 3
# with index dims 1 and 0 (take_along_axis and vmap write the simple leading case).
CASES["gather_batching_dims"] = ("loop", """HloModule gather_batching_dims
ENTRY %main {
  %x = f32[4,3,6,2] parameter(0)
  %idx = s32[2,3,5,2] parameter(1)
  ROOT %g = f32[2,2,3,5] gather(%x, %idx), offset_dims={1}, collapsed_slice_dims={2},
      start_index_map={2,0}, operand_batching_dims={1,3}, start_indices_batching_dims={1,0},
      index_vector_dim=3, slice_sizes={2,1,1,1}
}
""")

CASES["scatter_batching_dims"] = ("scatter", """HloModule scatter_batching_dims
%add {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}
ENTRY %main {
  %x = f32[3,7,4] parameter(0)
  %idx = s32[5,3] parameter(1)
  %v = f32[5,3,2] parameter(2)
  ROOT %s = f32[3,7,4] scatter(%x, %idx, %v), update_window_dims={2},
      inserted_window_dims={1}, scatter_dims_to_operand_dims={1}, input_batching_dims={0},
      scatter_indices_batching_dims={1}, index_vector_dim=2, to_apply=%add
}
""")


def fixture_texts() -> dict[str, str]:
    """The JAX-exported fixtures, by name (not the decompositions: LAPACK runs on the host,
    and CUDA has no host steps for it yet)."""
    texts = {os.path.basename(p)[:-4]: open(p).read()
             for p in sorted(glob.glob(os.path.join(FIXTURES, "*.hlo")))}
    return {name: text for name, text in texts.items()
            if 'custom_call_target="lapack_' not in text}


def fixture_args(name: str) -> list[np.ndarray]:
    data = np.load(os.path.join(FIXTURES, f"{name}.npz"))
    return [data[f"arg{k}"] for k in range(len([f for f in data.files if f.startswith("arg")]))]


def random_args(module, seed: int = 0) -> list[np.ndarray]:
    """Arguments for a case: normal floats, small integers, in-range (and some out-of-range)
    scatter indices."""
    rng = np.random.default_rng(seed)
    args = []
    for p in module.entry.parameters:
        dtype = p.shape.dtype.to_numpy()
        dims = p.shape.dims
        if p.name == "idx":
            args.append(rng.integers(-1, 7, dims).astype(dtype))
        elif np.issubdtype(dtype, np.floating):
            args.append(rng.standard_normal(dims).astype(dtype))
        else:
            args.append(rng.integers(-50, 50, dims).astype(dtype))
    return args
