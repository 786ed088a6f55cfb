"""HLO text printer. The text parses back (ir.parser) to an identical module."""
from __future__ import annotations

import math

import numpy as np

from flowjit.ir.dtypes import DType
from flowjit.ir.module import COMPUTATION_ATTRS, Computation, Instruction, Module
from flowjit.ir.shapes import Shape

# Attributes whose value is a list of ints, printed `{1,0}`.
INT_LIST_ATTRS = (
    "dimensions", "dynamic_slice_sizes", "slice_sizes", "offset_dims", "collapsed_slice_dims",
    "start_index_map", "update_window_dims", "inserted_window_dims",
    "scatter_dims_to_operand_dims", "lhs_batch_dims", "rhs_batch_dims", "lhs_contracting_dims",
    "rhs_contracting_dims", "operand_batching_dims", "start_indices_batching_dims",
    "input_batching_dims", "scatter_indices_batching_dims",
)
INT_ATTRS = ("iota_dimension", "index", "index_vector_dim")
BOOL_ATTRS = ("indices_are_sorted", "unique_indices")
WORD_ATTRS = ("direction", "type", "kind", "algorithm")
# Printing order of known attributes: the order XLA prints them in.
ATTR_ORDER = (
    "slice", "padding", "iota_dimension", "index", "direction", "type", "dimensions",
    "lhs_batch_dims", "lhs_contracting_dims", "rhs_batch_dims", "rhs_contracting_dims",
    "offset_dims", "collapsed_slice_dims", "operand_batching_dims", "start_indices_batching_dims",
    "start_index_map", "index_vector_dim", "slice_sizes", "dynamic_slice_sizes",
    "update_window_dims", "inserted_window_dims", "input_batching_dims",
    "scatter_indices_batching_dims", "scatter_dims_to_operand_dims", "indices_are_sorted",
    "unique_indices", "kind", "algorithm", "custom_call_target",
)


def format_shape(shape: Shape) -> str:
    return str(shape)


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


def _format_attr(name: str, value) -> str:
    if name in INT_LIST_ATTRS:
        return "{" + ",".join(str(v) for v in value) + "}"
    if name in BOOL_ATTRS:
        return "true" if value else "false"
    if name == "slice":
        parts = [f"[{a}:{b}]" if c == 1 else f"[{a}:{b}:{c}]" for a, b, c in value]
        return "{" + ", ".join(parts) + "}"
    if name == "custom_call_target":
        return '"' + str(value) + '"'
    if name == "padding":
        if not value:
            return "{}"  # a scalar pad: an empty config must still print a value
        return "x".join(f"{lo}_{hi}" if interior == 0 else f"{lo}_{hi}_{interior}"
                        for lo, hi, interior in value)
    return str(value)


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
    if inst.opcode == "parameter":
        args = str(inst.attrs["number"])
    elif inst.opcode == "constant":
        args = format_literal(inst.literal, inst.shape.dtype)
    else:
        args = ", ".join(f"%{o.name}" for o in inst.operands)
    text = f"{'ROOT ' if is_root else ''}%{inst.name} = {inst.shape} {inst.opcode}({args})"
    attrs = [f"{k}={_format_attr(k, inst.attrs[k])}" for k in ATTR_ORDER if k in inst.attrs]
    for key in COMPUTATION_ATTRS:
        if key in inst.calls:
            value = inst.calls[key]
            if isinstance(value, list):
                attrs.append(f"{key}={{{', '.join('%' + c.name for c in value)}}}")
            else:
                attrs.append(f"{key}=%{value.name}")
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
