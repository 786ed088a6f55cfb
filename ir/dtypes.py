"""Element types of the IR, spelled as XLA spells them."""
from __future__ import annotations

import enum

import numpy as np

try:  # bf16 needs a numpy dtype; ml_dtypes ships one (it comes with JAX).
    import ml_dtypes as _ml_dtypes
except ImportError:  # pragma: no cover - depends on the environment
    _ml_dtypes = None


class DType(enum.Enum):
    """One element type. `value` is the HLO spelling (`f32`, `pred`, ...)."""

    PRED = "pred"
    S8 = "s8"
    S16 = "s16"
    S32 = "s32"
    S64 = "s64"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U64 = "u64"
    F16 = "f16"
    BF16 = "bf16"
    F32 = "f32"
    F64 = "f64"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_signed_int(self) -> bool:
        return self in (DType.S8, DType.S16, DType.S32, DType.S64)

    @property
    def is_unsigned_int(self) -> bool:
        return self in (DType.U8, DType.U16, DType.U32, DType.U64)

    @property
    def is_int(self) -> bool:
        return self.is_signed_int or self.is_unsigned_int

    @property
    def is_pred(self) -> bool:
        return self is DType.PRED

    @property
    def bits(self) -> int:
        return _BITS[self]

    @property
    def itemsize(self) -> int:
        """Bytes one element takes in memory (pred is stored as one byte)."""
        return max(1, self.bits // 8)

    def to_numpy(self) -> np.dtype:
        """The numpy dtype that holds this type on the host."""
        if self is DType.BF16:
            if _ml_dtypes is None:
                raise TypeError("bf16 arrays on the host need the 'ml_dtypes' package")
            return np.dtype(_ml_dtypes.bfloat16)
        return np.dtype(_TO_NUMPY[self])


_FLOATS = (DType.F16, DType.BF16, DType.F32, DType.F64)
_BITS = {
    DType.PRED: 1, DType.S8: 8, DType.S16: 16, DType.S32: 32, DType.S64: 64,
    DType.U8: 8, DType.U16: 16, DType.U32: 32, DType.U64: 64,
    DType.F16: 16, DType.BF16: 16, DType.F32: 32, DType.F64: 64,
}
_TO_NUMPY = {
    DType.PRED: np.bool_, DType.S8: np.int8, DType.S16: np.int16, DType.S32: np.int32,
    DType.S64: np.int64, DType.U8: np.uint8, DType.U16: np.uint16, DType.U32: np.uint32,
    DType.U64: np.uint64, DType.F16: np.float16, DType.F32: np.float32, DType.F64: np.float64,
}
_FROM_NUMPY = {np.dtype(v): k for k, v in _TO_NUMPY.items()}


def from_numpy(dtype) -> DType:
    """The IR type for a numpy dtype; TypeError names the dtype when there is none."""
    dtype = np.dtype(dtype)
    if dtype in _FROM_NUMPY:
        return _FROM_NUMPY[dtype]
    if _ml_dtypes is not None and dtype == np.dtype(_ml_dtypes.bfloat16):
        return DType.BF16
    raise TypeError(f"flowjit does not support the dtype {dtype} "
                    f"(supported: {', '.join(d.value for d in DType)})")


def parse(text: str) -> DType:
    """The DType whose HLO spelling is `text`."""
    try:
        return DType(text)
    except ValueError:
        raise ValueError(f"unknown element type '{text}'") from None


def int_in_range(value: int, dtype: DType) -> bool:
    """Whether the integer `value` is representable in the integer type `dtype`."""
    info = np.iinfo(_TO_NUMPY[dtype])
    return int(info.min) <= value <= int(info.max)


def float_overflows(value: float, text: str, dtype: DType) -> bool:
    """Whether the literal `text` (read as `value`) is finite but too large for the float
    type `dtype`, so it would silently become infinity; spelled infinities are fine."""
    if text.lstrip("+-").lower() in ("inf", "infinity"):
        return False
    if value != value:   # NaN
        return False
    if value in (float("inf"), float("-inf")):
        return True       # 1e400: beyond even f64
    with np.errstate(over="ignore"):
        return bool(np.isinf(np.asarray(value).astype(dtype.to_numpy())))
