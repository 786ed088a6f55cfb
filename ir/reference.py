"""Reference semantics of every op, in numpy: the oracle for tests, constant folding,
eager execution and `flowjit run --check`.

`REFERENCE[opcode](inst, args)` returns the value of `inst` given its operands' values.
The semantics follow XLA's (integer division truncates, x/0 = -1, x%0 = x, float→int
conversion saturates and maps NaN to 0, out-of-range dynamic-slice starts are clamped).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np

from flowjit.ir import lapack_reference, window_reference
from flowjit.ir.dtypes import DType, from_numpy
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.opcodes import Opcode
from flowjit.ir.shape_rules import dilated_size
from flowjit.ir.shapes import ArrayShape
from flowjit.ir.sorting import sort_key, total_order_keys

Value = object  # np.ndarray, or a tuple of values
Rule = Callable[[Instruction, list], Value]


def _np(shape: ArrayShape) -> np.dtype:
    return shape.dtype.to_numpy()


def _kind(dtype: np.dtype) -> str:
    """numpy's dtype.kind, except that bf16 (kind 'V' in ml_dtypes) counts as a float."""
    return "f" if dtype.kind == "V" and from_numpy(dtype).is_float else dtype.kind


def _unary(fn: Callable) -> Rule:
    def rule(inst, args):
        return np.asarray(fn(args[0])).astype(_np(inst.shape), copy=False)
    return rule


def _binary(fn: Callable) -> Rule:
    def rule(inst, args):
        return np.asarray(fn(args[0], args[1])).astype(_np(inst.shape), copy=False)
    return rule


def _via_f64(fn: Callable) -> Callable:
    """Evaluate a float function in float64 (fine for f16/bf16/f32) and round once."""
    def wrapped(x):
        if x.dtype == np.float64:
            return fn(x)
        return fn(x.astype(np.float64))
    return wrapped


_erf = np.frompyfunc(math.erf, 1, 1)


def _erf_f64(x):
    return np.asarray(_erf(x), dtype=np.float64)  # frompyfunc gives a float on 0-d input


def _logistic(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _round_afz(x):
    # x - trunc(x) is exact, unlike x + 0.5 (which rounds 0.49999997 and 2**23 + 1 up);
    # where() keeps the sign of -0.0 and of values in (-0.5, 0).
    whole = np.trunc(x)
    return np.where(np.abs(x - whole) >= 0.5, whole + np.sign(x), whole)


def _sign(x):
    return np.where(x == 0, x, np.sign(x))  # sign(-0.0) is -0.0 in XLA, 0.0 in numpy


def _divide(a, b):
    if _kind(a.dtype) == "f":
        return a / b
    if a.dtype.kind == "b":
        raise TypeError("divide is not defined on pred")
    zero = b == 0
    safe_b = np.where(zero, 1, b)
    if a.dtype.kind == "i":
        overflow = (a == np.iinfo(a.dtype).min) & (safe_b == -1)
        safe_b = np.where(overflow, 1, safe_b)
        # Widen before abs: abs(int8(-128)) is -128, which would sign-extend into uint64.
        q = (np.abs(a.astype(np.int64)).astype(np.uint64)
             // np.abs(safe_b.astype(np.int64)).astype(np.uint64))
        q = np.where((a < 0) != (safe_b < 0), -q.astype(np.int64), q.astype(np.int64))
        q = q.astype(a.dtype)
        return np.where(zero, np.array(-1, a.dtype), q)
    q = a // safe_b
    return np.where(zero, np.array(-1).astype(a.dtype), q)


def _remainder(a, b):
    if _kind(a.dtype) == "f":
        return np.fmod(a, b)
    zero = b == 0
    safe_b = np.where(zero, 1, b)
    if a.dtype.kind == "i":
        safe_b = np.where(safe_b == -1, 1, safe_b)
        r = np.fmod(a, safe_b)
    else:
        r = a % safe_b
    return np.where(zero, a, r)


def _power(a, b):
    if _kind(a.dtype) == "f":
        return np.power(a, b)
    neg = b < 0
    result = np.power(a, np.where(neg, 0, b))
    one = np.ones_like(a)
    if a.dtype.kind == "i":
        odd = (b % 2) != 0
        neg_result = np.where(a == 1, one, np.where(a == -1, np.where(odd, -one, one), 0))
    else:
        neg_result = np.where(a == 1, one, 0)
    return np.where(neg, neg_result, result)


def _as_unsigned(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}")


def _population_count(a: np.ndarray) -> np.ndarray:
    """Set bits of each element's two's-complement bits (XLA's popcnt)."""
    bits, unsigned = a.dtype.itemsize * 8, _as_unsigned(a)
    count = np.zeros(a.shape, dtype=unsigned.dtype)
    for k in range(bits):
        count += (unsigned >> np.asarray(k, unsigned.dtype)) & np.asarray(1, unsigned.dtype)
    return count.astype(a.dtype)


def _count_leading_zeros(a: np.ndarray) -> np.ndarray:
    """Zero bits above each element's highest set bit; all of them for 0 (XLA's clz)."""
    bits, unsigned = a.dtype.itemsize * 8, _as_unsigned(a)
    count = np.full(a.shape, bits, dtype=np.int64)
    for k in range(bits):
        count = np.where((unsigned >> np.asarray(k, unsigned.dtype)) != 0, bits - 1 - k, count)
    return count.astype(a.dtype)


def _shift(kind: str) -> Callable:
    def fn(a, b):
        bits = a.dtype.itemsize * 8
        unsigned = a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "i" else a
        amount = np.where((b < 0) | (b >= bits), 0, b).astype(unsigned.dtype)
        big = (b < 0) | (b >= bits)
        if kind == "left":
            out = (unsigned << amount).view(a.dtype)
            return np.where(big, 0, out)
        if kind == "logical":
            out = (unsigned >> amount).view(a.dtype)
            return np.where(big, 0, out)
        # Arithmetic shifts read the bits as signed, on unsigned types too (LLVM's ashr).
        signed = a.view(f"i{a.dtype.itemsize}")
        out = signed >> amount.astype(signed.dtype)
        return np.where(big, np.where(signed < 0, -1, 0).astype(signed.dtype), out).view(a.dtype)
    return fn


def _convert(inst, args):
    (x,) = args
    target = inst.shape.dtype
    dtype = _np(inst.shape)
    if target is DType.PRED:
        return (x != 0).astype(np.bool_)
    if target.is_int and _kind(x.dtype) == "f":
        # Saturate, and send NaN to 0, as XLA does (numpy leaves these undefined).
        info = np.iinfo(dtype)
        x64 = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0))
        too_big = x64 >= float(info.max)
        too_small = x64 <= float(info.min)
        safe = np.where(too_big | too_small, 0, x64).astype(dtype)
        return np.where(too_big, info.max, np.where(too_small, info.min, safe)).astype(dtype)
    return x.astype(dtype)


def _bitcast_convert(inst, args):
    return np.ascontiguousarray(args[0]).view(_np(inst.shape)).reshape(inst.shape.dims)


_COMPARE = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
            "GT": np.greater, "GE": np.greater_equal}


def _compare(inst, args):
    if inst.attrs.get("type") == "TOTALORDER" and _kind(args[0].dtype) == "f":
        args = [total_order_keys(a) for a in args]   # NaNs and -0.0 take their places
    return _COMPARE[inst.attrs["direction"]](args[0], args[1])


def _select(inst, args):
    return np.where(args[0], args[1], args[2]).astype(_np(inst.shape))


def _clamp(inst, args):
    lo, x, hi = args
    return np.minimum(np.maximum(x, lo), hi).astype(_np(inst.shape))


def _constant(inst, args):
    return np.asarray(inst.literal, dtype=_np(inst.shape)).reshape(inst.shape.dims)


def _iota(inst, args):
    shape = inst.shape
    dim = inst.attrs["iota_dimension"]
    ramp = np.arange(shape.dims[dim]).reshape([-1 if i == dim else 1 for i in range(shape.rank)])
    return np.broadcast_to(ramp, shape.dims).astype(_np(shape))


def _broadcast(inst, args):
    (x,) = args
    dims = inst.attrs["dimensions"]
    out_rank = inst.shape.rank
    order = np.argsort(dims)
    x = np.transpose(x, order) if x.ndim else x
    sorted_dims = [dims[i] for i in order]
    view = x.reshape([x.shape[sorted_dims.index(d)] if d in sorted_dims else 1
                      for d in range(out_rank)])
    return np.broadcast_to(view, inst.shape.dims).copy()


def _reshape(inst, args):
    return args[0].reshape(inst.shape.dims)


def _transpose(inst, args):
    return np.transpose(args[0], inst.attrs["dimensions"]).copy()


def _slice(inst, args):
    return args[0][tuple(slice(a, b, c) for a, b, c in inst.attrs["slice"])].copy()


def _clamped_starts(starts: Sequence, dims: Sequence[int], sizes: Sequence[int]) -> list[int]:
    return [int(min(max(int(s), 0), d - z)) for s, d, z in zip(starts, dims, sizes)]


def _dynamic_slice(inst, args):
    x, *starts = args
    sizes = inst.attrs["dynamic_slice_sizes"]
    begin = _clamped_starts(starts, x.shape, sizes)
    return x[tuple(slice(b, b + z) for b, z in zip(begin, sizes))].copy()


def _dynamic_update_slice(inst, args):
    x, update, *starts = args
    begin = _clamped_starts(starts, x.shape, update.shape)
    out = x.copy()
    out[tuple(slice(b, b + z) for b, z in zip(begin, update.shape))] = update
    return out


def _concatenate(inst, args):
    return np.concatenate(args, axis=inst.attrs["dimensions"][0])


def _pad(inst, args):
    x, value = args
    out = x
    for axis, (lo, hi, interior) in enumerate(inst.attrs["padding"]):
        n = out.shape[axis]
        if interior and n > 1:
            shape = list(out.shape)
            shape[axis] = n + (n - 1) * interior
            spread = np.full(shape, value, dtype=out.dtype)
            index = [slice(None)] * out.ndim
            index[axis] = slice(None, None, interior + 1)
            spread[tuple(index)] = out
            out = spread
        for amount, at_start in ((lo, True), (hi, False)):
            if amount > 0:
                shape = list(out.shape)
                shape[axis] = amount
                block = np.full(shape, value, dtype=out.dtype)
                out = np.concatenate([block, out] if at_start else [out, block], axis=axis)
            elif amount < 0:
                index = [slice(None)] * out.ndim
                index[axis] = slice(-amount, None) if at_start else slice(None,
                                                                          out.shape[axis] + amount)
                out = out[tuple(index)]
    return np.ascontiguousarray(out).reshape(inst.shape.dims)


def _reverse(inst, args):
    return np.flip(args[0], axis=tuple(inst.attrs["dimensions"])).copy()


# Reducers numpy can run directly: root opcode of a two-parameter computation.
# `and`/`or` are bitwise on integers (and the same as logical on pred).
_UFUNC_REDUCERS = {"add": np.add, "multiply": np.multiply, "maximum": np.maximum,
                   "minimum": np.minimum, "and": np.bitwise_and, "or": np.bitwise_or}


def simple_reducer(comp: Computation):
    """The opcode if `comp` is `ROOT op(p0, p1)` over its two scalar parameters, else None."""
    root = comp.root
    params = comp.parameters
    if (len(params) == 2 and root.opcode in _UFUNC_REDUCERS and len(comp.instructions) == 3
            and set(map(id, root.operands)) == set(map(id, params))):
        return root.opcode
    return None


def _reduce(inst, args):
    n = len(args) // 2
    inputs, inits = args[:n], args[n:]
    dims = tuple(inst.attrs["dimensions"])
    comp = inst.calls["to_apply"]
    kind = simple_reducer(comp) if n == 1 else None
    if kind is not None:
        x = inputs[0]
        ufunc = _UFUNC_REDUCERS[kind]
        init = inits[0][()]
        if x.dtype == np.bool_ and kind in ("add", "multiply"):
            ufunc = np.logical_or if kind == "add" else np.logical_and
        elif kind in ("add", "multiply") and _kind(x.dtype) == "f" and x.dtype.itemsize < 4:
            # f16/bf16 sums and products accumulate in f32 and round once, as XLA does.
            x, init = x.astype(np.float32), np.float32(init)
        reduced = ufunc.reduce(x, axis=dims, initial=init) if x.size or dims else x
        if kind in ("maximum", "minimum") and _kind(x.dtype) == "f" and x.size:
            nan = np.isnan(x).any(axis=dims)
            reduced = np.where(nan, np.nan, reduced)
        return np.asarray(reduced).astype(_np(inst.shape))
    # Generic reducer: fold each kept position's elements in order.
    kept = [d for d in range(inputs[0].ndim) if d not in dims]
    # Row-major order over the reduced dims (sorted), the order the CPU kernels use too.
    moved = [np.transpose(x, kept + sorted(dims)) for x in inputs]
    out_dims = [inputs[0].shape[d] for d in kept]
    row_length = int(np.prod([inputs[0].shape[d] for d in dims], dtype=np.int64))
    flat = [m.reshape(int(np.prod(out_dims, dtype=np.int64)), row_length) for m in moved]
    results = [np.empty(int(np.prod(out_dims, dtype=np.int64)), dtype=i.dtype) for i in inits]
    for row in range(flat[0].shape[0]):
        acc = [np.asarray(i) for i in inits]
        for col in range(flat[0].shape[1]):
            out = evaluate_computation(comp, acc + [f[row, col] for f in flat])
            acc = list(out) if isinstance(out, tuple) else [out]
        for r, a in zip(results, acc):
            r[row] = a
    shaped = [r.reshape(out_dims) for r in results]
    return shaped[0] if n == 1 else tuple(shaped)


def _dot(inst, args):
    lhs, rhs = args
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    lhs_sub = [next(letters) for _ in range(lhs.ndim)]
    rhs_sub = [next(letters) for _ in range(rhs.ndim)]
    lb, rb = inst.attrs.get("lhs_batch_dims", ()), inst.attrs.get("rhs_batch_dims", ())
    lc, rc = inst.attrs.get("lhs_contracting_dims", ()), inst.attrs.get("rhs_contracting_dims", ())
    for a, b in list(zip(lb, rb)) + list(zip(lc, rc)):
        rhs_sub[b] = lhs_sub[a]
    out = [lhs_sub[i] for i in lb]
    out += [s for i, s in enumerate(lhs_sub) if i not in lb and i not in lc]
    out += [s for i, s in enumerate(rhs_sub) if i not in rb and i not in rc]
    spec = f"{''.join(lhs_sub)},{''.join(rhs_sub)}->{''.join(out)}"
    if lhs.dtype == np.bool_:
        result = np.einsum(spec, lhs.astype(np.int64), rhs.astype(np.int64)) != 0
    elif lhs.dtype.kind in "iu":
        # Wrapping 64-bit arithmetic, then truncation, is exact for any integer result type
        # (s8 x s8 -> s32 included); einsum in s8 would wrap at 8 bits.
        result = np.einsum(spec, lhs.astype(np.int64), rhs.astype(np.int64))
    elif _kind(lhs.dtype) == "f" and lhs.dtype.itemsize < 4:
        result = np.einsum(spec, lhs.astype(np.float32), rhs.astype(np.float32))
    else:
        result = np.einsum(spec, lhs, rhs)
    return np.asarray(result).astype(_np(inst.shape))


def _gather(inst, args):
    operand, indices = args
    a = inst.attrs
    ivd = a["index_vector_dim"]
    slice_sizes = a["slice_sizes"]
    collapsed = set(a.get("collapsed_slice_dims", ())) | set(a.get("operand_batching_dims", ()))
    if ivd == indices.ndim:
        indices = indices[..., None]
    idx = np.moveaxis(indices, ivd, -1).astype(np.int64)
    batch_shape = idx.shape[:-1]
    idx = idx.reshape(-1, idx.shape[-1])
    starts = np.zeros((idx.shape[0], operand.ndim), dtype=np.int64)
    for k, d in enumerate(a["start_index_map"]):
        starts[:, d] = np.clip(idx[:, k], 0, operand.shape[d] - slice_sizes[d])
    # A batching dim of the operand starts at the position along its paired index dim.
    index_batch_dims = [d for d in range(indices.ndim) if d != ivd]
    # (a scalar index, batch shape (), is one position: reshape cannot infer -1 from 0)
    coords = np.indices(batch_shape).reshape(len(batch_shape), idx.shape[0])
    for obd, ibd in zip(a.get("operand_batching_dims", ()),
                        a.get("start_indices_batching_dims", ())):
        starts[:, obd] = coords[index_batch_dims.index(ibd)]
    window = np.indices(slice_sizes).reshape(operand.ndim,
                                             math.prod(slice_sizes))          # [rank, W]
    full = starts[:, :, None] + window[None, :, :]                       # [B, rank, W]
    values = operand[tuple(full[:, d, :] for d in range(operand.ndim))]  # [B, W]
    values = values.reshape((len(starts),) + tuple(slice_sizes))
    keep = [0] + [1 + d for d in range(operand.ndim) if d not in collapsed]
    values = values.reshape([values.shape[i] for i in keep])
    values = values.reshape(batch_shape + values.shape[1:])
    # Put offset dims where offset_dims says; batch dims fill the rest in order.
    nb = len(batch_shape)
    rank = values.ndim
    offset_dims = list(a["offset_dims"])
    batch_positions = [d for d in range(rank) if d not in offset_dims]
    source = [0] * rank
    for i, d in enumerate(batch_positions):
        source[d] = i
    for i, d in enumerate(offset_dims):
        source[d] = nb + i
    # (ascontiguousarray makes a rank-0 result rank 1: the reshape undoes that.)
    return np.ascontiguousarray(np.transpose(values, source)).astype(_np(inst.shape)).reshape(
        inst.shape.dims)


def _scatter(inst, args):
    operand, indices, updates = args
    a = inst.attrs
    ivd = a["index_vector_dim"]
    window_dims = list(a["update_window_dims"])
    operand_batching = a.get("input_batching_dims", ())
    inserted = set(a.get("inserted_window_dims", ())) | set(operand_batching)
    to_operand = a["scatter_dims_to_operand_dims"]
    if ivd == indices.ndim:
        indices = indices[..., None]
    moved = np.moveaxis(indices, ivd, -1).astype(np.int64)
    idx = moved.reshape(-1, indices.shape[ivd])
    # A batching dim of the operand starts at the position along its paired index dim.
    index_batch_dims = [d for d in range(indices.ndim) if d != ivd]
    coords = np.indices(moved.shape[:-1]).reshape(len(index_batch_dims),
                                                  math.prod(moved.shape[:-1]))
    batch_starts = [(obd, coords[index_batch_dims.index(ibd)]) for obd, ibd in
                    zip(operand_batching, a.get("scatter_indices_batching_dims", ()))]
    scatter_dims = [d for d in range(updates.ndim) if d not in window_dims]
    upd = np.transpose(updates, scatter_dims + window_dims)
    window_shape = upd.shape[len(scatter_dims):]
    upd = upd.reshape(len(idx), int(np.prod(window_shape, dtype=np.int64)))
    # Window dim k of the update maps to the k-th operand dim not inserted (nor batching).
    operand_window_dims = [d for d in range(operand.ndim) if d not in inserted]
    full_window = [1] * operand.ndim
    for k, d in enumerate(operand_window_dims):
        full_window[d] = window_shape[k]
    window = np.indices(full_window).reshape(operand.ndim, math.prod(full_window))
    out = operand.copy()
    comp = inst.calls["to_apply"]
    kind = simple_reducer(comp)
    second_param = comp.parameters[1] if len(comp.parameters) == 2 else None
    for b in range(len(idx)):
        start = np.zeros(operand.ndim, dtype=np.int64)
        for k, d in enumerate(to_operand):
            start[d] = idx[b, k]
        for obd, coord in batch_starts:
            start[obd] = coord[b]
        pos = start[:, None] + window
        inside = all(0 <= start[d] and start[d] + full_window[d] <= operand.shape[d]
                     for d in range(operand.ndim))
        if not inside:
            continue  # XLA skips windows that are out of bounds.
        target = tuple(pos[d] for d in range(operand.ndim))
        if kind is not None:
            _UFUNC_REDUCERS[kind].at(out, target, upd[b])
        elif comp.root is second_param:
            out[target] = upd[b]
        else:
            for j, t in enumerate(zip(*target)):
                out[t] = evaluate_computation(comp, [out[t], upd[b, j]])
    return out


def _tuple(inst, args):
    return tuple(args)


def _get_tuple_element(inst, args):
    return args[0][inst.attrs["index"]]


def _call(attr: str) -> Rule:
    def rule(inst, args):
        return evaluate_computation(inst.calls[attr], args)
    return rule


def _while(inst, args):
    (state,) = args
    while bool(evaluate_computation(inst.calls["condition"], [state])):
        state = evaluate_computation(inst.calls["body"], [state])
    return state


def _conditional(inst, args):
    selector, *operands = args
    branches = inst.calls.get("branch_computations")
    if branches is None:
        branches = [inst.calls["true_computation"], inst.calls["false_computation"]]
        index = 0 if bool(selector) else 1
    else:
        index = int(selector)
        if not 0 <= index < len(branches):
            index = len(branches) - 1
    return evaluate_computation(branches[index], [operands[index]])


def _custom_call(inst, args):
    target = inst.attrs["custom_call_target"]
    if target == "stop_gradient":
        return args[0]
    if (target in ("flowjit.custom_vjp", "flowjit.custom_jvp")
            or target.startswith("flowjit.checkpoint.")):   # the primal computation
        return evaluate_computation(inst.calls["called_computations"][0], args)
    lapack = lapack_reference.lapack_custom_call(inst, args)
    if lapack is not None:
        return lapack
    raise NotImplementedError(f"custom-call target {target!r} has no reference semantics")


def _keys_of(key: Instruction, operand: np.ndarray) -> np.ndarray:
    """A keyed comparator's key (elementwise in one parameter) on a whole array at once."""
    values: dict[int, Value] = {}

    def value(inst):
        if id(inst) not in values:
            if inst.opcode == "parameter":
                values[id(inst)] = operand
            else:
                values[id(inst)] = evaluate_instruction(inst, [value(o) for o in inst.operands])
        return values[id(inst)]
    return np.broadcast_to(value(key), operand.shape)


def _sort_order(inst, args) -> np.ndarray:
    """The stable permutation that sorts each row of `args` along the sorted dimension."""
    (axis,) = inst.attrs["dimensions"]
    comp = inst.calls["to_apply"]
    keyed = sort_key(comp)
    if keyed is not None:
        keys = _keys_of(keyed.key, args[keyed.operand])
        order = total_order_keys(keys) if keyed.total_order else keys
        if keyed.descending:
            order = ~total_order_keys(order)   # reverses the order, ties kept in place
        elif order.dtype.kind == "f":
            order = np.where(np.isnan(order), np.inf, order)  # not LT anything: placed last
        return np.argsort(order, axis=axis, kind="stable")
    # Any other comparator: a stable sort calling it on each pair, row by row.
    moved = [np.moveaxis(a, axis, -1) for a in args]
    rows = [m.reshape(-1, m.shape[-1]) for m in moved]
    order = np.empty(rows[0].shape, dtype=np.int64)

    def less(row, a, b):
        pairs = [v for r in rows for v in (r[row, a], r[row, b])]
        return bool(evaluate_computation(comp, pairs))
    for row in range(rows[0].shape[0]):
        cmp = functools.cmp_to_key(
            lambda a, b, row=row: -1 if less(row, a, b) else (1 if less(row, b, a) else 0))
        order[row] = sorted(range(rows[0].shape[1]), key=cmp)
    return np.moveaxis(order.reshape(moved[0].shape), -1, axis)


def _sort(inst, args):
    (axis,) = inst.attrs["dimensions"]
    order = _sort_order(inst, args)
    out = tuple(np.take_along_axis(a, order, axis=axis) for a in args)
    return out[0] if len(out) == 1 else out


def _topk(inst, args):
    """XLA's TopK: by the total order of the elements' bits (NaN above +inf, +0.0 above
    -0.0), ties broken by the lower index; sorted from the best."""
    (x,) = args
    k, largest = inst.attrs["k"], inst.attrs.get("largest", True)
    keys = total_order_keys(x)
    order = np.argsort(~keys if largest else keys, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, order, axis=-1), order.astype(np.int32)


def _dilate_and_pad(x: np.ndarray, window) -> np.ndarray:
    """x ([batch, feature, spatial...]) with `base_dilation - 1` zeros between elements
    and each spatial dim padded (negative padding crops), as a convolution sees it."""
    for k, dim in enumerate(window):
        axis = 2 + k
        size = x.shape[axis]
        spread = np.zeros(x.shape[:axis] + (dilated_size(size, dim.base_dilation),)
                          + x.shape[axis + 1:], x.dtype)
        index = [np.s_[:]] * x.ndim
        index[axis] = np.s_[::dim.base_dilation]
        spread[tuple(index)] = x
        widths = [(0, 0)] * x.ndim
        widths[axis] = (max(dim.padding_low, 0), max(dim.padding_high, 0))
        padded = np.pad(spread, widths)
        index[axis] = np.s_[max(-dim.padding_low, 0):padded.shape[axis]
                            - max(-dim.padding_high, 0)]
        x = padded[tuple(index)]
    return x


def _convolution(inst, args):
    """XLA's convolution, accumulated in float64 (int64 for integers): for each window tap,
    the strided view of the padded, dilated input it meets, contracted with that tap of
    the kernel within each feature group (or batch group)."""
    labels = inst.attrs["dim_labels"]
    window = inst.attrs.get("window", ())
    feature_groups = inst.attrs.get("feature_group_count", 1)
    batch_groups = inst.attrs.get("batch_group_count", 1)
    wide = np.int64 if args[0].dtype.kind in "iub" else np.float64
    x = np.transpose(args[0], labels.lhs).astype(wide)     # [N, C, spatial...]
    w = np.transpose(args[1], labels.rhs).astype(wide)     # [O, I, kernel spatial...]
    for k, dim in enumerate(window):
        if dim.reversal:
            w = np.flip(w, 2 + k)
    canonical = tuple(inst.shape.dims[d] for d in labels.out)   # [N', O, out spatial...]
    out = np.zeros(canonical, wide)
    if out.size:
        x = _dilate_and_pad(x, window)
        groups = max(feature_groups, batch_groups)
        out = out.reshape((canonical[0], groups, canonical[1] // groups) + canonical[2:])
        for tap in np.ndindex(*w.shape[2:]):
            view = x[(np.s_[:], np.s_[:]) + tuple(
                np.s_[t * d.window_dilation:t * d.window_dilation + (n - 1) * d.stride + 1:
                      d.stride] for t, d, n in zip(tap, window, canonical[2:]))]
            kernel = w[(np.s_[:], np.s_[:]) + tap]
            kernel = kernel.reshape((groups, -1) + kernel.shape[1:])    # [G, O/G, I]
            if batch_groups > 1:     # batch b of group g reads input batch g * N' + b
                view = view.reshape((groups, -1) + view.shape[1:])
                out += np.einsum("gnc...,goc->ngo...", view, kernel)
            else:
                view = view.reshape((view.shape[0], groups, -1) + view.shape[2:])
                out += np.einsum("ngc...,goc->ngo...", view, kernel)
        out = out.reshape(canonical)
    return np.ascontiguousarray(np.transpose(out, np.argsort(labels.out))).astype(
        _np(inst.shape))


_f = _via_f64
REFERENCE: dict[Opcode, "Rule | Unsupported"] = {
    Opcode.PARAMETER: Unsupported("a parameter's value is its argument, bound by "
                                  "evaluate_computation"),
    Opcode.CONSTANT: _constant,
    Opcode.IOTA: _iota,
    Opcode.CONVERT: _convert,
    Opcode.COPY: lambda inst, args: args[0].copy(),
    Opcode.BITCAST_CONVERT: _bitcast_convert,
    Opcode.NEGATE: _unary(np.negative),
    Opcode.ABS: _unary(np.abs),
    Opcode.SIGN: _unary(_sign),
    Opcode.EXPONENTIAL: _unary(_f(np.exp)),
    Opcode.EXPONENTIAL_MINUS_ONE: _unary(_f(np.expm1)),
    Opcode.LOG: _unary(_f(np.log)),
    Opcode.LOG_PLUS_ONE: _unary(_f(np.log1p)),
    Opcode.SQRT: _unary(_f(np.sqrt)),
    Opcode.RSQRT: _unary(_f(lambda x: 1.0 / np.sqrt(x))),
    Opcode.CBRT: _unary(_f(np.cbrt)),
    Opcode.TANH: _unary(_f(np.tanh)),
    Opcode.LOGISTIC: _unary(_f(_logistic)),
    Opcode.SINE: _unary(_f(np.sin)),
    Opcode.COSINE: _unary(_f(np.cos)),
    Opcode.TAN: _unary(_f(np.tan)),
    Opcode.ERF: _unary(_f(_erf_f64)),
    Opcode.FLOOR: _unary(np.floor),
    Opcode.CEIL: _unary(np.ceil),
    Opcode.ROUND_NEAREST_EVEN: _unary(np.rint),
    Opcode.ROUND_NEAREST_AFZ: _unary(_round_afz),
    Opcode.NOT: _unary(np.invert),
    Opcode.POPCNT: _unary(_population_count),
    Opcode.CLZ: _unary(_count_leading_zeros),
    Opcode.IS_FINITE: _unary(np.isfinite),
    Opcode.ADD: _binary(np.add),
    Opcode.SUBTRACT: _binary(np.subtract),
    Opcode.MULTIPLY: _binary(np.multiply),
    Opcode.DIVIDE: _binary(_divide),
    Opcode.REMAINDER: _binary(_remainder),
    Opcode.POWER: _binary(_power),
    Opcode.MAXIMUM: _binary(np.maximum),
    Opcode.MINIMUM: _binary(np.minimum),
    Opcode.ATAN2: _binary(lambda y, x: np.arctan2(y.astype(np.float64), x.astype(np.float64))),
    Opcode.AND: _binary(np.bitwise_and),
    Opcode.OR: _binary(np.bitwise_or),
    Opcode.XOR: _binary(np.bitwise_xor),
    Opcode.SHIFT_LEFT: _binary(_shift("left")),
    Opcode.SHIFT_RIGHT_LOGICAL: _binary(_shift("logical")),
    Opcode.SHIFT_RIGHT_ARITHMETIC: _binary(_shift("arithmetic")),
    Opcode.COMPARE: _compare,
    Opcode.SELECT: _select,
    Opcode.CLAMP: _clamp,
    Opcode.BROADCAST: _broadcast,
    Opcode.RESHAPE: _reshape,
    Opcode.TRANSPOSE: _transpose,
    Opcode.SLICE: _slice,
    Opcode.DYNAMIC_SLICE: _dynamic_slice,
    Opcode.DYNAMIC_UPDATE_SLICE: _dynamic_update_slice,
    Opcode.CONCATENATE: _concatenate,
    Opcode.PAD: _pad,
    Opcode.REVERSE: _reverse,
    Opcode.REDUCE: _reduce,
    Opcode.REDUCE_WINDOW: window_reference.reduce_window,
    Opcode.SELECT_AND_SCATTER: window_reference.select_and_scatter,
    Opcode.DOT: _dot,
    Opcode.GATHER: _gather,
    Opcode.SCATTER: _scatter,
    Opcode.TUPLE: _tuple,
    Opcode.GET_TUPLE_ELEMENT: _get_tuple_element,
    Opcode.CALL: _call("to_apply"),
    Opcode.FUSION: _call("calls"),
    Opcode.WHILE: _while,
    Opcode.CONDITIONAL: _conditional,
    Opcode.CUSTOM_CALL: _custom_call,
    Opcode.CONVOLUTION: _convolution,
    Opcode.CHOLESKY: lapack_reference.cholesky,
    Opcode.TRIANGULAR_SOLVE: lapack_reference.triangular_solve,
    Opcode.SORT: _sort,
    Opcode.TOPK: _topk,
}


def evaluate_instruction(inst: Instruction, args: list) -> Value:
    """The value of one instruction given its operands' values."""
    with np.errstate(all="ignore"):
        rule = REFERENCE[inst.opcode]
        if isinstance(rule, Unsupported):
            raise NotImplementedError(f"{inst.opcode} has no reference semantics: {rule.reason}")
        return rule(inst, [a if isinstance(a, tuple) else np.asarray(a) for a in args])


def evaluate_computation(comp: Computation, args: Sequence) -> Value:
    """Run `comp` on `args` with the reference semantics of each op."""
    values: dict[int, Value] = {}
    for inst in comp.instructions:
        if inst.opcode == "parameter":
            arg = args[inst.attrs["number"]]
            values[id(inst)] = arg if isinstance(arg, tuple) else np.asarray(
                arg, dtype=_np(inst.shape))
        else:
            values[id(inst)] = evaluate_instruction(inst, [values[id(o)] for o in inst.operands])
    return values[id(comp.root)]


def evaluate(module: Module, args: Sequence) -> Value:
    """Run the module's entry computation with reference semantics."""
    return evaluate_computation(module.entry, args)
