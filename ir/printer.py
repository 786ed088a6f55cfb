"""HLO text printer. The text parses back (ir.parser) to an identical module."""
from __future__ import annotations

import math

import numpy as np

from flowjit.ir.dtypes import DType
from flowjit.ir.attributes import COMMON_ATTRS, Attr, AttrKind
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import spec

def format_scalar(value, dtype: DType) -> str:
    """One literal element, spelled so that parsing it gives back the same bits."""
    if dtype is DType.PRED:
        return "true" if bool(value) else "false"
    if dtype.is_int:
        return str(int(value))
    f = float(value)
    if math.isnan(f):
        return "-nan" if math.copysign(1.0, f) < 0 else "nan"  # as XLA prints it
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if dtype in (DType.F32, DType.F16):
        text = str(np.asarray(value, dtype=dtype.to_numpy())[()])  # shortest round-trip form
    else:
        text = repr(f)  # f64 is repr's own; bf16 values are exact in f64
    return text[:-2] if text.endswith(".0") else text


def format_literal(literal: np.ndarray, dtype: DType) -> str:
    array = np.asarray(literal)
    if array.ndim == 0:
        return format_scalar(array[()], dtype)

    def nested(a: np.ndarray) -> str:
        if a.ndim == 1:
            return "{" + ", ".join(format_scalar(v, dtype) for v in a) + "}"
        return "{ " + ", ".join(nested(sub) for sub in a) + " }"
    return nested(array)


def _int_list(value) -> str:
    return "{" + ",".join(str(v) for v in value) + "}"


def _slice(value) -> str:
    parts = [f"[{a}:{b}]" if c == 1 else f"[{a}:{b}:{c}]" for a, b, c in value]
    return "{" + ", ".join(parts) + "}"


def _padding(value) -> str:
    if not value:
        return "{}"  # a scalar pad: an empty config must still print a value
    return "x".join(f"{lo}_{hi}" if interior == 0 else f"{lo}_{hi}_{interior}"
                    for lo, hi, interior in value)


def _buffer(value) -> str:
    parts = ["output" if s.output else f"{{offset={s.offset},size={s.size}}}" for s in value]
    return parts[0] if len(parts) == 1 else "{" + ",".join(parts) + "}"


def _window(dims) -> str:
    """XLA's spelling: `size` always, every other field only when one dimension departs
    from its default."""
    def field(name, values, default, spell=str):
        return [f"{name}=" + "x".join(spell(v) for v in values)] if any(
            v != default for v in values) else []
    if not dims:
        return "{}"
    parts = ["size=" + "x".join(str(d.size) for d in dims)]
    parts += field("stride", [d.stride for d in dims], 1)
    parts += field("pad", [(d.padding_low, d.padding_high) for d in dims], (0, 0),
                   lambda p: f"{p[0]}_{p[1]}")
    parts += field("lhs_dilate", [d.base_dilation for d in dims], 1)
    parts += field("rhs_dilate", [d.window_dilation for d in dims], 1)
    parts += field("rhs_reversal", [int(d.reversal) for d in dims], 0)
    return "{" + " ".join(parts) + "}"


# One formatter per attribute kind: the printer's half of the attribute schema.
FORMATTERS = {
    AttrKind.INT: str,
    AttrKind.INT_LIST: _int_list,
    AttrKind.BOOL: lambda value: "true" if value else "false",
    AttrKind.WORD: str,
    AttrKind.STRING: lambda value: '"' + escape_string(str(value)) + '"',
    AttrKind.SLICE: _slice,
    AttrKind.PADDING: _padding,
    AttrKind.COMPUTATION: lambda callee: f"%{callee.name}",
    AttrKind.COMPUTATIONS: lambda callees: "{" + ", ".join("%" + c.name for c in callees) + "}",
    AttrKind.TRIP_COUNT: lambda n: f'{{"known_trip_count":{{"n":"{n}"}}}}',
    AttrKind.BUFFER: _buffer,
    AttrKind.WINDOW: _window,
    AttrKind.DIM_LABELS: lambda labels: labels.text(),
    AttrKind.LAYOUTS: lambda layouts: "{" + ", ".join(x.text() for x in layouts) + "}",
    AttrKind.FFI_CONFIG: lambda config: "{" + ", ".join(
        f"{key} = {value} : {typ}" for key, value, typ in config) + "}",
}


def _attribute_text(inst: Instruction, attribute: Attr):
    """`name=value` for one schema attribute of `inst`, or None when it has no value."""
    holder = inst.calls if attribute.kind in (AttrKind.COMPUTATION,
                                              AttrKind.COMPUTATIONS) else inst.attrs
    if attribute.name not in holder:
        return None
    return f"{attribute.text_name}={FORMATTERS[attribute.kind](holder[attribute.name])}"


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape_string(text: str) -> str:
    """C-escape `text` as XLA does, keeping it on one line; non-ASCII stays UTF-8."""
    return "".join(_ESCAPES.get(c) or (f"\\{ord(c):03o}" if ord(c) < 0x20 or ord(c) == 0x7f
                                       else c) for c in text)


def _format_metadata(metadata: dict) -> str:
    parts = []
    for key, value in metadata.items():
        if isinstance(value, int):
            parts.append(f"{key}={value}")
        else:
            parts.append(f'{key}="{escape_string(str(value))}"')
    return "{" + " ".join(parts) + "}"


def format_instruction(inst: Instruction, is_root: bool = False,
                       metadata: bool = True) -> str:
    """`ROOT %name = shape opcode(operands), attr=value, ...` for one instruction."""
    op = spec(inst.opcode)
    if inst.opcode is Opcode.PARAMETER:
        args = str(inst.attrs["number"])
    elif inst.opcode is Opcode.CONSTANT:
        args = format_literal(inst.literal, inst.shape.dtype)
    else:
        args = ", ".join(f"%{o.name}" for o in inst.operands)
    text = f"{'ROOT ' if is_root else ''}%{inst.name} = {inst.shape} {inst.opcode}({args})"
    schema = () if inst.opcode is Opcode.PARAMETER else op.attrs  # its number: above
    attrs = [text for text in (_attribute_text(inst, a) for a in schema + COMMON_ATTRS)
             if text is not None]
    attrs.extend(f"{k}={v}" for k, v in inst.extra_attrs.items())
    if metadata and inst.metadata:
        attrs.append(f"metadata={_format_metadata(inst.metadata)}")
    return text + "".join(", " + a for a in attrs)


def print_computation(comp: Computation, is_entry: bool = False, metadata: bool = True) -> str:
    lines = [f"{'ENTRY ' if is_entry else ''}%{comp.name} {{"]
    for inst in comp.instructions:
        lines.append("  " + format_instruction(inst, inst is comp.root, metadata))
    lines.append("}")
    return "\n".join(lines)


def print_module(module: Module, metadata: bool = True) -> str:
    """The whole module as HLO text: callees first, the entry last."""
    blocks = [f"HloModule {module.name}"]
    for comp in module.computations:
        blocks.append(print_computation(comp, comp is module.entry, metadata))
    return "\n\n".join(blocks) + "\n"
