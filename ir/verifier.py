"""The verifier: rejects ill-typed or malformed modules, naming the instruction."""
from __future__ import annotations

from flowjit.ir.errors import ShapeError, VerifierError
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.ops import OPS, infer_shape
from flowjit.ir.shapes import ArrayShape, TupleShape

# What a shape rule may raise on operands it was not written for (a tuple where it wants an
# array, a list where it wants one int): all mean the instruction is malformed.
_RULE_ERRORS = (ShapeError, KeyError, ValueError, TypeError, IndexError, AttributeError)


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


def verify_computation(comp: Computation, module: Module) -> None:
    known = {id(c) for c in module.computations}
    seen: set[int] = set()
    names: set[str] = set()
    numbers = []
    for inst in comp.instructions:
        where = f"%{inst.name} in %{comp.name}"
        if inst.name in names:
            raise VerifierError(f"{where}: duplicate instruction name")
        names.add(inst.name)
        if inst.opcode not in OPS:
            raise VerifierError(f"{where}: unknown opcode '{inst.opcode}'")
        undeclared = [k for k in list(inst.attrs) + list(inst.calls)
                      if OPS[inst.opcode].attr(k) is None]
        if undeclared:   # the printer would drop them: the IR would no longer be the truth
            raise VerifierError(f"{where}: {inst.opcode} has no attribute "
                                f"'{undeclared[0]}'")
        for operand in inst.operands:
            if id(operand) not in seen:
                raise VerifierError(f"{where}: operand %{operand.name} is not defined before "
                                    f"its use in this computation")
        for callee in inst.called_computations():
            if id(callee) not in known:
                raise VerifierError(f"{where}: calls %{callee.name}, not in the module")
        if inst.opcode == "parameter":
            numbers.append(inst.attrs.get("number"))
        elif inst.opcode == "constant":
            if (inst.literal is None or inst.shape.is_tuple
                    or tuple(inst.literal.shape) != inst.shape.dims
                    or inst.literal.dtype != inst.shape.dtype.to_numpy()):
                raise VerifierError(f"{where}: literal does not match shape {inst.shape}")
        else:
            try:
                inferred = infer_shape(inst.opcode, [o.shape for o in inst.operands], inst.attrs,
                                       inst.calls, inst.shape)
                _check_reducer(inst)
            except _RULE_ERRORS as e:
                raise VerifierError(f"{where}: {e}") from None
            if inferred != inst.shape:
                raise VerifierError(f"{where}: has shape {inst.shape}, its operands give "
                                    f"{inferred}")
        seen.add(id(inst))
    if sorted(numbers) != list(range(len(numbers))):
        raise VerifierError(f"%{comp.name}: parameter numbers {sorted(numbers)} are not 0..n-1")
    if comp.root is None or id(comp.root) not in seen:
        raise VerifierError(f"%{comp.name}: root is not one of its instructions")


def verify(module: Module) -> None:
    """Raise VerifierError naming the first ill-typed or malformed instruction."""
    if module.entry not in module.computations:
        raise VerifierError("entry computation is not in the module")
    comp_names = [c.name for c in module.computations]
    duplicates = {n for n in comp_names if comp_names.count(n) > 1}
    if duplicates:
        raise VerifierError(f"duplicate computation names: {sorted(duplicates)}")
    for comp in module.computations:
        verify_computation(comp, module)
