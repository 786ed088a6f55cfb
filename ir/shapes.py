"""Static shapes: an array shape (dtype + dims) or a tuple of shapes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

from flowjit.ir.dtypes import DType


@dataclass(frozen=True, slots=True)
class ArrayShape:
    """A dense array of `dtype` with static `dims` (row-major in memory)."""

    dtype: DType
    dims: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
        if any(d < 0 for d in self.dims):
            raise ValueError(f"negative dimension in shape {self}")

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_tuple(self) -> bool:
        return False

    def with_dtype(self, dtype: DType) -> "ArrayShape":
        return ArrayShape(dtype, self.dims)

    def __str__(self) -> str:
        return f"{self.dtype.value}[{','.join(map(str, self.dims))}]"


@dataclass(frozen=True, slots=True)
class TupleShape:
    """A tuple of shapes (results of `tuple`, multi-output reduce, loop state)."""

    elements: tuple["Shape", ...]

    @property
    def is_tuple(self) -> bool:
        return True

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.elements)

    def __str__(self) -> str:
        return "(" + ", ".join(str(e) for e in self.elements) + ")"


Shape = Union[ArrayShape, TupleShape]

# Limits on what the compiler accepts, so that sizes, offsets and index arithmetic fit in
# 64 bits everywhere and recursive walks over shapes stay shallow.
MAX_RANK = 32                  # numpy's own limit (1.x); XLA programs stay far below it
MAX_ARRAY_BYTES = 1 << 47      # 128 TiB, the user address space of x86-64 and arm64
MAX_TUPLE_DEPTH = 64


def array_shape_problem(shape: ArrayShape) -> Optional[str]:
    """Why no program can hold an array of `shape` (too many dims, too many bytes), or None."""
    if shape.rank > MAX_RANK:
        return f"shape {shape} has rank {shape.rank}; the most flowjit supports is {MAX_RANK}"
    # An empty array's other dims still multiply into strides and index arithmetic.
    span = math.prod(max(d, 1) for d in shape.dims) * shape.dtype.itemsize
    if span > MAX_ARRAY_BYTES:
        return (f"shape {shape} spans {span} bytes, more than any machine can address "
                f"(2**47)")
    return None


def shape_problem(shape: Shape) -> Optional[str]:
    """Like array_shape_problem, for every array of a (possibly nested) tuple shape too, and
    tuples nested deeper than MAX_TUPLE_DEPTH; walks the shape without recursion."""
    pending = [(shape, 0)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, TupleShape):
            if depth >= MAX_TUPLE_DEPTH:
                return f"tuple shape nested deeper than {MAX_TUPLE_DEPTH}"
            pending.extend((e, depth + 1) for e in current.elements)
        elif not isinstance(current, ArrayShape):
            return f"{current!r} is not a shape"
        else:
            problem = array_shape_problem(current)
            if problem:
                return problem
    return None


def scalar(dtype: DType) -> ArrayShape:
    return ArrayShape(dtype, ())


def leaves(shape: Shape) -> list[ArrayShape]:
    """The array shapes of a (possibly nested) tuple shape, in order."""
    if shape.is_tuple:
        return [leaf for e in shape.elements for leaf in leaves(e)]
    return [shape]


def strides(dims: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major element strides of `dims`."""
    out, acc = [], 1
    for d in reversed(dims):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))
