"""Static shapes: an array shape (dtype + dims) or a tuple of shapes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

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
