"""The typed attribute schema: each op's attributes, their kinds and which are required.

An op's `OpSpec.attrs` lists `Attr`s in the order XLA prints them; the printer and the
parser format and decode each attribute by its `AttrKind` (one formatter and one decoder
per kind), so an op's attributes are declared once. Attributes an op does not declare are
kept verbatim (`Instruction.extra_attrs`), as XLA keeps ones it does not know.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional


class AttrKind(enum.Enum):
    """How an attribute's value is spelled in HLO text and held in `Instruction.attrs`."""

    INT = "int"                     # 3
    INT_LIST = "int list"           # {1,0}                       -> (1, 0)
    BOOL = "bool"                   # true                        -> True
    WORD = "word"                   # GT, kLoop                   -> "GT"
    STRING = "string"               # "target"                    -> "target"
    SLICE = "slice"                 # {[0:4], [1:9:2]}            -> ((0, 4, 1), (1, 9, 2))
    PADDING = "padding"             # 1_2x0_0_1                   -> ((1, 2, 0), (0, 0, 1))
    COMPUTATION = "computation"     # %body                       (held in `calls`)
    COMPUTATIONS = "computations"   # {%a, %b}                    (held in `calls`)
    TRIP_COUNT = "trip count"       # backend_config={"known_trip_count":{"n":"5"}} -> 5
    BUFFER = "buffer"               # {offset=0,size=64} / output -> BufferSlices
    WINDOW = "window"               # {size=3x3 stride=2x2 pad=1_1x1_1} -> WindowDims
    DIM_LABELS = "dim labels"       # b01f_01io->b01f             -> ConvDimensionLabels
    LAYOUTS = "layouts"             # {f32[4,4]{0,1}, f32[4]{0}}  -> (OperandLayout, ...)
    FFI_CONFIG = "ffi config"       # {uplo = 76 : ui8}           -> (("uplo", 76, "ui8"),)


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: its key in `attrs`, kind, whether it must be present, and
    its spelling in text when that differs from the key."""

    name: str
    kind: AttrKind
    required: bool = True
    spelling: Optional[str] = None

    @property
    def text_name(self) -> str:
        return self.spelling or self.name


def optional(name: str, kind: AttrKind) -> Attr:
    return Attr(name, kind, required=False)


@dataclass(frozen=True)
class BufferSlice:
    """Where one array of an instruction's result lives: bytes of the arena, or an output."""

    offset: int = 0
    size: int = 0
    output: bool = False


@dataclass(frozen=True)
class WindowDim:
    """One dimension of a convolution's or reduce-window's window (XLA's `WindowDimension`).

    `base_dilation` (XLA's lhs_dilate) spreads the operand's elements apart; `window_dilation`
    (rhs_dilate) spreads the window's taps; `reversal` flips the window (rhs_reversal)."""

    size: int
    stride: int = 1
    padding_low: int = 0
    padding_high: int = 0
    window_dilation: int = 1
    base_dilation: int = 1
    reversal: bool = False

    @property
    def dilated_size(self) -> int:
        return 0 if self.size == 0 else (self.size - 1) * self.window_dilation + 1


def window(sizes, strides=None, padding=None, window_dilation=None, base_dilation=None,
           reversal=None) -> tuple[WindowDim, ...]:
    """A window from per-dimension lists (defaults: stride 1, no padding, no dilation)."""
    n = len(sizes)
    strides = strides or (1,) * n
    padding = padding or ((0, 0),) * n
    window_dilation = window_dilation or (1,) * n
    base_dilation = base_dilation or (1,) * n
    reversal = reversal or (False,) * n
    return tuple(WindowDim(int(s), int(st), int(lo), int(hi), int(wd), int(bd), bool(r))
                 for s, st, (lo, hi), wd, bd, r in zip(sizes, strides, padding,
                                                       window_dilation, base_dilation,
                                                       reversal))


# A loop's trip count, when known, spelled as XLA spells it.
KNOWN_TRIP_COUNT = Attr("known_trip_count", AttrKind.TRIP_COUNT, required=False,
                        spelling="backend_config")
# Every op may carry the buffer the `assign-buffers` pass gave its result.
BUFFER = Attr("buffer", AttrKind.BUFFER, required=False)
COMMON_ATTRS = (BUFFER,)


@dataclass(frozen=True)
class ConvDimensionLabels:
    """A convolution's `dim_labels` (XLA's ConvolutionDimensionNumbers), as JAX holds them:
    `lhs` = (batch, feature, spatial...), `rhs` = (output feature, input feature,
    spatial...), `out` = (batch, feature, spatial...), each naming dimensions of its array.
    Text: `b01f_01io->b01f` (b/f or o/i where those dims sit, digit k at spatial dim k)."""

    lhs: tuple[int, ...]
    rhs: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def spatial_count(self) -> int:
        return len(self.lhs) - 2

    @staticmethod
    def _spell(spec: tuple[int, ...], first: str, second: str) -> str:
        letters = [""] * len(spec)
        letters[spec[0]], letters[spec[1]] = first, second
        for k, dim in enumerate(spec[2:]):
            letters[dim] = str(k)
        return "".join(letters)

    def text(self) -> str:
        return (f"{self._spell(self.lhs, 'b', 'f')}_{self._spell(self.rhs, 'o', 'i')}->"
                f"{self._spell(self.out, 'b', 'f')}")

    @staticmethod
    def _read(part: str, first: str, second: str) -> tuple[int, ...]:
        spatial = len(part) - 2
        wanted = sorted([first, second] + [str(k) for k in range(spatial)])
        if spatial < 0 or spatial > 10 or sorted(part) != wanted:
            raise ValueError(f"'{part}' must name {first}, {second} and 0..{spatial - 1} once")
        return (part.index(first), part.index(second)) + tuple(
            part.index(str(k)) for k in range(spatial))

    @classmethod
    def parse(cls, text: str) -> "ConvDimensionLabels":
        """`b01f_01io->b01f` -> labels; ValueError on anything else."""
        inputs, arrow, out = text.partition("->")
        lhs, underscore, rhs = inputs.partition("_")
        if not (arrow and underscore) or not len(lhs) == len(rhs) == len(out):
            raise ValueError(f"dim_labels '{text}' is not lhs_rhs->out of one rank")
        return cls(cls._read(lhs, "b", "f"), cls._read(rhs, "o", "i"), cls._read(out, "b", "f"))


@dataclass(frozen=True)
class OperandLayout:
    """One entry of a custom call's `operand_layout_constraints`: the operand's element type
    and dims as text spells them, and the physical order of its dims (minor to major).
    Layouts change where elements sit, never their values: flowjit's buffers are row-major
    and a kernel that needs another order (LAPACK's column-major) transposes."""

    dtype: str
    dims: tuple[int, ...]
    minor_to_major: tuple[int, ...]

    def text(self) -> str:
        dims = ",".join(map(str, self.dims))
        order = ",".join(map(str, self.minor_to_major))
        return f"{self.dtype}[{dims}]{{{order}}}"


def column_major(rank: int) -> tuple[int, ...]:
    """The minor-to-major order LAPACK wants: each trailing matrix column-major, leading
    (batch) dims major."""
    if rank < 2:
        return tuple(range(rank - 1, -1, -1))
    return (rank - 2, rank - 1) + tuple(range(rank - 3, -1, -1))
