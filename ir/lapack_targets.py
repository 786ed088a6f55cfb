"""The LAPACK custom calls JAX emits on the CPU (`lapack_spotrf_ffi`, ...), one row each.

A target's row says what it computes (the LAPACK routine), the operands it takes, the
`backend_config` keys it needs (LAPACK's one-character options, held as their character
codes, `uplo = 76 : ui8` for 'L') and the shape of its result. Operands carry leading batch
dims; each matrix is one problem. The values are logical (HLO's semantics do not depend on
layouts): `operand_layout_constraints`, when present, must ask for LAPACK's column-major
matrices, which the CPU kernel provides by transposing in and out of its own row-major
buffers. The result tuples are those of jaxlib's FFI kernels (lapack_kernels.cc):

  potrf (a)      -> (factor, info[batch])              lower/upper triangle per `uplo`
  getrf (a)      -> (lu, ipiv[batch, min(m,n)], info)  ipiv 1-based, as LAPACK's
  trsm  (a, b)   -> x                                  side, uplo, trans_x, diag
  geqrf (a)      -> (qr, tau[batch, min(m,n)])
  orgqr (a, tau) -> q                                  the first n columns of Q
  syevd (a)      -> (vectors, values[batch, n], info)  mode V or N, uplo
  gesdd (a)      -> (a', s[batch, k], u, vt, info)     mode A, S or N (u, vt unset)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

from flowjit.ir.attributes import OperandLayout, column_major
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError
from flowjit.ir.shapes import ArrayShape, Shape, TupleShape

_TARGET = re.compile(r"lapack_([sdcz])([a-z]+)_ffi")
_DTYPES = {"s": DType.F32, "d": DType.F64}


@dataclass(frozen=True)
class LapackTarget:
    """One LAPACK routine as a custom call: its operand count, the backend_config keys it
    reads with the characters each may hold, and its result shape from its operands."""

    routine: str
    operands: int
    options: dict
    result: Callable[[list[ArrayShape], dict], Shape]


@dataclass(frozen=True)
class LapackCall:
    """A parsed target name: the routine and the element type of its matrices."""

    routine: str
    dtype: DType


def _fail(target: str, message: str, shapes) -> ShapeError:
    shown = ", ".join(str(s) for s in shapes)
    return ShapeError(f"custom-call {target!r}: {message} (operands: {shown})")


def _matrix(shape: ArrayShape) -> tuple[tuple[int, ...], int, int]:
    """(batch dims, rows, columns) of a stack of matrices."""
    if shape.rank < 2:
        raise ValueError("needs a matrix (rank >= 2)")
    return shape.dims[:-2], shape.dims[-2], shape.dims[-1]


def _with(shape: ArrayShape, dims, dtype: Optional[DType] = None) -> ArrayShape:
    return ArrayShape(dtype or shape.dtype, tuple(dims))


def _info(batch) -> ArrayShape:
    return ArrayShape(DType.S32, tuple(batch))


def _square(shape: ArrayShape) -> tuple[tuple[int, ...], int]:
    batch, m, n = _matrix(shape)
    if m != n:
        raise ValueError(f"needs square matrices, got {m}x{n}")
    return batch, n


def _potrf(shapes, config):
    batch, _ = _square(shapes[0])
    return TupleShape((shapes[0], _info(batch)))


def _getrf(shapes, config):
    batch, m, n = _matrix(shapes[0])
    return TupleShape((shapes[0], _with(shapes[0], batch + (min(m, n),), DType.S32),
                       _info(batch)))


def _trsm(shapes, config):
    a, b = shapes
    batch, k = _square(a)
    b_batch, m, n = _matrix(b)
    if b_batch != batch:
        raise ValueError("a and b must have the same batch dims")
    wanted = m if config["side"] == "L" else n
    if k != wanted:
        raise ValueError(f"a is {k}x{k}; side {config['side']} of a {m}x{n} b needs "
                         f"{wanted}x{wanted}")
    return b


def _geqrf(shapes, config):
    batch, m, n = _matrix(shapes[0])
    return TupleShape((shapes[0], _with(shapes[0], batch + (min(m, n),))))


def _orgqr(shapes, config):
    a, tau = shapes
    batch, m, n = _matrix(a)
    if tau.dims[:-1] != batch or tau.rank != len(batch) + 1:
        raise ValueError("tau must be [batch..., k]")
    if not tau.dims[-1] <= n <= m:
        raise ValueError(f"needs k <= n <= m, got k={tau.dims[-1]}, {m}x{n}")
    return a


def _syevd(shapes, config):
    batch, n = _square(shapes[0])
    return TupleShape((shapes[0], _with(shapes[0], batch + (n,)), _info(batch)))


def _gesdd(shapes, config):
    a = shapes[0]
    batch, m, n = _matrix(a)
    k = min(m, n)
    u, vt = ((m, k), (k, n)) if config["mode"] == "S" else ((m, m), (n, n))
    return TupleShape((a, _with(a, batch + (k,)), _with(a, batch + u), _with(a, batch + vt),
                       _info(batch)))


_UPLO = {"uplo": "LU"}
TARGETS: dict[str, LapackTarget] = {
    "potrf": LapackTarget("potrf", 1, _UPLO, _potrf),
    "getrf": LapackTarget("getrf", 1, {}, _getrf),
    "trsm": LapackTarget("trsm", 2, {"side": "LR", "uplo": "LU", "trans_x": "NTC",
                                     "diag": "NU"}, _trsm),
    "geqrf": LapackTarget("geqrf", 1, {}, _geqrf),
    "orgqr": LapackTarget("orgqr", 2, {}, _orgqr),
    "syevd": LapackTarget("syevd", 1, {"mode": "VN", "uplo": "LU"}, _syevd),
    "gesdd": LapackTarget("gesdd", 1, {"mode": "ASN"}, _gesdd),
}


def target_name(routine: str, dtype: DType) -> str:
    """The custom-call target JAX uses for `routine` on `dtype` matrices."""
    prefix = {v: k for k, v in _DTYPES.items()}[dtype]
    return f"lapack_{prefix}{routine}_ffi"


def parse_target(target: str) -> Optional[LapackCall]:
    """The routine a `lapack_?xxx_ffi` name calls; None for a name of another form;
    ShapeError for a LAPACK name flowjit does not run."""
    match = _TARGET.fullmatch(target)
    if match is None:
        return None
    prefix, routine = match.groups()
    if prefix not in _DTYPES:
        raise ShapeError(f"custom-call {target!r}: complex LAPACK routines need complex "
                         f"element types, which flowjit does not have")
    if routine not in TARGETS:
        raise ShapeError(f"custom-call {target!r}: unknown LAPACK routine '{routine}' "
                         f"(flowjit runs {', '.join(sorted(TARGETS))})")
    return LapackCall(routine, _DTYPES[prefix])


def options(attrs: dict) -> dict:
    """backend_config entries as characters: {'uplo': 'L', ...}."""
    return {key: chr(value) for key, value, _ in attrs.get("ffi_config", ())}


def lapack_result_shape(target: str, shapes: list, attrs: dict) -> Optional[Shape]:
    """The result shape of LAPACK custom call `target` on `shapes`; None when `target` is
    not a LAPACK name. ShapeError names what does not fit: operand count, element types,
    batch dims, layouts, a missing or invalid option."""
    call = parse_target(target)
    if call is None:
        return None
    row = TARGETS[call.routine]
    if len(shapes) != row.operands:
        raise _fail(target, f"takes {row.operands} operands, got {len(shapes)}", shapes)
    if any(s.is_tuple or s.dtype != call.dtype for s in shapes):
        raise _fail(target, f"operands must be {call.dtype} arrays", shapes)
    config = options(attrs)
    for key, allowed in row.options.items():
        if config.get(key) not in tuple(allowed):
            raise _fail(target, f"backend_config needs {key} = one of "
                        f"{', '.join(str(ord(c)) + ' (' + c + ')' for c in allowed)}", shapes)
    _check_layouts(target, shapes, attrs.get("operand_layout_constraints"))
    try:
        return row.result(shapes, config)
    except ValueError as e:
        raise _fail(target, str(e), shapes) from None


def _check_layouts(target: str, shapes, layouts) -> None:
    if layouts is None:
        return
    if len(layouts) != len(shapes):
        raise _fail(target, f"{len(layouts)} operand layouts for {len(shapes)} operands",
                    shapes)
    for k, (shape, layout) in enumerate(zip(shapes, layouts)):
        if layout.dims != shape.dims or layout.dtype != str(shape.dtype):
            raise _fail(target, f"layout {layout.text()} of operand {k} names another "
                        f"shape", shapes)
        if layout.minor_to_major != column_major(shape.rank):
            wanted = ",".join(map(str, column_major(shape.rank)))
            raise _fail(target, f"operand {k} layout {layout.text()}: LAPACK needs "
                        f"{{{wanted}}} (column-major matrices)", shapes)


def layouts_for(shapes: list) -> tuple:
    """The operand_layout_constraints JAX writes for LAPACK operands of these shapes."""
    return tuple(OperandLayout(str(s.dtype), s.dims, column_major(s.rank)) for s in shapes)


def runnable_custom_call(target) -> bool:
    """Whether flowjit can run a custom call to `target` (its own markers and the LAPACK
    calls; parse_target has already rejected malformed LAPACK names)."""
    if target in ("stop_gradient", "flowjit.custom_vjp"):
        return True
    try:
        return isinstance(target, str) and parse_target(target) is not None
    except ShapeError:
        return False
