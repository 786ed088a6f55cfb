"""The verifier: rejects ill-typed or malformed modules, naming the instruction.

A module that passes `verify` is one the passes, the code generator and the runtime can take
without reading out of bounds, recursing without end or failing inside: every entry point
that takes a module from outside (the parser, the command line, the disk cache) calls it.
"""
from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from flowjit.ir.attributes import AttrKind, BufferSlice, WindowDim
from flowjit.ir.attributes import ConvDimensionLabels, OperandLayout
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import ShapeError, VerifierError
from flowjit.ir.lapack_targets import runnable_custom_call
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.ops import OPS, infer_shape
from flowjit.ir.shapes import ArrayShape, TupleShape, shape_problem

# What a shape rule may raise on operands it was not written for (a tuple where it wants an
# array, a list where it wants one int): all mean the instruction is malformed.
_RULE_ERRORS = (ShapeError, KeyError, ValueError, TypeError, IndexError, AttributeError)
# Calls nest no deeper than this: passes and code generation walk callees recursively.
MAX_CALL_DEPTH = 64


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_int_tuple(value, length: Optional[int] = None) -> bool:
    return (isinstance(value, tuple) and all(_is_int(v) for v in value)
            and (length is None or len(value) == length))


# The Python value each attribute kind holds (computations are checked as calls).
_ATTR_VALUE_OK = {
    AttrKind.INT: _is_int,
    AttrKind.INT_LIST: _is_int_tuple,
    AttrKind.BOOL: lambda v: isinstance(v, bool),
    AttrKind.WORD: lambda v: isinstance(v, str) and v != "",
    AttrKind.STRING: lambda v: isinstance(v, str),
    AttrKind.SLICE: lambda v: isinstance(v, tuple) and all(_is_int_tuple(r, 3) for r in v),
    AttrKind.PADDING: lambda v: isinstance(v, tuple) and all(_is_int_tuple(r, 3) for r in v),
    AttrKind.TRIP_COUNT: lambda v: _is_int(v) and v >= 0,
    AttrKind.WINDOW: lambda v: isinstance(v, tuple) and all(
        isinstance(d, WindowDim) and d.size >= 0 and d.stride >= 1 and d.window_dilation >= 1
        and d.base_dilation >= 1 for d in v),
    AttrKind.DIM_LABELS: lambda v: isinstance(v, ConvDimensionLabels) and all(
        _is_int_tuple(spec, len(v.lhs)) and sorted(spec) == list(range(len(v.lhs)))
        for spec in (v.lhs, v.rhs, v.out)) and len(v.lhs) >= 2,
    AttrKind.BUFFER: lambda v: isinstance(v, tuple) and all(
        isinstance(b, BufferSlice) and b.offset >= 0 and b.size >= 0 for b in v),
    AttrKind.LAYOUTS: lambda v: isinstance(v, tuple) and all(
        isinstance(x, OperandLayout) and _is_int_tuple(x.dims)
        and sorted(x.minor_to_major) == list(range(len(x.dims))) for x in v),
    AttrKind.FFI_CONFIG: lambda v: isinstance(v, tuple) and all(
        isinstance(e, tuple) and len(e) == 3 and isinstance(e[0], str) and _is_int(e[1])
        and isinstance(e[2], str) for e in v),
}


def _check_reducer(inst: Instruction) -> None:
    """The `to_apply` of a reduce or scatter takes (accumulators..., values...) as scalars of
    the accumulated types and returns the accumulators (a tuple when there are several).
    (The op table's reduce/scatter shape rules do not look at the reducer.)"""
    if inst.opcode == "reduce":
        n = len(inst.operands) // 2
        types = [o.shape.dtype for o in inst.operands[n:]]
    elif inst.opcode == "scatter":
        types = [inst.operands[0].shape.dtype]
    else:
        return
    comp = inst.calls["to_apply"]
    scalars = [ArrayShape(t, ()) for t in types]
    params = [p.shape for p in comp.parameters]
    result = scalars[0] if len(scalars) == 1 else TupleShape(tuple(scalars))
    if params != scalars + scalars or comp.root.shape != result:
        shown = ", ".join(map(str, params))
        raise ShapeError(f"{inst.opcode}: to_apply=%{comp.name} is ({shown}) -> "
                         f"{comp.root.shape}, needs {len(scalars) * 2} scalar parameters "
                         f"({', '.join(map(str, scalars))} twice) and result {result}")


def _signature_error(inst: Instruction, role: str, comp: Computation, wants: list,
                     result) -> ShapeError:
    shown = ", ".join(str(p.shape) for p in comp.parameters)
    wanted = ", ".join(map(str, wants))
    return ShapeError(f"{inst.opcode}: {role}=%{comp.name} is ({shown}) -> {comp.root.shape}, "
                      f"needs ({wanted}) -> {result}")


def _check_window_computations(inst: Instruction) -> None:
    """reduce-window's `to_apply` folds (accumulators..., values...) into the accumulators,
    as reduce's does; select-and-scatter's `select` takes two operand scalars to a pred and
    its `scatter` two scalars of the source's type to one."""
    if inst.opcode == "reduce-window":
        n = len(inst.operands) // 2
        scalars = [ArrayShape(o.shape.dtype, ()) for o in inst.operands[n:]]
        checks = [("to_apply", scalars + scalars,
                   scalars[0] if n == 1 else TupleShape(tuple(scalars)))]
    elif inst.opcode == "select-and-scatter":
        operand, source, _ = inst.operands
        value = ArrayShape(operand.shape.dtype, ())
        update = ArrayShape(source.shape.dtype, ())
        checks = [("select", [value, value], ArrayShape(DType.PRED, ())),
                  ("scatter", [update, update], update)]
    else:
        return
    for role, wants, result in checks:
        comp = inst.calls[role]
        if [p.shape for p in comp.parameters] != wants or comp.root.shape != result:
            raise _signature_error(inst, role, comp, wants, result)


def _check_comparator(inst: Instruction) -> None:
    """sort's `to_apply` takes (lhs_0, rhs_0, lhs_1, rhs_1, ...), two scalars of each
    operand's element type, and returns pred[]."""
    if inst.opcode != "sort":
        return
    wants = [ArrayShape(o.shape.dtype, ()) for o in inst.operands for _ in range(2)]
    comp = inst.calls["to_apply"]
    if [p.shape for p in comp.parameters] != wants or comp.root.shape != ArrayShape(
            DType.PRED, ()):
        raise _signature_error(inst, "to_apply", comp, wants, ArrayShape(DType.PRED, ()))


def _check_attributes(inst: Instruction, where: str, known: set[int]) -> None:
    """Every attribute and callee is one the op declares, holding a value of its kind."""
    op = OPS[inst.opcode]
    for key, value in inst.attrs.items():
        attribute = op.attr(key)
        if attribute is None:   # the printer would drop it: the IR would no longer be the truth
            raise VerifierError(f"{where}: {inst.opcode} has no attribute '{key}'")
        if attribute.kind in (AttrKind.COMPUTATION, AttrKind.COMPUTATIONS):
            raise VerifierError(f"{where}: '{key}' names computations; it belongs in calls")
        if not _ATTR_VALUE_OK[attribute.kind](value):
            raise VerifierError(f"{where}: attribute '{key}' holds {value!r}, not a "
                                f"{attribute.kind.value}")
    for key, value in inst.calls.items():
        attribute = op.attr(key)
        if attribute is None or attribute.kind not in (AttrKind.COMPUTATION,
                                                       AttrKind.COMPUTATIONS):
            raise VerifierError(f"{where}: {inst.opcode} has no attribute '{key}'")
        wants_list = attribute.kind is AttrKind.COMPUTATIONS
        callees = value if wants_list and isinstance(value, list) else [value]
        if wants_list != isinstance(value, list) or not all(
                isinstance(c, Computation) for c in callees):
            raise VerifierError(f"{where}: '{key}' must name "
                                f"{'a list of computations' if wants_list else 'a computation'}")
        for callee in callees:
            if id(callee) not in known:
                raise VerifierError(f"{where}: calls %{callee.name}, not in the module")


def _check_leaf(inst: Instruction, where: str) -> None:
    """A parameter or constant: no operands, a number or a literal that fits its shape."""
    if inst.operands:
        raise VerifierError(f"{where}: a {inst.opcode} takes no operands")
    if inst.opcode == "parameter":
        number = inst.attrs.get("number")
        if not _is_int(number) or number < 0:
            raise VerifierError(f"{where}: parameter number {number!r} is not an integer >= 0")
    elif (not isinstance(inst.literal, np.ndarray) or inst.shape.is_tuple
            or tuple(inst.literal.shape) != inst.shape.dims
            or inst.literal.dtype != inst.shape.dtype.to_numpy()):
        raise VerifierError(f"{where}: literal does not match shape {inst.shape}")


def verify_computation(comp: Computation, module: Module) -> None:
    """Raise VerifierError naming the first malformed instruction of `comp`."""
    known = {id(c) for c in module.computations}
    seen: set[int] = set()
    names: set[str] = set()
    numbers = []
    if not comp.instructions:
        raise VerifierError(f"%{comp.name}: has no instructions")
    for inst in comp.instructions:
        where = f"%{inst.name} in %{comp.name}"
        if inst.name in names:
            raise VerifierError(f"{where}: duplicate instruction name")
        names.add(inst.name)
        if inst.opcode not in OPS:
            raise VerifierError(f"{where}: unknown opcode '{inst.opcode}'")
        problem = shape_problem(inst.shape)
        if problem:
            raise VerifierError(f"{where}: {problem}")
        _check_attributes(inst, where, known)
        for operand in inst.operands:
            if id(operand) not in seen:
                raise VerifierError(f"{where}: operand %{operand.name} is not defined before "
                                    f"its use in this computation")
        if inst.opcode in ("parameter", "constant"):
            _check_leaf(inst, where)
            if inst.opcode == "parameter":
                numbers.append(inst.attrs["number"])
        else:
            try:
                inferred = infer_shape(inst.opcode, [o.shape for o in inst.operands], inst.attrs,
                                       inst.calls, inst.shape)
                _check_reducer(inst)
                _check_window_computations(inst)
                _check_comparator(inst)
            except _RULE_ERRORS as e:
                raise VerifierError(f"{where}: {e}") from None
            if inferred != inst.shape:
                raise VerifierError(f"{where}: has shape {inst.shape}, its operands give "
                                    f"{inferred}")
        seen.add(id(inst))
    if sorted(numbers) != list(range(len(numbers))):
        raise VerifierError(f"%{comp.name}: parameter numbers {sorted(numbers)} are not "
                            f"0..{len(numbers) - 1}, each once")
    if comp.root is None or id(comp.root) not in seen:
        raise VerifierError(f"%{comp.name}: root is not one of its instructions")


def _check_call_graph(module: Module) -> None:
    """No computation calls itself, directly or not, and calls nest at most MAX_CALL_DEPTH
    deep (passes and code generation walk callees recursively). Iterative."""
    depth: dict[int, int] = {}       # the longest call chain below a finished computation
    on_path: set[int] = set()
    for start in module.computations:
        if id(start) in depth:
            continue
        stack = [(start, iter(_callees(start)))]
        on_path.add(id(start))
        while stack:
            comp, callees = stack[-1]
            callee = next(callees, None)
            if callee is None:
                stack.pop()
                on_path.discard(id(comp))
                depth[id(comp)] = 1 + max((depth[id(c)] for c in _callees(comp)), default=0)
                if depth[id(comp)] > MAX_CALL_DEPTH:
                    raise VerifierError(f"%{comp.name}: calls nest deeper than "
                                        f"{MAX_CALL_DEPTH}")
            elif id(callee) in on_path:
                raise VerifierError(f"%{comp.name}: calls %{callee.name}, which calls it "
                                    f"back (recursion is not supported)")
            elif id(callee) not in depth:
                on_path.add(id(callee))
                stack.append((callee, iter(_callees(callee))))


def _callees(comp: Computation) -> list[Computation]:
    return [c for inst in comp.instructions for c in inst.called_computations()]


def verify(module: Module) -> None:
    """Raise VerifierError naming the first ill-typed or malformed instruction."""
    if module.entry not in module.computations:
        raise VerifierError("entry computation is not in the module")
    duplicates = {n for n, k in Counter(c.name for c in module.computations).items() if k > 1}
    if duplicates:
        raise VerifierError(f"duplicate computation names: {sorted(duplicates)}")
    for comp in module.computations:
        verify_computation(comp, module)
    _check_call_graph(module)


# Attributes the code generator does not implement yet (the reference semantics do).
# (Batching dims in gather and scatter are compiled now: none is left.)
_UNCOMPILED_ATTRIBUTES: dict[str, tuple[str, ...]] = {}


def verify_compilable(module: Module) -> None:
    """`verify`, and also reject what flowjit's code generator and runtime do not support
    (tuple-shaped entry parameters): call it before
    compiling a module that came from outside (a file, the disk cache)."""
    verify(module)
    for param in module.entry.parameters:
        if param.shape.is_tuple:
            raise VerifierError(f"%{param.name} in %{module.entry.name}: entry parameter of "
                                f"tuple shape {param.shape}; the runtime takes arrays only")
    for comp in module.computations:
        for inst in comp.instructions:
            target = inst.attrs.get("custom_call_target")
            if inst.opcode == "custom-call" and not runnable_custom_call(target):
                raise VerifierError(f"%{inst.name} in %{comp.name}: custom-call target "
                                    f"{target!r} is not one flowjit runs (it runs "
                                    f"stop_gradient, flowjit.custom_vjp and JAX's "
                                    f"lapack_?xxx_ffi calls)")
            for key in _UNCOMPILED_ATTRIBUTES.get(inst.opcode, ()):
                if inst.attrs.get(key):
                    raise VerifierError(f"%{inst.name} in %{comp.name}: {inst.opcode} with "
                                        f"{key} is not supported by the compiler yet")
