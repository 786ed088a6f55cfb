"""Reference semantics of reduce-window and select-and-scatter, in numpy.

Written from XLA's definition, independent of the code generator: each output position
folds the operand elements under its window, in window order, starting from the init value;
taps that land in padding or in the holes of a base dilation are skipped (so a non-identity
init value counts once, as in XLA). Computations are run on whole arrays at once when they
are made of elementwise ops only, element by element otherwise.
"""
from __future__ import annotations

import itertools
from functools import partial

import numpy as np

from flowjit.ir.module import Computation, Instruction
from flowjit.ir.ops import FusionRole, spec
from flowjit.ir.windows import output_dims

_PASS_THROUGH = ("parameter", "tuple", "get-tuple-element")


def _elementwise_only(comp: Computation) -> bool:
    return all(i.opcode in _PASS_THROUGH or spec(i.opcode).role is FusionRole.ELEMENTWISE
               or (i.opcode == "constant" and i.shape.rank == 0) for i in comp.instructions)


def apply_computation(comp: Computation, args: list) -> list[np.ndarray]:
    """`comp` (a computation over scalars) applied at every position of the broadcast
    `args`; one array per result."""
    from flowjit.ir.reference import evaluate_computation
    if _elementwise_only(comp):
        out = evaluate_computation(comp, args)
        out = list(out) if isinstance(out, tuple) else [out]
        shape = np.broadcast(*args).shape
        return [np.broadcast_to(o, shape) for o in out]
    shape = np.broadcast(*args).shape
    flat = [np.broadcast_to(a, shape).reshape(-1) for a in args]
    results = None
    for i in range(int(np.prod(shape, dtype=np.int64))):
        out = evaluate_computation(comp, [f[i] for f in flat])
        out = list(out) if isinstance(out, tuple) else [out]
        if results is None:
            results = [np.empty(len(flat[0]), dtype=np.asarray(o).dtype) for o in out]
        for r, o in zip(results, out):
            r[i] = o
    return [r.reshape(shape) for r in results]


def _taps(operand_dims: tuple, window: tuple):
    """For each window tap, in row-major order over the window: (index, valid), where
    `index` selects the operand element under the tap at every output position (an open
    mesh, clipped into range) and `valid` says where that element exists."""
    out = output_dims(operand_dims, window)
    for tap in itertools.product(*(range(w.size) for w in window)):
        index, valid = [], np.ones(out, dtype=bool)
        for d, (k, w, size) in enumerate(zip(tap, window, operand_dims)):
            shape = [1] * len(out)
            shape[d] = out[d]
            base = np.arange(out[d]) * w.stride + k * w.window_dilation - w.padding_low
            position = base // w.base_dilation
            ok = (base >= 0) & (base % w.base_dilation == 0) & (position < size)
            index.append(np.clip(position, 0, max(size - 1, 0)).reshape(shape))
            valid &= ok.reshape(shape)
        yield tuple(index), valid


def reduce_window(inst: Instruction, args: list):
    n = len(args) // 2
    operands, inits = args[:n], args[n:]
    window = inst.attrs["window"]
    out = output_dims(operands[0].shape, window)
    comp = inst.calls["to_apply"]
    result_dtypes = [init.dtype for init in inits]
    fold = partial(apply_computation, comp)
    from flowjit.ir.reference import simple_reducer
    kind = simple_reducer(comp) if n == 1 else None
    if (kind in ("add", "multiply") and operands[0].dtype.itemsize < 4
            and operands[0].dtype.kind in "fV" and operands[0].dtype != np.bool_):
        # f16/bf16 sums and products accumulate in f32 and round once, as XLA's do.
        operands, inits = [operands[0].astype(np.float32)], [inits[0].astype(np.float32)]
        ufunc = np.add if kind == "add" else np.multiply
        fold = lambda args: [ufunc(*args)]  # noqa: E731
    accumulators = [np.full(out, init, dtype=init.dtype) for init in inits]
    if operands[0].size and accumulators[0].size:
        for index, valid in _taps(operands[0].shape, window):
            values = [x[index] for x in operands]
            folded = fold(accumulators + values)
            accumulators = [np.where(valid, f, a).astype(a.dtype)
                            for f, a in zip(folded, accumulators)]
    accumulators = [a.astype(d) for a, d in zip(accumulators, result_dtypes)]
    return accumulators[0] if n == 1 else tuple(accumulators)


def select_and_scatter(inst: Instruction, args: list) -> np.ndarray:
    operand, source, init = args
    window = inst.attrs["window"]
    result = np.full(operand.size, init, dtype=operand.dtype)
    if operand.size == 0 or source.size == 0:
        return result.reshape(operand.shape)
    # Per source element: the operand element its window selects (the first valid one
    # unless select(chosen, later) is false for a later one, as XLA folds it).
    chosen = np.zeros(source.shape, dtype=operand.dtype)
    where = np.zeros(source.shape, dtype=np.int64)
    found = np.zeros(source.shape, dtype=bool)
    flat_index = np.arange(operand.size).reshape(operand.shape)
    for index, valid in _taps(operand.shape, window):
        value = operand[index]
        (keep,) = apply_computation(inst.calls["select"], [chosen, value])
        take = valid & (~found | ~keep.astype(bool))
        chosen = np.where(take, value, chosen)
        where = np.where(take, flat_index[index], where)
        found |= valid
    targets, updates = where[found], source[found]   # row-major over the source
    scatter = inst.calls["scatter"]
    from flowjit.ir.reference import simple_reducer
    if simple_reducer(scatter) == "add":
        np.add.at(result, targets, updates)
    else:
        for t, u in zip(targets, updates):
            (result[t],) = apply_computation(scatter, [result[t], u])
    return result.reshape(operand.shape)
