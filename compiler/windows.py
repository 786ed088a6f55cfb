"""Windowed reductions and cumulative ops, with jax.lax's names, signatures and defaults:
`reduce_window`, `cumsum`, `cumprod`, `cummax`, `cummin`, `cumlogsumexp`,
`associative_scan` (re-exported by `flowjit.lax`).

The cumulative ops are reduce-windows as JAX lowers them on the CPU (a window as long as the
axis, padded on one side); the CPU backend runs that pattern as one pass. Their gradients
are JAX's: cumsum's is a reverse cumsum (the reduce-window VJP rule), the others'
differentiate the associative-scan formulation, as JAX's JVP rules do (so ties in cummax
split the gradient as jax.grad does).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Optional, Sequence

import numpy as np

from flowjit import lax, tree
from flowjit.core import bind, current_trace, reducer, shape_of, trace_subfunction
from flowjit.source_info import at_user_line
from flowjit.ir.attributes import window as make_window
from flowjit.ir.errors import ShapeError
from flowjit.ir.shapes import ArrayShape


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding: str) -> list[tuple[int, int]]:
    """(low, high) padding per dimension for "VALID", "SAME" or "SAME_LOWER" (jax.lax's)."""
    kind = padding.upper()
    if kind == "VALID":
        return [(0, 0)] * len(in_shape)
    if kind not in ("SAME", "SAME_LOWER"):
        raise ValueError(f"unknown padding {padding!r}: 'VALID', 'SAME', 'SAME_LOWER' or "
                         f"a sequence of (low, high) pairs")
    pads = []
    for size, window, stride in zip(in_shape, window_shape, window_strides):
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + window - size)
        small, large = total // 2, total - total // 2
        pads.append((large, small) if kind == "SAME_LOWER" else (small, large))
    return pads


def _dilate(dims: Sequence[int], dilation: Sequence[int]) -> list[int]:
    return [0 if d == 0 else (d - 1) * r + 1 for d, r in zip(dims, dilation)]


# jax.lax's monoids, recognized as the computation of a reduce_window: their opcodes.
def _monoid_opcode(computation) -> Optional[str]:
    known = {lax.add: "add", lax.mul: "multiply", lax.max: "maximum", lax.min: "minimum",
             lax.bitwise_and: "and", lax.bitwise_or: "or"}
    try:
        return known.get(computation)
    except TypeError:   # unhashable callables are not monoids
        return None


def _traced_reducer(computation: Callable, in_tree, dtypes: list):
    """`computation(accumulators, values)` traced over scalars into a computation."""
    n = len(dtypes)
    scalars = [ArrayShape(d, ()) for d in dtypes] * 2

    def flat(*leaves):
        out = computation(tree.unflatten(in_tree, list(leaves[:n])),
                          tree.unflatten(in_tree, list(leaves[n:])))
        out_leaves, _ = tree.flatten(out)
        if len(out_leaves) != n:
            raise TypeError(at_user_line(
                f"reduce_window's computation returned {len(out_leaves)} values for "
                f"{n} operands"))
        out = [lax.convert_element_type(o, d.to_numpy()) if shape_of(o).dtype != d else o
               for o, d in zip(out_leaves, dtypes)]
        return tuple(out) if n > 1 else out[0]
    sub = trace_subfunction(flat, scalars, "reduce_window_computation", tuple_result=n > 1)
    if sub.captured:
        raise TypeError(at_user_line("reduce_window's computation may not close over "
                                     "traced values"))
    trace = current_trace()
    if trace is not None:
        for comp in sub.computations:
            trace.add_computation(comp)
    return sub.computation


def reduce_window(operand, init_value, computation: Callable, window_dimensions,
                  window_strides=None, padding="VALID", base_dilation=None,
                  window_dilation=None) -> Any:
    """Fold each window of `operand` with `computation` (lax.add/max/min/mul or any
    function of (accumulators, values)) from `init_value`; pytrees of operands allowed."""
    operands, operand_tree = tree.flatten(operand)
    inits, init_tree = tree.flatten(init_value)
    if operand_tree != init_tree:
        raise TypeError(at_user_line("reduce_window: operand and init_value must have the "
                                     f"same structure, got {operand_tree} and {init_tree}"))
    if not operands:
        raise TypeError(at_user_line("reduce_window needs at least one operand"))
    inits = [lax._weak_operands(o, i)[1] for o, i in zip(operands, inits)]
    dims = shape_of(operands[0]).dims
    rank = len(dims)
    window_dimensions = tuple(int(d) for d in window_dimensions)
    strides = tuple(window_strides) if window_strides is not None else (1,) * rank
    base = tuple(base_dilation) if base_dilation is not None else (1,) * rank
    dilation = tuple(window_dilation) if window_dilation is not None else (1,) * rank
    for name, values in (("window_dimensions", window_dimensions), ("window_strides", strides),
                         ("base_dilation", base), ("window_dilation", dilation)):
        if len(values) != rank:
            raise ShapeError(at_user_line(f"reduce_window: {name} has {len(values)} entries "
                                          f"for an operand of rank {rank} {list(dims)}"))
    if isinstance(padding, str):
        # As jax.lax does: the operand's own extent, not the base-dilated one.
        pads = padtype_to_pads(dims, _dilate(window_dimensions, dilation), strides, padding)
    else:
        pads = [tuple(int(v) for v in p) for p in padding]
        if len(pads) != rank or any(len(p) != 2 for p in pads):
            raise ShapeError(at_user_line(f"reduce_window: padding {padding!r} needs one "
                                          f"(low, high) pair per dimension ({rank})"))
    dtypes = [shape_of(o).dtype for o in operands]
    opcode = _monoid_opcode(computation) if len(operands) == 1 else None
    if opcode is not None:
        comp = reducer(opcode, dtypes[0], operands + inits)
    else:
        comp = _traced_reducer(computation, operand_tree, dtypes)
    attrs = {"window": make_window(window_dimensions, strides, pads, dilation, base)}
    out = bind("reduce-window", operands + inits, attrs, {"to_apply": comp})
    leaves = list(out) if isinstance(out, tuple) else [out]
    return tree.unflatten(operand_tree, leaves)


# --- cumulative reductions ----------------------------------------------------------------

def _check_axis(operand, axis: int, name: str) -> tuple:
    dims = shape_of(operand).dims
    if not 0 <= axis < len(dims):   # jax.lax takes no negative axes either
        raise ValueError(at_user_line(f"{name}: axis {axis} is out of bounds for an array "
                                      f"of shape {tuple(dims)}"))
    return dims


def _prefix_window(operand, init, computation, axis: int, reverse: bool, name: str):
    """JAX's `cumred_reduce_window_impl`: a window as long as the axis, padded before it
    (after it when reversed)."""
    dims = _check_axis(operand, axis, name)
    n = dims[axis]
    if n == 0:
        return operand
    window = [1] * len(dims)
    window[axis] = n
    padding = [(0, 0)] * len(dims)
    padding[axis] = (0, n - 1) if reverse else (n - 1, 0)
    return reduce_window(operand, init, computation, window, (1,) * len(dims), padding)


def _identity(kind: str, dtype: np.dtype):
    if kind == "add":
        return np.zeros((), dtype)
    if kind == "mul":
        return np.ones((), dtype)
    low = kind == "max"
    if np.issubdtype(dtype, np.floating) or dtype.kind == "V":
        return np.array(-np.inf if low else np.inf, dtype)
    if dtype == np.bool_:
        return np.array(not low)
    info = np.iinfo(dtype)
    return np.array(info.min if low else info.max, dtype)


def _logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow; -inf when both are -inf (as JAX's)."""
    amax = lax.max(x, y)
    delta = lax.sub(x, y)
    finite = lax.eq(delta, delta)   # NaN only for inf - inf of equal signs
    spread = lax.add(amax, lax.log1p(lax.exp(lax.neg(lax.abs(delta)))))
    return lax.select(finite, spread, lax.add(x, y))


def cumsum(operand, axis: int = 0, reverse: bool = False):
    """Computes a cumulative sum along `axis`."""
    dtype = np.dtype(shape_of(operand).dtype.to_numpy())
    return _prefix_window(operand, _identity("add", dtype), lax.add, int(axis), bool(reverse),
                          "cumsum")


def _scan_differentiated(name: str, combine: Callable, kind: str):
    """A cumulative op that runs as a prefix reduce-window and differentiates as JAX does:
    through the associative scan of `combine` (custom_vjp keeps the one-pass forward where
    no gradient is taken)."""
    def op(operand, axis: int = 0, reverse: bool = False):
        # Imported here, not when this module loads: flowjit.ad imports flowjit.numpy,
        # which imports lax and so this module (a fresh `import flowjit; flowjit.grad`
        # met a half-initialized flowjit.ad).
        from flowjit.ad import custom_vjp, vjp
        axis, reverse = int(axis), bool(reverse)
        _check_axis(operand, axis, name)
        dtype = np.dtype(shape_of(operand).dtype.to_numpy())
        if not np.issubdtype(dtype, np.floating) and dtype.kind != "V":
            return _prefix_window(operand, _identity(kind, dtype), combine, axis, reverse,
                                  name)

        @custom_vjp
        def forward(x):
            return _prefix_window(x, _identity(kind, dtype), combine, axis, reverse, name)

        def forward_with_residuals(x):
            # Under differentiation the value comes from the scan too, so that a second
            # derivative (which differentiates this) has rules to follow.
            return associative_scan(combine, x, axis=axis, reverse=reverse), x

        def backward(x, g):
            _, pull_back = vjp(partial(associative_scan, combine, axis=axis,
                                       reverse=reverse), x)
            return pull_back(g)
        forward.defvjp(forward_with_residuals, backward)
        return forward(operand)
    op.__name__ = name
    op.__doc__ = f"Computes a cumulative {kind} along `axis` ({name} of jax.lax)."
    return op


cumprod = _scan_differentiated("cumprod", lax.mul, "mul")
cummax = _scan_differentiated("cummax", lax.max, "max")
cummin = _scan_differentiated("cummin", lax.min, "min")


def cumlogsumexp(operand, axis: int = 0, reverse: bool = False):
    """Computes a cumulative logsumexp along `axis`."""
    return _cumlogsumexp(operand, axis, reverse)


_cumlogsumexp = _scan_differentiated("cumlogsumexp", _logaddexp, "max")


# --- associative scan ---------------------------------------------------------------------

def _slice_axis(x, start: int, stop: Optional[int], stride: int, axis: int):
    dims = shape_of(x).dims
    stop = dims[axis] if stop is None else (stop if stop >= 0 else dims[axis] + stop)
    starts = [0] * len(dims)
    limits = list(dims)
    strides = [1] * len(dims)
    starts[axis], limits[axis], strides[axis] = start, max(stop, start), stride
    return lax.slice(x, starts, limits, strides)


def _interleave(a, b, axis: int):
    """a[0], b[0], a[1], b[1], ... along `axis` (len(a) is len(b) or len(b) + 1)."""
    n_a, n_b = shape_of(a).dims[axis], shape_of(b).dims[axis]
    rank = len(shape_of(a).dims)
    a_pad = [(0, 0, 0)] * rank
    b_pad = [(0, 0, 0)] * rank
    a_pad[axis] = (0, 1 if n_a == n_b else 0, 1)
    b_pad[axis] = (1, 0 if n_a == n_b else 1, 1)
    dtype = shape_of(a).dtype.to_numpy()
    zero = np.zeros((), dtype)
    merge = lax.bitwise_or if dtype == np.bool_ else lax.add
    return merge(lax.pad(a, zero, a_pad), lax.pad(b, zero, b_pad))


def associative_scan(fn: Callable, elems, reverse: bool = False, axis: int = 0):
    """Inclusive scan of `elems` (a pytree of arrays, scanned along `axis`) with the
    associative `fn`, by pairwise combination in O(log n) levels (jax.lax's algorithm)."""
    leaves, elems_tree = tree.flatten(elems)
    if not leaves:
        return elems
    rank = len(shape_of(leaves[0]).dims)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < max(rank, 1):
        raise ValueError(at_user_line(f"associative_scan: axis {axis} is out of bounds for "
                                      f"rank {rank}"))
    sizes = {shape_of(x).dims[axis] for x in leaves}
    if len(sizes) != 1:
        raise ValueError(at_user_line("associative_scan: every array needs the same length "
                                      f"along axis {axis}, got {sorted(sizes)}"))
    if reverse:
        leaves = [lax.rev(x, [axis]) for x in leaves]

    def combine(a, b):
        out = fn(tree.unflatten(elems_tree, a), tree.unflatten(elems_tree, b))
        return tree.flatten(out)[0]

    def scan(xs):
        n = shape_of(xs[0]).dims[axis]
        if n < 2:
            return xs
        first = [_slice_axis(x, 0, -1, 2, axis) for x in xs]
        second = [_slice_axis(x, 1, None, 2, axis) for x in xs]
        reduced = combine(first, second)
        odd = scan(reduced)
        if n % 2 == 0:
            left = [_slice_axis(e, 0, -1, 1, axis) for e in odd]
            right = [_slice_axis(x, 2, None, 2, axis) for x in xs]
        else:
            left, right = odd, [_slice_axis(x, 2, None, 2, axis) for x in xs]
        even = combine(left, right)
        even = [lax.concatenate([_slice_axis(x, 0, 1, 1, axis), e], axis)
                for x, e in zip(xs, even)]
        return [_interleave(e, o, axis) for e, o in zip(even, odd)]
    out = scan(leaves)
    if reverse:
        out = [lax.rev(x, [axis]) for x in out]
    return tree.unflatten(elems_tree, out)
