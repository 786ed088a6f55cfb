"""Reverse-mode autodiff as an IR transformation.

`vjp(comp, wrt, names)` builds a new computation
    f_vjp(params..., cotangent of each output leaf...) -> (outputs..., cotangent per wrt param)
by copying the forward instructions and then sweeping them in reverse, asking each op's rule
in `passes.vjp_rules.VJP_RULES` for its operands' cotangents. Rules emit IR, so the result is
optimized and fused like any other code, and can be differentiated again.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ir.builder import Builder, NameTable
from ir.module import Computation, Instruction
from ir.ops import OPS
from ir.shapes import ArrayShape


class NonDifferentiableError(TypeError):
    """The function uses an op that has no VJP rule on a path that needs a gradient."""


class Emitter:
    """The small vocabulary VJP rules are written in: ops on new IR instructions."""

    def __init__(self, builder: Builder):
        self.b = builder

    def op(self, opcode: str, *operands, shape=None, **attrs) -> Instruction:
        return self.b.add(opcode, list(operands), attrs, shape=shape, metadata={})

    def constant(self, value, like: Instruction) -> Instruction:
        """`value` broadcast to `like`'s shape and dtype."""
        shape = like.shape
        scalar = self.b.constant(np.array(value, dtype=shape.dtype.to_numpy()), shape.dtype)
        if shape.rank == 0:
            return scalar
        return self.op("broadcast", scalar, shape=shape, dimensions=())

    def zeros(self, like: Instruction) -> Instruction:
        return self.constant(0, like)

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
        from ir.builder import scalar_computation
        comp = scalar_computation(opcode, dtype, self.b.names)
        self.b.extra_computations.append(comp)
        return comp

    def sum(self, a, dims) -> Instruction:
        """Sum over `dims` (kept dims stay in order)."""
        dims = tuple(sorted(dims))
        if not dims:
            return a
        zero = self.b.constant(np.array(0, a.shape.dtype.to_numpy()), a.shape.dtype)
        return self.b.add("reduce", [a, zero], {"dimensions": dims},
                          {"to_apply": self.reducer("add", a.shape.dtype)}, metadata={})


def _differentiable(inst: Instruction) -> bool:
    return not inst.shape.is_tuple and inst.shape.dtype.is_float


def vjp(comp: Computation, wrt: Sequence[int], names: Optional[NameTable] = None
        ) -> tuple[Computation, list[Computation]]:
    """The VJP computation of `comp` w.r.t. its parameters `wrt`, and new callees it uses."""
    from passes.vjp_rules import NON_DIFFERENTIABLE, VJP_RULES
    names = names or NameTable()
    b = Builder(f"{comp.name}_vjp", names)
    b.extra_computations = []
    emit = Emitter(b)
    params = comp.parameters
    mapping: dict[int, Instruction] = {}
    for p in params:
        mapping[id(p)] = b.parameter(p.attrs["number"], p.shape, p.name.split(".")[0])
    root = comp.root
    outputs = list(root.operands) if root.opcode == "tuple" else [root]
    cotangent_params = [b.parameter(len(params) + k, o.shape, "cotangent")
                        for k, o in enumerate(outputs)]
    order = [i for i in comp.post_order() if i.opcode != "parameter"]
    for inst in order:
        copy = Instruction(names.fresh(inst.name), inst.opcode, inst.shape,
                           [mapping[id(o)] for o in inst.operands], inst.attrs, inst.calls,
                           inst.literal, inst.metadata)
        b.computation.instructions.append(copy)
        mapping[id(inst)] = copy
    cotangents: dict[int, Instruction] = {}

    def accumulate(target: Instruction, value: Optional[Instruction]) -> None:
        if value is None or not _differentiable(target):
            return
        if value.shape != target.shape:
            value = emit.convert(value, target.shape.dtype)
        previous = cotangents.get(id(target))
        cotangents[id(target)] = value if previous is None else emit.add(previous, value)

    for out, ct in zip(outputs, cotangent_params):
        accumulate(out, ct)
    for inst in reversed(order):
        g = cotangents.get(id(inst))
        if g is None:
            continue
        rule = VJP_RULES.get(inst.opcode)
        if rule is None:
            if inst.opcode in NON_DIFFERENTIABLE:
                continue
            loop = inst.operands[0] if inst.opcode == "get-tuple-element" else inst
            if loop.opcode == "while":
                raise NonDifferentiableError(
                    f"reverse-mode differentiation of a while loop (%{loop.name}"
                    + (f", from {loop.source_line}" if loop.source_line else "")
                    + ") is not supported: its trip count is only known at run time "
                    "(JAX refuses it too)")
            raise NonDifferentiableError(
                f"cannot differentiate through '{inst.opcode}' (%{inst.name}"
                + (f", from {inst.source_line}" if inst.source_line else "") + ")")
        primal = mapping[id(inst)]
        operand_cts = rule(emit, primal, g)
        for operand, ct in zip(inst.operands, operand_cts):
            accumulate(operand, ct)
    results = [mapping[id(o)] for o in outputs]
    for number in wrt:
        p = params[number]
        ct = cotangents.get(id(p))
        results.append(ct if ct is not None else emit.zeros(mapping[id(p)]))
    b.finish(b.add("tuple", results, metadata={}))
    return b.computation, b.extra_computations
