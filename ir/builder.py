"""Building computations in Python: shapes inferred, names made unique."""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np

from flowjit.ir import dtypes
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.ops import infer_shape
from flowjit.ir.shapes import ArrayShape, Shape


class NameTable:
    """Hands out `base.N` names unique within one module."""

    def __init__(self, taken: Sequence[str] = ()):
        self.taken = set(taken)
        self.counter = itertools.count(1)

    @classmethod
    def for_module(cls, module: Module) -> "NameTable":
        names = [i.name for c in module.computations for i in c.instructions]
        return cls(names + [c.name for c in module.computations])

    def fresh(self, base: str) -> str:
        base = base.rsplit(".", 1)[0] if base.rsplit(".", 1)[-1].isdigit() else base
        while True:
            name = f"{base}.{next(self.counter)}"
            if name not in self.taken:
                self.taken.add(name)
                return name


class Builder:
    """Appends instructions to one computation; shapes come from the op table."""

    def __init__(self, name: str, names: Optional[NameTable] = None):
        self.names = names or NameTable()
        self.computation = Computation(self.names.fresh(name))
        self.metadata: dict = {}

    def parameter(self, number: int, shape: Shape, name: str = "param") -> Instruction:
        return self._append(Instruction(self.names.fresh(name), "parameter", shape,
                                        attrs={"number": number}))

    def constant(self, value, dtype: Optional[dtypes.DType] = None) -> Instruction:
        array = np.asarray(value)
        dtype = dtype or dtypes.from_numpy(array.dtype)
        array = np.array(array, dtype=dtype.to_numpy(), order="C")  # keeps rank 0
        shape = ArrayShape(dtype, array.shape)
        return self._append(Instruction(self.names.fresh("constant"), "constant", shape,
                                        literal=array))

    def add(self, opcode: str, operands: Sequence[Instruction], attrs: Optional[dict] = None,
            calls: Optional[dict] = None, shape: Optional[Shape] = None,
            metadata: Optional[dict] = None) -> Instruction:
        """Append `opcode(operands)`; ShapeError if the operands do not fit it."""
        attrs = dict(attrs or {})
        calls = dict(calls or {})
        result = infer_shape(opcode, [o.shape for o in operands], attrs, calls, shape)
        inst = Instruction(self.names.fresh(opcode.replace("-", "_")), opcode, result, operands,
                           attrs, calls, metadata=metadata if metadata is not None
                           else dict(self.metadata))
        return self._append(inst)

    def _append(self, inst: Instruction) -> Instruction:
        self.computation.instructions.append(inst)
        self.computation.root = inst
        return inst

    def finish(self, root: Instruction) -> Computation:
        self.computation.root = root
        return self.computation


def scalar_computation(opcode: str, dtype: dtypes.DType, names: NameTable) -> Computation:
    """`ROOT opcode(p0, p1)` over two scalars: the reducer of a sum, max, ... reduce."""
    b = Builder(f"{opcode}_reducer", names)
    shape = ArrayShape(dtype, ())
    lhs, rhs = b.parameter(0, shape, "lhs"), b.parameter(1, shape, "rhs")
    return b.finish(b.add(opcode, [lhs, rhs]))
