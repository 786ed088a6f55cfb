"""Reverse-mode autodiff as an IR transformation.

`vjp(comp, wrt, names)` builds a new computation
    f_vjp(params..., cotangent of each output leaf...) -> (outputs..., cotangent per wrt param)
by copying the forward instructions and then sweeping them in reverse, asking each op's rule
in `passes.vjp_rules.VJP_RULES` for its operands' cotangents. Rules emit IR, so the result is
optimized and fused like any other code, and can be differentiated again.

The cotangent of a tuple-shaped value is a Python list with one entry per element (None for
zero), so `get-tuple-element` and `tuple` cost nothing and unused elements stay zero.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from flowjit.ir.builder import Builder, NameTable, scalar_computation
from flowjit.ir.graph import clone_instructions, post_order
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.shapes import ArrayShape, Shape

# An array cotangent, None (zero) or, for a tuple-shaped value, a list of cotangents.
Cotangent = Union[Instruction, None, list]


class NonDifferentiableError(TypeError):
    """The function uses an op that has no VJP rule on a path that needs a gradient."""


def output_leaves(comp: Computation) -> list[Instruction]:
    """The outputs a VJP takes one cotangent each for: a tuple root's operands, else the root."""
    root = comp.root
    return list(root.operands) if root.opcode == "tuple" else [root]


def has_float(shape: Shape) -> bool:
    """Whether a value of `shape` carries any gradient (some float element)."""
    if shape.is_tuple:
        return any(has_float(s) for s in shape.elements)
    return shape.dtype.is_float


def known_trip_count(inst: Instruction) -> Optional[int]:
    """The trip count recorded on a `while` (printed as XLA's `backend_config`), if any."""
    return inst.attrs.get("known_trip_count")


class Emitter:
    """The small vocabulary VJP rules are written in: ops on new IR instructions."""

    def __init__(self, builder: Builder, extra: list[Computation]):
        self.b = builder
        self.extra = extra           # every computation made here, nested ones included
        self.replacements: list[tuple[Instruction, Instruction]] = []
        self._derivatives: dict = {}

    @property
    def names(self) -> NameTable:
        return self.b.names

    def op(self, opcode: str, *operands, shape=None, calls=None, extra_attrs=None,
           **attrs) -> Instruction:
        inst = self.b.add(opcode, list(operands), attrs, calls, shape=shape, metadata={})
        inst.extra_attrs.update(extra_attrs or {})
        return inst

    def scalar(self, value, dtype) -> Instruction:
        return self.b.constant(np.array(value, dtype=dtype.to_numpy()), dtype)

    def constant(self, value, like: Instruction) -> Instruction:
        """`value` broadcast to `like`'s shape and dtype."""
        return self.filled(value, like.shape)

    def filled(self, value, shape: Shape) -> Instruction:
        """`value` everywhere in `shape` (a tuple of such arrays for a tuple shape)."""
        if shape.is_tuple:
            return self.op("tuple", *[self.filled(value, s) for s in shape.elements])
        scalar = self.scalar(value, shape.dtype)
        return scalar if shape.rank == 0 else self.op("broadcast", scalar, shape=shape,
                                                      dimensions=())

    def zeros(self, like: Instruction) -> Instruction:
        return self.filled(0, like.shape)

    def add(self, a, b):
        return self.op("add", a, b)

    def sub(self, a, b):
        return self.op("subtract", a, b)

    def mul(self, a, b):
        return self.op("multiply", a, b)

    def div(self, a, b):
        return self.op("divide", a, b)

    def neg(self, a):
        return self.op("negate", a)

    def select(self, pred, a, b):
        return self.op("select", pred, a, b)

    def compare(self, a, b, direction: str):
        return self.op("compare", a, b, direction=direction)

    def gte(self, a, index: int) -> Instruction:
        if a.opcode == "tuple":
            return a.operands[index]
        return self.op("get-tuple-element", a, index=index)

    def convert(self, a, dtype):
        if a.shape.dtype == dtype:
            return a
        return self.op("convert", a, shape=ArrayShape(dtype, a.shape.dims))

    def reshape(self, a, dims):
        if a.shape.dims == tuple(dims):
            return a
        return self.op("reshape", a, shape=ArrayShape(a.shape.dtype, tuple(dims)))

    def broadcast(self, a, shape: ArrayShape, dims):
        if a.shape.dims == shape.dims and tuple(dims) == tuple(range(len(dims))):
            return a
        return self.op("broadcast", a, shape=ArrayShape(a.shape.dtype, shape.dims),
                       dimensions=tuple(dims))

    def transpose(self, a, perm):
        if tuple(perm) == tuple(range(len(perm))):
            return a
        return self.op("transpose", a, dimensions=tuple(perm))

    def reducer(self, opcode: str, dtype) -> Computation:
        comp = scalar_computation(opcode, dtype, self.names)
        self.extra.append(comp)
        return comp

    def sum(self, a, dims) -> Instruction:
        """Sum over `dims` (kept dims stay in order)."""
        dims = tuple(sorted(dims))
        if not dims:
            return a
        return self.op("reduce", a, self.scalar(0, a.shape.dtype), dimensions=dims,
                       calls={"to_apply": self.reducer("add", a.shape.dtype)})

    # --- tuples and computations ---------------------------------------------------------

    def materialize(self, ct: Cotangent, shape: Shape) -> Instruction:
        """`ct` as one instruction of `shape`: zeros for None, a `tuple` for a list."""
        if ct is None:
            return self.filled(0, shape)
        if isinstance(ct, list):
            return self.op("tuple", *[self.materialize(c, s)
                                      for c, s in zip(ct, shape.elements)])
        return ct

    def output_cotangents(self, comp: Computation, g: Cotangent, shape: Shape
                          ) -> list[Instruction]:
        """One cotangent per output leaf of `comp` (as its VJP takes them), from the
        cotangent `g` of a value of `shape` that `comp`'s root computes."""
        if comp.root.opcode != "tuple":
            return [self.materialize(g, shape)]
        if isinstance(g, Instruction):
            g = [self.gte(g, k) for k in range(len(shape.elements))]
        g = g if g is not None else [None] * len(shape.elements)
        return [self.materialize(c, s) for c, s in zip(g, shape.elements)]

    def merge(self, shape: Shape, old: Cotangent, new: Cotangent) -> Cotangent:
        """The sum of two cotangents of a value of `shape` (None and lists allowed)."""
        if new is None or not has_float(shape):
            return old
        if shape.is_tuple:
            if isinstance(new, Instruction):
                new = [self.gte(new, k) for k in range(len(shape.elements))]
            old = old if old is not None else [None] * len(shape.elements)
            return [self.merge(s, o, n) for s, o, n in zip(shape.elements, old, new)]
        if new.shape != shape:
            new = self.convert(new, shape.dtype)
        if old is None:
            return new
        for sparse, dense in ((new, old), (old, new)):
            if _is_window_of_zeros(sparse):
                return self.add_window(dense, sparse)
        joined = _disjoint_pieces(old, new)
        if joined is not None:
            return self.concatenate_pieces(shape, *joined)
        return self.add(old, new)

    def concatenate_pieces(self, shape: ArrayShape, axis: int, pieces: list) -> Instruction:
        """The array of `shape` that holds each (start, value) piece along `axis` and zeros
        elsewhere, as one concatenate."""
        parts, at = [], 0
        for start, value in pieces:
            if start > at:
                parts.append(self.filled(0, _with_dim(shape, axis, start - at)))
            parts.append(value)
            at = start + value.shape.dims[axis]
        if at < shape.dims[axis]:
            parts.append(self.filled(0, _with_dim(shape, axis, shape.dims[axis] - at)))
        return self.op("concatenate", *parts, dimensions=(axis,))

    def add_window(self, dense: Instruction, window: Instruction) -> Instruction:
        """dense + dynamic-update-slice(zeros, u, starts), as the update of only the window:
        dynamic-update-slice(dense, dynamic-slice(dense, starts) + u, starts). (A loop's
        gradient adds one step's slice of a stacked cotangent per iteration: this way it
        touches the slice, not the whole stack, and runs in place.)"""
        _, update, *starts = window.operands
        current = self.op("dynamic-slice", dense, *starts,
                          dynamic_slice_sizes=tuple(update.shape.dims))
        return self.op("dynamic-update-slice", dense, self.add(current, update), *starts)

    def inline(self, comp: Computation, args: Sequence[Instruction],
               known: Optional[dict] = None) -> Instruction:
        """Copy `comp`'s instructions here on `args`; returns the copy of its root. `known`
        (by id of an instruction of `comp`) gives values to use instead of computing them."""
        return self._copy(comp, args, comp.instructions, known)[id(comp.root)]

    def inline_values(self, comp: Computation, args: Sequence[Instruction],
                      wanted: Sequence[Instruction]) -> list[Instruction]:
        """Copies here, on `args`, of the instructions of `comp` that compute `wanted`
        (which must not need `comp`'s other parameters); returns the copies of `wanted`."""
        needed = {id(i) for i in post_order(wanted)}
        values = self._copy(comp, args, [i for i in comp.instructions if id(i) in needed])
        return [values[id(w)] for w in wanted]

    def _copy(self, comp: Computation, args: Sequence[Instruction], instructions,
              known: Optional[dict] = None) -> dict:
        values: dict[int, Instruction] = dict(known or {})
        for inst in instructions:
            if id(inst) in values:
                continue
            if inst.opcode == "parameter":
                values[id(inst)] = args[inst.attrs["number"]]
            elif inst.opcode == "get-tuple-element":
                values[id(inst)] = self.gte(values[id(inst.operands[0])], inst.attrs["index"])
            else:
                copy = inst.copy_with(self.names.fresh(inst.name),
                                      [values[id(o)] for o in inst.operands], metadata={})
                self.b.computation.instructions.append(copy)
                values[id(inst)] = copy
        return values

    def derivative(self, comp: Computation, wrt: Sequence[int]) -> Computation:
        """The VJP computation of `comp` (made once per emitter), registered as extra."""
        key = (id(comp), tuple(wrt))
        if key not in self._derivatives:
            self._derivatives[key] = _transform(comp, wrt, self.names, self.extra)
            self.extra.append(self._derivatives[key])
        return self._derivatives[key]

    def sub_builder(self, name: str) -> "Emitter":
        """An emitter for a new computation (a loop body, a branch) sharing names and extras."""
        inner = Emitter(Builder(name, self.names), self.extra)
        inner._derivatives = self._derivatives
        return inner

    def finish(self, root: Instruction) -> Computation:
        comp = self.b.finish(root)
        self.extra.append(comp)
        return comp


def _is_zero(inst: Instruction) -> bool:
    if inst.opcode == "broadcast":
        inst = inst.operands[0]
    return (inst.opcode == "constant" and inst.literal is not None
            and not np.any(np.asarray(inst.literal)))


def _pieces(inst: Instruction):
    """(axis, [(start, value)]) when `inst` is zero but for pieces along one axis: a pad
    with zeros along one axis (the cotangent of a slice: the gates of an LSTM), or a
    concatenate whose other parts are zeros; else None."""
    if inst.opcode == "pad" and _is_zero(inst.operands[1]):
        padded = [d for d, (lo, hi, interior) in enumerate(inst.attrs["padding"])
                  if (lo, hi, interior) != (0, 0, 0)]
        if len(padded) == 1 and all(lo >= 0 and hi >= 0 and interior == 0
                                    for lo, hi, interior in inst.attrs["padding"]):
            (axis,) = padded
            return axis, [(inst.attrs["padding"][axis][0], inst.operands[0])]
    if inst.opcode == "concatenate":
        (axis,) = inst.attrs["dimensions"]
        pieces, at = [], 0
        for part in inst.operands:
            if not _is_zero(part):
                pieces.append((at, part))
            at += part.shape.dims[axis]
        return axis, pieces
    return None


def _disjoint_pieces(a: Instruction, b: Instruction):
    """(axis, pieces) of a + b when both are zero but for pieces along the same axis that do
    not overlap: the sum is then their concatenation, no addition at all."""
    if a.shape != b.shape:
        return None
    first, second = _pieces(a), _pieces(b)
    if first is None or second is None or first[0] != second[0]:
        return None
    axis = first[0]
    pieces = sorted(first[1] + second[1], key=lambda piece: piece[0])
    for (start, value), (next_start, _) in zip(pieces, pieces[1:]):
        if start + value.shape.dims[axis] > next_start:
            return None
    return axis, pieces


def _with_dim(shape: ArrayShape, axis: int, size: int) -> ArrayShape:
    return ArrayShape(shape.dtype, shape.dims[:axis] + (size,) + shape.dims[axis + 1:])


def _is_window_of_zeros(inst: Instruction) -> bool:
    """A dynamic-update-slice into an array of zeros (the cotangent of a dynamic-slice)."""
    return inst.opcode == "dynamic-update-slice" and _is_zero(inst.operands[0])


def no_rule_error(inst: Instruction) -> NonDifferentiableError:
    """The error for differentiating `inst`, which has no rule (naming its source line)."""
    where = f", from {inst.source_line}" if inst.source_line else ""
    if inst.opcode == "while":
        return NonDifferentiableError(
            f"reverse-mode differentiation of a while loop (%{inst.name}{where}) needs a "
            "trip count known when tracing (fori_loop with constant bounds, scan); this "
            "loop's is only known at run time (JAX refuses it too)")
    return NonDifferentiableError(f"cannot differentiate through '{inst.opcode}' "
                                  f"(%{inst.name}{where})")


def _transform(comp: Computation, wrt: Sequence[int], names: NameTable,
               extra: list[Computation]) -> Computation:
    from flowjit.passes.vjp_rules import VJP_RULES
    emit = Emitter(Builder(f"{comp.name}_vjp", names), extra)
    b = emit.b
    params = comp.parameters
    mapping: dict[int, Instruction] = {}
    for p in params:
        mapping[id(p)] = b.parameter(p.attrs["number"], p.shape, p.name.split(".")[0])
    outputs = output_leaves(comp)
    cotangent_params = [b.parameter(len(params) + k, o.shape, "cotangent")
                        for k, o in enumerate(outputs)]
    order = [i for i in comp.post_order() if i.opcode != "parameter"]
    copies, mapping = clone_instructions(order, names, mapping)
    b.computation.instructions.extend(copies)
    cotangents: dict[int, Cotangent] = {}

    def accumulate(target: Instruction, value: Cotangent) -> None:
        cotangents[id(target)] = emit.merge(target.shape, cotangents.get(id(target)), value)

    for out, ct in zip(outputs, cotangent_params):
        accumulate(out, ct)
    for inst in reversed(order):
        g = cotangents.get(id(inst))
        if g is None or (isinstance(g, list) and all(c is None for c in g)):
            continue
        rule = VJP_RULES[inst.opcode]
        if isinstance(rule, Unsupported):
            raise no_rule_error(inst)
        for operand, ct in zip(inst.operands, rule(emit, mapping[id(inst)], g)):
            accumulate(operand, ct)
    results = [mapping[id(o)] for o in outputs]
    for number in wrt:
        p = params[number]
        results.append(emit.materialize(cotangents.get(id(p)), p.shape))
    result = b.finish(b.add("tuple", results, metadata={}))
    if emit.replacements:
        result.replace_uses({id(old): new for old, new in emit.replacements})
        result.remove_unreachable()
        result.sort()
    return result


def vjp(comp: Computation, wrt: Sequence[int], names: Optional[NameTable] = None
        ) -> tuple[Computation, list[Computation]]:
    """The VJP computation of `comp` w.r.t. its parameters `wrt`, and new callees it uses."""
    extra: list[Computation] = []
    result = _transform(comp, wrt, names or NameTable(), extra)
    return result, extra


def lower_autodiff_markers(module: Module) -> bool:
    """Inline custom_vjp custom-calls and drop stop_gradient markers (before codegen)."""
    from flowjit.passes import lower_custom_calls
    return lower_custom_calls.run(module)


def vjp_module(module: Module, wrt: Sequence[int]) -> Module:
    """A module whose entry is the VJP of `module`'s entry w.r.t. its parameters `wrt`."""
    entry, extra = vjp(module.entry, wrt, NameTable.for_module(module))
    others = [c for c in module.computations if c is not module.entry]
    return Module(f"{module.name}_vjp", entry, others + extra)
