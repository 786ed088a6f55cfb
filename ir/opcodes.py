"""Opcodes: one enum member per op, its value the op's HLO spelling (XLA's `HloOpcode`).

An `Opcode` is also a `str` equal to its spelling and hashing like it, so text read from
HLO and the enum name the same op; `str(Opcode.ADD)` is `add`. Everything else known about
an op is declared once, in `flowjit.ir.ops`.
"""
from __future__ import annotations

import enum


class Opcode(str, enum.Enum):
    """An HLO opcode; the value is its spelling in HLO text."""

    PARAMETER = "parameter"
    CONSTANT = "constant"
    IOTA = "iota"
    CONVERT = "convert"
    COPY = "copy"
    BITCAST_CONVERT = "bitcast-convert"
    NEGATE = "negate"
    ABS = "abs"
    SIGN = "sign"
    EXPONENTIAL = "exponential"
    EXPONENTIAL_MINUS_ONE = "exponential-minus-one"
    LOG = "log"
    LOG_PLUS_ONE = "log-plus-one"
    SQRT = "sqrt"
    RSQRT = "rsqrt"
    CBRT = "cbrt"
    TANH = "tanh"
    LOGISTIC = "logistic"
    SINE = "sine"
    COSINE = "cosine"
    TAN = "tan"
    ERF = "erf"
    FLOOR = "floor"
    CEIL = "ceil"
    ROUND_NEAREST_EVEN = "round-nearest-even"
    ROUND_NEAREST_AFZ = "round-nearest-afz"
    NOT = "not"
    POPCNT = "popcnt"
    CLZ = "clz"
    IS_FINITE = "is-finite"
    ADD = "add"
    SUBTRACT = "subtract"
    MULTIPLY = "multiply"
    DIVIDE = "divide"
    REMAINDER = "remainder"
    POWER = "power"
    MAXIMUM = "maximum"
    MINIMUM = "minimum"
    ATAN2 = "atan2"
    AND = "and"
    OR = "or"
    XOR = "xor"
    SHIFT_LEFT = "shift-left"
    SHIFT_RIGHT_ARITHMETIC = "shift-right-arithmetic"
    SHIFT_RIGHT_LOGICAL = "shift-right-logical"
    COMPARE = "compare"
    SELECT = "select"
    CLAMP = "clamp"
    BROADCAST = "broadcast"
    RESHAPE = "reshape"
    TRANSPOSE = "transpose"
    SLICE = "slice"
    DYNAMIC_SLICE = "dynamic-slice"
    DYNAMIC_UPDATE_SLICE = "dynamic-update-slice"
    CONCATENATE = "concatenate"
    PAD = "pad"
    REVERSE = "reverse"
    REDUCE = "reduce"
    REDUCE_WINDOW = "reduce-window"
    SELECT_AND_SCATTER = "select-and-scatter"
    DOT = "dot"
    GATHER = "gather"
    SCATTER = "scatter"
    TUPLE = "tuple"
    GET_TUPLE_ELEMENT = "get-tuple-element"
    CALL = "call"
    FUSION = "fusion"
    WHILE = "while"
    CONDITIONAL = "conditional"
    CUSTOM_CALL = "custom-call"
    CONVOLUTION = "convolution"
    CHOLESKY = "cholesky"
    TRIANGULAR_SOLVE = "triangular-solve"
    SORT = "sort"
    TOPK = "topk"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__
    __hash__ = str.__hash__

    @classmethod
    def parse(cls, spelling: str) -> "Opcode":
        """The opcode spelled `spelling`; KeyError names an unknown one."""
        try:
            return cls(spelling)
        except ValueError:
            raise KeyError(f"unknown opcode '{spelling}'") from None
