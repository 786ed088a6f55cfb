"""The verifier: rejects ill-typed or malformed modules, naming the instruction."""
from __future__ import annotations

from ir.errors import ShapeError, VerifierError
from ir.module import Computation, Module
from ir.ops import OPS, infer_shape


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
            if inst.literal is None or tuple(inst.literal.shape) != inst.shape.dims:
                raise VerifierError(f"{where}: literal does not match shape {inst.shape}")
        else:
            try:
                inferred = infer_shape(inst.opcode, [o.shape for o in inst.operands], inst.attrs,
                                       inst.calls, inst.shape)
            except (ShapeError, KeyError) as e:
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
