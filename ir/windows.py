"""Window arithmetic shared by reduce-window and select-and-scatter (XLA's window_util).

A window slides over an operand that is first dilated (`base_dilation - 1` holes between
elements), then padded (`padding_low/high`, negative crops); the window's own taps are
`window_dilation` apart. These helpers say how many positions a window takes, which operand
element a tap lands on, and whether a reduce-window is a prefix scan (JAX's cumsum), which
the CPU backend runs in one pass instead of one window per output element.
"""
from __future__ import annotations

from typing import Optional

from flowjit.ir.attributes import WindowDim


def dilated_bound(bound: int, dilation: int) -> int:
    """The extent of `bound` elements spread `dilation` apart (XLA's DilatedBound)."""
    return 0 if bound == 0 else (bound - 1) * dilation + 1


def strided_bound(bound: int, window_size: int, stride: int) -> int:
    """How many windows of `window_size` fit in `bound` at `stride` (XLA's StridedBound)."""
    if window_size > bound:
        return 0
    return (bound - window_size) // stride + 1


def padded_base(size: int, dim: WindowDim) -> int:
    """The operand extent a window slides over: dilated, then padded."""
    return dilated_bound(size, dim.base_dilation) + dim.padding_low + dim.padding_high


def output_size(size: int, dim: WindowDim) -> int:
    """Window positions along one dimension of an operand of `size` elements."""
    return strided_bound(padded_base(size, dim), dim.dilated_size, dim.stride)


def window_problem(dims: tuple, window: tuple) -> Optional[str]:
    """Why `window` cannot slide over an operand of `dims` (None when it can)."""
    if len(window) != len(dims):
        return f"window has {len(window)} dimensions, the operand {len(dims)}"
    for d, (size, w) in enumerate(zip(dims, window)):
        if w.size < 1:
            return f"window size {w.size} in dimension {d} is not positive"
        if w.stride < 1:
            return f"window stride {w.stride} in dimension {d} is not positive"
        if w.base_dilation < 1 or w.window_dilation < 1:
            return f"window dilation in dimension {d} is below 1"
        if w.reversal:
            return f"window reversal (dimension {d}) is for convolutions only"
        if padded_base(size, w) < 0:
            return (f"padding {w.padding_low}_{w.padding_high} in dimension {d} crops more "
                    f"than the operand's {size} elements")
    return None


def output_dims(dims: tuple, window: tuple) -> tuple[int, ...]:
    """The result dims of a window sliding over `dims` (checked by `window_problem` first)."""
    return tuple(output_size(size, w) for size, w in zip(dims, window))


def is_trivial(dim: WindowDim) -> bool:
    """A window dimension that passes the index through (size 1, stride 1, no pad)."""
    return (dim.size == 1 and dim.stride == 1 and dim.padding_low == 0
            and dim.padding_high == 0 and dim.base_dilation == 1)


def prefix_scan_axis(dims: tuple, window: tuple) -> Optional[tuple[int, bool]]:
    """(axis, reverse) when the window makes each output the fold of all elements up to
    (reverse: from) its own position along one axis — JAX's lowering of cumsum, cummax... —
    and passes every other dimension through; otherwise None."""
    found = None
    for d, (size, w) in enumerate(zip(dims, window)):
        if is_trivial(w):
            continue
        n = size
        if (found is not None or n < 2 or w.size != n or w.stride != 1
                or w.base_dilation != 1 or w.window_dilation != 1):
            return None
        if (w.padding_low, w.padding_high) == (n - 1, 0):
            found = (d, False)
        elif (w.padding_low, w.padding_high) == (0, n - 1):
            found = (d, True)
        else:
            return None
    return found


def is_prefix_scan(inst) -> bool:
    """Whether `inst` is a single-operand reduce-window that is a prefix scan."""
    return (inst.opcode == "reduce-window" and len(inst.operands) == 2
            and prefix_scan_axis(inst.operands[0].shape.dims, inst.attrs["window"]) is not None)


# A minor dimension at least this long makes a pooling kernel worth it: its loop over that
# dimension is contiguous and vectorizes.
POOLING_MIN_MINOR = 4


def is_pooling(inst) -> bool:
    """Whether `inst` is a single-operand reduce-window whose window leaves the minor
    (contiguous) dimension alone: the CPU backend runs it with the window taps outside a
    vectorized loop over that dimension (NHWC pooling: over the channels)."""
    if inst.opcode != "reduce-window" or len(inst.operands) != 2 or is_prefix_scan(inst):
        return False
    dims = inst.operands[0].shape.dims
    return (len(dims) >= 2 and dims[-1] >= POOLING_MIN_MINOR
            and is_trivial(inst.attrs["window"][-1])
            and not all(is_trivial(w) for w in inst.attrs["window"]))


def runs_as_own_kernel(inst) -> bool:
    """A reduce-window that codegen runs with its own loop structure (a prefix scan or a
    pooling): producers fuse into it, it does not fuse into its consumers."""
    return is_prefix_scan(inst) or is_pooling(inst)
