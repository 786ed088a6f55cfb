"""Batching (vmap) as an IR transformation.

`batch(comp, param_bdims, size, names)` builds a computation that computes `comp` for `size`
examples at once: parameter k carries an extra dimension of `size` at `param_bdims[k]` (None:
the parameter is shared by every example). Each instruction is rewritten by its opcode's rule
in `passes.batching_rules.BATCHING_RULES`; an instruction none of whose operands is batched
is copied unchanged, so work that does not depend on the batched inputs is done once.

A value's batch dimension (its *bdim*, as JAX calls it) is an int, None (not batched), or for a
tuple-shaped value a tuple of its elements' bdims. Rules keep the batch dimension where it is
when they can and move it to the front only when the op needs it there.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

from flowjit.ir.builder import Builder, NameTable
from flowjit.ir.module import Computation, Instruction
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.shapes import ArrayShape, Shape, TupleShape
from flowjit.passes.vjp import Emitter

BDim = Union[int, None, tuple]


class BatchingError(ValueError):
    """vmap cannot batch this program (an op without a rule, a batched output that must not
    be): the message names the instruction and the user's source line."""

    located = False     # whether the message already names the instruction


def is_batched(bdim: BDim) -> bool:
    """Whether a value with this bdim (an element of it, for a tuple) is batched."""
    if isinstance(bdim, tuple):
        return any(is_batched(b) for b in bdim)
    return bdim is not None


def batched_shape(shape: Shape, bdim: BDim, size: int) -> Shape:
    """`shape` with a dimension of `size` inserted at `bdim` (per element for tuples)."""
    if shape.is_tuple:
        return TupleShape(tuple(batched_shape(s, b, size) for s, b in zip(shape.elements, bdim)))
    if bdim is None:
        return shape
    return ArrayShape(shape.dtype, shape.dims[:bdim] + (size,) + shape.dims[bdim:])


def unbatched_bdim(shape: Shape) -> BDim:
    """The bdim of a value of `shape` that no example changes."""
    if shape.is_tuple:
        return tuple(unbatched_bdim(s) for s in shape.elements)
    return None


def where(inst: Instruction) -> str:
    """`%name (from file:line)` for error messages."""
    line = f" (from {inst.source_line})" if inst.source_line else ""
    return f"%{inst.name}{line}"


class Batcher(Emitter):
    """The vocabulary batching rules are written in: the VJP emitter's ops, plus moving a
    batch dimension and batching called computations (each made once per bdims)."""

    def __init__(self, builder: Builder, extra: list[Computation], size: int,
                 cache: Optional[dict] = None):
        super().__init__(builder, extra)
        self.size = size
        self.cache = cache if cache is not None else {}

    def sub_batcher(self, name: str) -> "Batcher":
        return Batcher(Builder(name, self.names), self.extra, self.size, self.cache)

    def move(self, value: Instruction, bdim: Optional[int], to: int) -> Instruction:
        """`value` (batched at `bdim`, or None: shared) with its batch dimension at `to`;
        a shared value is broadcast along the new dimension."""
        if bdim is None:
            shape = batched_shape(value.shape, to, self.size)
            dims = tuple(d if d < to else d + 1 for d in range(value.shape.rank))
            return self.op("broadcast", value, shape=shape, dimensions=dims)
        if bdim == to:
            return value
        order = [d for d in range(value.shape.rank) if d != bdim]
        order.insert(to, bdim)
        return self.transpose(value, order)

    def to_front(self, value: Instruction, bdim: Optional[int]) -> Instruction:
        return self.move(value, bdim, 0)

    def coerce(self, value: Instruction, bdim: BDim, target: BDim) -> Instruction:
        """`value` with bdim `target` (per element for tuples); BatchingError if a batched
        value must become shared."""
        if value.shape.is_tuple:
            if bdim == target:
                return value
            parts = [self.coerce(self.gte(value, k), bdim[k], target[k])
                     for k in range(len(value.shape.elements))]
            return self.op("tuple", *parts)
        if target is None:
            if bdim is not None:
                raise BatchingError("a batched value where an unbatched one is needed")
            return value
        return self.move(value, bdim, target)

    def batch_callee(self, comp: Computation, param_bdims: Sequence[BDim],
                     out_bdim: Optional[BDim] = None) -> tuple[Computation, BDim]:
        """`comp` batched for these parameter bdims (its root forced to `out_bdim` when
        given), and its root's bdim; made once per arguments and registered as extra."""
        key = (id(comp), repr(tuple(param_bdims)), repr(out_bdim))
        if key not in self.cache:
            inner = self.sub_batcher(f"{comp.name}_batched")
            result, bdim = _transform(inner, comp, list(param_bdims), out_bdim)
            self.extra.append(result)
            self.cache[key] = (comp, result, bdim)   # keeps `comp` alive: its id stays unique
        return self.cache[key][1], self.cache[key][2]

    def root_bdim(self, comp: Computation, param_bdims: Sequence[BDim]) -> BDim:
        """The bdim `comp`'s root gets when batched for these parameter bdims (worked out
        on a scratch copy: nothing is registered)."""
        probe = Batcher(Builder(f"{comp.name}_probe", self.names), [], self.size)
        return _transform(probe, comp, list(param_bdims), None)[1]


def _transform(b: Batcher, comp: Computation, param_bdims: list[BDim],
               out_bdim: Optional[BDim]) -> tuple[Computation, BDim]:
    from flowjit.passes.batching_rules import BATCHING_RULES
    values: dict[int, tuple[Instruction, BDim]] = {}
    for p in comp.parameters:
        bdim = param_bdims[p.attrs["number"]]
        shape = batched_shape(p.shape, bdim, b.size)
        values[id(p)] = (b.b.parameter(p.attrs["number"], shape, p.name.split(".")[0]), bdim)
    for inst in comp.post_order():
        if id(inst) in values:
            continue
        operands = [values[id(o)][0] for o in inst.operands]
        bdims = [values[id(o)][1] for o in inst.operands]
        if not any(is_batched(d) for d in bdims):
            copy = inst.copy_with(b.names.fresh(inst.name), operands)
            b.b.computation.instructions.append(copy)
            values[id(inst)] = (copy, unbatched_bdim(inst.shape))
            continue
        rule = BATCHING_RULES[inst.opcode]
        if isinstance(rule, Unsupported):
            error = BatchingError(f"vmap cannot batch '{inst.opcode}' {where(inst)}: "
                                  f"{rule.reason}")
            error.located = True
            raise error
        try:
            result, bdim = rule(b, inst, operands, bdims)
        except BatchingError as e:
            if e.located:
                raise
            located = BatchingError(f"vmap of '{inst.opcode}' {where(inst)}: {e}")
            located.located = True
            raise located from None
        values[id(inst)] = (result, bdim)
    root, bdim = values[id(comp.root)]
    if out_bdim is not None and bdim != out_bdim:
        root = b.coerce(root, bdim, out_bdim)
        bdim = out_bdim
    return b.b.finish(root), bdim


def batch(comp: Computation, param_bdims: Sequence[BDim], size: int,
          names: Optional[NameTable] = None, out_bdims: Optional[Sequence[Optional[int]]] = None,
          sum_match: bool = False) -> tuple[Computation, list[Computation], BDim]:
    """`comp` batched over `size` examples: parameter k batched at `param_bdims[k]`.

    Returns the batched computation, the new computations it calls, and its root's bdim.
    `out_bdims` (one per output leaf: a tuple root's operands, else the root) asks for each
    output's batch dimension; an unbatched output asked for a dimension is broadcast. An
    output asked for None that is batched is summed over the batch with `sum_match`, else
    a BatchingError names it (JAX's rules)."""
    extra: list[Computation] = []
    b = Batcher(Builder(f"{comp.name}_batched", names or NameTable()), extra, size)
    result, bdim = _transform(b, comp, list(param_bdims), None)
    if out_bdims is None:
        return result, extra, bdim
    tupled = comp.root.shape.is_tuple
    values = [b.gte(result.root, k) for k in range(len(bdim))] if tupled else [result.root]
    have = list(bdim) if tupled else [bdim]
    outputs = []
    for k, (value, got, want) in enumerate(zip(values, have, out_bdims)):
        if want is None and got is not None and sum_match:
            value = b.sum(value, [got])
        elif want is None and got is not None:
            raise BatchingError(f"output {k} of the function depends on the mapped inputs, "
                                "but its out_axes is None (it must not vary along the "
                                "mapped axis)")
        else:
            value = b.coerce(value, got, want)
        outputs.append(value)
    result.root = b.op("tuple", *outputs) if tupled else outputs[0]
    result.instructions = result.post_order()
    return result, extra, tuple(out_bdims) if tupled else out_bdims[0]
