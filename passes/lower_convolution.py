"""lower-convolution: each `convolution` becomes ops every backend compiles (im2col).

The input goes channels-last ([batch, spatial..., feature]) and is padded once, its lhs
dilation as interior padding; each window tap is one strided slice of it, and the taps,
concatenated along the features, are the patch matrix [batch, out spatial..., taps *
features]. One `dot` with the kernel (reshaped to [taps * features, out features]) makes
the result; feature or batch groups become the dot's batch dimension. A 1x1 convolution
without padding or stride is that dot alone. Fusion then builds the patches in one loop
kernel and the dot goes to BLAS.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from flowjit.ir.builder import NameTable, scalar_computation
from flowjit.ir.module import Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import infer_shape
from flowjit.ir.rewrite import rewrite_computation
from flowjit.ir.shapes import ArrayShape


class _Emit:
    """Appends new instructions (shapes inferred) that stand for one convolution."""

    def __init__(self, names: NameTable, like: Instruction):
        self.names, self.like = names, like
        self.added: list[Instruction] = []

    def __call__(self, opcode: str, *operands, shape=None, **attrs) -> Instruction:
        result = infer_shape(opcode, [o.shape for o in operands], attrs, {}, shape)
        inst = Instruction(self.names.fresh(opcode.replace("-", "_")), opcode, result,
                           list(operands), attrs, metadata=dict(self.like.metadata))
        self.added.append(inst)
        return inst

    def constant(self, value, dtype) -> Instruction:
        literal = np.array(value, dtype=dtype.to_numpy())
        inst = Instruction(self.names.fresh("constant"), "constant", ArrayShape(dtype, ()),
                           literal=literal, metadata=dict(self.like.metadata))
        self.added.append(inst)
        return inst

    def reduce_sum(self, x, axis: int, add) -> Instruction:
        zero = self.constant(0, x.shape.dtype)
        dims = tuple(d for k, d in enumerate(x.shape.dims) if k != axis)
        inst = Instruction(self.names.fresh("reduce"), "reduce", ArrayShape(x.shape.dtype, dims),
                           [x, zero], {"dimensions": (axis,)}, {"to_apply": add},
                           metadata=dict(self.like.metadata))
        self.added.append(inst)
        return inst

    def transpose(self, x, perm) -> Instruction:
        perm = tuple(perm)
        return x if perm == tuple(range(len(perm))) else self("transpose", x, dimensions=perm)

    def reshape(self, x, dims) -> Instruction:
        dims = tuple(dims)
        return x if dims == x.shape.dims else self(
            "reshape", x, shape=ArrayShape(x.shape.dtype, dims))


def _patches(emit: _Emit, x, dims, out_spatial, squeeze: bool = False):
    """[batch, out spatial..., taps * features]: the input under each window tap, tap-major
    (x is channels-last). Built from one strided slice per tap, or, where there are fewer
    output positions than taps (a kernel's gradient: a window as large as the image), one
    window-sized slice per output position. With `squeeze` (a batch of one, tap-major), the
    batch dim is left out: [out spatial..., taps * features]."""
    taps = math.prod(d.size for d in dims)
    positions = math.prod(out_spatial)
    if squeeze:
        assert x.shape.dims[0] == 1 and taps <= positions
        x = emit.reshape(x, x.shape.dims[1:])
    lead = [] if squeeze else [(0, 0, 0)]
    rank = x.shape.rank
    config = lead + [(max(d.padding_low, 0), max(d.padding_high, 0),
                      d.base_dilation - 1) for d in dims] + [(0, 0, 0)]
    if any(c != (0, 0, 0) for c in config):
        zero = emit.constant(0, x.shape.dtype)
        x = emit("pad", x, zero, padding=tuple(config))
    crop = [max(-d.padding_low, 0) for d in dims]    # negative padding crops
    pieces = []
    if taps <= positions:
        for tap in itertools.product(*(range(d.size) for d in dims)):
            ranges = [(start, start + (out - 1) * d.stride + 1, d.stride)
                      for start, d, out in zip((t * d.window_dilation + c for t, d, c in
                                                zip(tap, dims, crop)), dims, out_spatial)]
            pieces.append(_strided(emit, x, ranges, batched=not squeeze))
        return _concatenate(emit, pieces, rank - 1)
    batch, features = x.shape.dims[0], x.shape.dims[-1]
    for position in itertools.product(*(range(out) for out in out_spatial)):
        ranges = [(o * d.stride + c, o * d.stride + c + (d.size - 1) * d.window_dilation + 1,
                   d.window_dilation) for o, d, c in zip(position, dims, crop)]
        window_values = _strided(emit, x, ranges)           # [N, window..., C]
        pieces.append(emit.reshape(window_values, (batch, 1, taps * features)))
    stacked = _concatenate(emit, pieces, 1)
    return emit.reshape(stacked, [batch] + list(out_spatial) + [taps * features])


# At most this many operands per concatenate: its elemental code tests the pieces in turn,
# so 49 taps (a 7x7 window) as a tree of concatenates cost about 12 tests per element, not
# 49 (measured: a 7x7/2 convolution of 224x224x3 in a third of the time).
CONCAT_FAN_IN = 4


def _concatenate(emit: _Emit, pieces, axis: int):
    """pieces joined along `axis`, as a tree of concatenates of few operands each."""
    while len(pieces) > CONCAT_FAN_IN:
        width = math.ceil(len(pieces) / math.ceil(len(pieces) / CONCAT_FAN_IN))
        pieces = [group[0] if len(group) == 1 else emit("concatenate", *group,
                                                         dimensions=(axis,))
                  for group in (pieces[i:i + width] for i in range(0, len(pieces), width))]
    return pieces[0] if len(pieces) == 1 else emit("concatenate", *pieces, dimensions=(axis,))


def _strided(emit: _Emit, x, spatial_ranges, batched: bool = True):
    """x[:, ranges..., :] (x[ranges..., :] without a batch dim; the slice left out where it
    is all of x)."""
    lead = [(0, x.shape.dims[0], 1)] if batched else []
    ranges = lead + list(spatial_ranges) + [(0, x.shape.dims[-1], 1)]
    if all(r[:2] == (0, size) and (r[2] == 1 or size == 1)
           for r, size in zip(ranges, x.shape.dims)):
        return x
    return emit("slice", x, slice=tuple(ranges))


def _depthwise(emit: _Emit, patches, w, out_spatial, groups: int, add):
    """One input and one output feature per group: out[..., g] = sum over taps of
    patches[..., tap, g] * kernel[tap, g], a multiply and a reduce that fuse into one loop
    kernel; a dot per group would be many products of a handful of taps (measured: half the
    time at 8x56x56x64; with two outputs per group the dots were faster)."""
    spatial = len(out_spatial)
    batch, taps, per_group = patches.shape.dims[0], w.shape.dims[0], w.shape.dims[-1] // groups
    full = [batch] + list(out_spatial) + [taps, groups, per_group]
    dtype = patches.shape.dtype
    shape = ArrayShape(dtype, tuple(full))
    split = emit.reshape(patches, full[:-1])
    spread = emit("broadcast", split, shape=shape, dimensions=tuple(range(spatial + 3)))
    kernel = emit.reshape(w, (taps, groups, per_group))
    kernel = emit("broadcast", kernel, shape=shape, dimensions=(spatial + 1, spatial + 2,
                                                                spatial + 3))
    products = emit("multiply", spread, kernel)
    summed = emit.reduce_sum(products, spatial + 1, add(dtype))
    return emit.reshape(summed, [batch] + list(out_spatial) + [groups * per_group])


def _lower(inst: Instruction, names: NameTable, uses, add=None):
    labels = inst.attrs["dim_labels"]
    dims = inst.attrs.get("window", ())
    feature_groups = inst.attrs.get("feature_group_count", 1)
    batch_groups = inst.attrs.get("batch_group_count", 1)
    emit = _Emit(names, inst)
    lhs, rhs = inst.operands
    dtype = inst.shape.dtype
    spatial = len(dims)
    out_batch, out_features = inst.shape.dims[labels.out[0]], inst.shape.dims[labels.out[1]]
    out_spatial = [inst.shape.dims[d] for d in labels.out[2:]]
    # Channels-last order of the result: where each of its dims is in `inst`.
    result_order = [labels.out[0]] + list(labels.out[2:]) + [labels.out[1]]
    if inst.shape.size == 0 or lhs.shape.size == 0 or rhs.shape.size == 0:
        zero = emit.constant(0, dtype)
        return emit.added + [emit("broadcast", zero, shape=inst.shape, dimensions=())]
    x = emit.transpose(lhs, [labels.lhs[0]] + list(labels.lhs[2:]) + [labels.lhs[1]])
    w = rhs
    flipped = tuple(labels.rhs[2 + k] for k, d in enumerate(dims) if d.reversal)
    if flipped:
        w = emit("reverse", w, dimensions=flipped)
    if lhs.shape.dtype != dtype:   # a wider result type: convolve in it
        x = emit("convert", x, shape=ArrayShape(dtype, x.shape.dims))
        w = emit("convert", w, shape=ArrayShape(dtype, w.shape.dims))
    w = emit.transpose(w, list(labels.rhs[2:]) + [labels.rhs[1], labels.rhs[0]])
    taps = math.prod(d.size for d in dims)
    kernel_in = w.shape.dims[-2]
    groups = max(feature_groups, batch_groups)
    depthwise = feature_groups == out_features and kernel_in == 1 and add is not None
    # A batch of one goes into the product as [o..., K]: the output's first dim is then a
    # spatial one, which the runtime splits across threads (a [1, ...] result stays on one).
    squeeze = (x.shape.dims[0] == 1 and groups == 1 and not depthwise
               and taps <= math.prod(out_spatial))
    patches = _patches(emit, x, dims, out_spatial, squeeze)   # [N, o..., taps * C]
    batch = 1 if squeeze else patches.shape.dims[0]
    if squeeze:
        kernel = emit.reshape(w, (taps * kernel_in, out_features))
        flat = emit("dot", patches, kernel, lhs_contracting_dims=(spatial,),
                    rhs_contracting_dims=(0,))
        product = emit.reshape(flat, [1] + list(flat.shape.dims))
    elif depthwise:
        product = _depthwise(emit, patches, emit.reshape(w, (taps, out_features)),
                             out_spatial, groups, add)
    elif groups == 1:
        kernel = emit.reshape(w, (taps * kernel_in, out_features))
        product = emit("dot", patches, kernel, lhs_contracting_dims=(spatial + 1,),
                       rhs_contracting_dims=(0,))
    else:
        per_group = out_features // groups
        if feature_groups > 1:   # [G, N, o..., taps * C/G]
            split = emit.reshape(patches, [batch] + out_spatial + [taps, groups, kernel_in])
            moved = emit.transpose(split, [spatial + 2] + list(range(spatial + 2))
                                   + [spatial + 3])
            patches = emit.reshape(moved, [groups, batch] + out_spatial + [taps * kernel_in])
            kernel = emit.reshape(w, (taps * kernel_in, groups, per_group))
        else:                    # [G, N/G, o..., taps * C]
            patches = emit.reshape(patches, [groups, batch // groups] + out_spatial
                                   + [patches.shape.dims[-1]])
            kernel = emit.reshape(w, (taps * kernel_in, groups, per_group))
        kernel = emit.transpose(kernel, (1, 0, 2))      # [G, K, O/G]
        grouped = emit("dot", patches, kernel, lhs_batch_dims=(0,), rhs_batch_dims=(0,),
                       lhs_contracting_dims=(spatial + 2,), rhs_contracting_dims=(1,))
        moved = emit.transpose(grouped, list(range(1, spatial + 2)) + [0, spatial + 2])
        product = emit.reshape(moved, [out_batch] + out_spatial + [out_features])
    result = emit.transpose(product, [result_order.index(d) for d in range(inst.shape.rank)])
    return [i for i in emit.added if i is not result] + [result]   # the result replaces inst


def run(module: Module) -> bool:
    """Rewrite every convolution into pad, strided slices, concatenate and one dot."""
    names = NameTable.for_module(module)
    adders: dict = {}

    def add(dtype):
        """The scalar add computation a depthwise convolution's reduce calls (one per type)."""
        if dtype not in adders:
            adders[dtype] = module.add_computation(scalar_computation("add", dtype, names))
        return adders[dtype]

    def rule(inst, names, uses):
        return _lower(inst, names, uses, add)
    changed = False
    for comp in list(module.computations):
        changed |= rewrite_computation(comp, {Opcode.CONVOLUTION: rule}, names)
    return changed
