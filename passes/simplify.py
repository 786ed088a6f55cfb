"""simplify: algebraic identities that keep results bit-identical.

Each rule looks at one instruction and returns what replaces it (an existing instruction, a
new one) or None. Rules never change floating-point results: `x + 0.0` stays (it turns -0.0
into 0.0), `x * 1` goes. Chains JAX prints for broadcast_in_dim (reshape → broadcast →
reshape) and the size-1 reshapes of keepdims collapse, so reductions meet their broadcasts.
"""
from __future__ import annotations


import numpy as np

from flowjit.ir.builder import NameTable
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.rewrite import Rule, rewrite_computation
from flowjit.ir.shapes import ArrayShape



def _new(names: NameTable, like: Instruction, opcode: str, operands, attrs=None,
         shape=None) -> Instruction:
    inst = Instruction(names.fresh(opcode.replace("-", "_")), opcode, shape or like.shape,
                       operands, attrs or {}, metadata=like.metadata)
    return inst


def _scalar_constant(inst: Instruction):
    """The value of a constant, or of a broadcast of a scalar constant, else None."""
    if inst.opcode == "broadcast" and inst.operands[0].opcode == "constant":
        inst = inst.operands[0]
    if inst.opcode == "constant" and inst.literal is not None and inst.literal.size >= 1:
        flat = np.asarray(inst.literal).reshape(-1)
        if np.all(flat == flat[0]) and (inst.shape.dtype.is_float is False or
                                        not np.isnan(flat[0])):
            return flat[0]
    return None


def _same_shape(inst: Instruction, operand: Instruction) -> bool:
    return operand.shape == inst.shape


def _reshape(inst, names, uses):
    (x,) = inst.operands
    if _same_shape(inst, x):
        return x
    if x.opcode == "reshape":
        return _new(names, inst, "reshape", [x.operands[0]])
    if x.opcode == "broadcast" and x.operands[0].shape.rank == 0:
        return _new(names, inst, "broadcast", [x.operands[0]], {"dimensions": ()})
    return None


def _broadcast(inst, names, uses):
    (x,) = inst.operands
    dims = tuple(inst.attrs["dimensions"])
    if _same_shape(inst, x) and dims == tuple(range(x.shape.rank)):
        return x
    if x.opcode == "broadcast":
        inner = tuple(x.attrs["dimensions"])
        return _new(names, inst, "broadcast", [x.operands[0]],
                    {"dimensions": tuple(dims[d] for d in inner)})
    if x.opcode == "reshape" and _only_unit_dims_differ(x.operands[0].shape.dims,
                                                        x.shape.dims):
        # broadcast(reshape(y)) where the reshape only adds/drops size-1 dims: map y's
        # non-unit dims straight to the output (JAX's broadcast_in_dim prints this).
        source = x.operands[0]
        kept = [d for d, size in zip(dims, x.shape.dims) if size != 1]
        if len(kept) == len([s for s in source.shape.dims if s != 1]) and all(
                s != 1 for s in source.shape.dims):
            return _new(names, inst, "broadcast", [source], {"dimensions": tuple(kept)})
    return None


def _only_unit_dims_differ(a, b) -> bool:
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def _transpose(inst, names, uses):
    (x,) = inst.operands
    perm = tuple(inst.attrs["dimensions"])
    if perm == tuple(range(len(perm))):
        return x
    if x.opcode == "transpose":
        inner = tuple(x.attrs["dimensions"])
        return _new(names, inst, "transpose", [x.operands[0]],
                    {"dimensions": tuple(inner[p] for p in perm)})
    if x.opcode == "dot" and uses(x) == 1:
        return _transposed_dot(inst, x, perm, names)
    return None


def _transposed_dot(inst, dot, perm, names):
    """transpose(dot(a, b)) that swaps the free dims of a and b is dot(b, a): the gradient
    of x @ w with respect to w then comes out in w's layout, with no transpose kernel."""
    attrs = dot.attrs
    lhs, rhs = dot.operands
    batch = len(attrs.get("lhs_batch_dims", ()))
    lhs_free = lhs.shape.rank - batch - len(attrs.get("lhs_contracting_dims", ()))
    rhs_free = rhs.shape.rank - batch - len(attrs.get("rhs_contracting_dims", ()))
    swapped = (tuple(range(batch)) + tuple(range(batch + lhs_free, batch + lhs_free + rhs_free))
               + tuple(range(batch, batch + lhs_free)))
    if perm != swapped:
        return None
    new_attrs = dict(attrs)
    for name in ("batch_dims", "contracting_dims"):
        lhs_dims, rhs_dims = attrs.get(f"lhs_{name}"), attrs.get(f"rhs_{name}")
        if lhs_dims is not None or rhs_dims is not None:
            new_attrs[f"lhs_{name}"], new_attrs[f"rhs_{name}"] = rhs_dims, lhs_dims
    return _new(names, inst, "dot", [rhs, lhs], new_attrs)


def _dot(inst, names, uses):
    """dot(transpose(a), b) reads a in place: the transpose becomes the dot's dimension
    numbers (XLA's transpose folding; BLAS takes a transposed operand for free). Only
    where the batch dims stay in place and the free dims keep their order, so the result
    and the product's layout are unchanged."""
    attrs = dict(inst.attrs)
    operands = list(inst.operands)
    for side, operand in (("lhs", 0), ("rhs", 1)):
        t = operands[operand]
        if t.opcode != "transpose":
            continue
        perm = tuple(t.attrs["dimensions"])
        batch = tuple(attrs.get(f"{side}_batch_dims", ()))
        contracting = tuple(attrs.get(f"{side}_contracting_dims", ()))
        free = [d for d in range(len(perm)) if d not in batch and d not in contracting]
        moved_free = [perm[d] for d in free]
        if tuple(perm[d] for d in batch) != batch or moved_free != sorted(moved_free):
            continue
        attrs[f"{side}_contracting_dims"] = tuple(perm[d] for d in contracting)
        operands[operand] = t.operands[0]
    if operands == list(inst.operands):
        return None
    return _new(names, inst, "dot", operands, attrs)


def _convert(inst, names, uses):
    (x,) = inst.operands
    return x if _same_shape(inst, x) else None


def _copy(inst, names, uses):
    return inst.operands[0]


def _slice(inst, names, uses):
    (x,) = inst.operands
    full = tuple((0, d, 1) for d in x.shape.dims)
    return x if tuple(inst.attrs["slice"]) == full else None


def _negate(inst, names, uses):
    (x,) = inst.operands
    return x.operands[0] if x.opcode == "negate" else None


def _multiply(inst, names, uses):
    a, b = inst.operands
    for x, other in ((a, b), (b, a)):
        if _scalar_constant(other) == 1 and _same_shape(inst, x):
            return x
    return None


def _add(inst, names, uses):
    a, b = inst.operands
    if inst.shape.dtype.is_float:
        # Only -0.0 is an exact additive identity in floating point.
        for x, other in ((a, b), (b, a)):
            value = _scalar_constant(other)
            if value is not None and value == 0 and np.signbit(value) and _same_shape(inst, x):
                return x
        return None
    for x, other in ((a, b), (b, a)):
        if _scalar_constant(other) == 0 and _same_shape(inst, x):
            return x
    return None


def _subtract(inst, names, uses):
    a, b = inst.operands
    if a is b and not inst.shape.dtype.is_float:
        zero = Instruction(names.fresh("constant"), "constant", inst.shape,
                           literal=np.zeros(inst.shape.dims, inst.shape.dtype.to_numpy()))
        return zero if inst.shape.size <= 1024 else None
    return None


def _divide(inst, names, uses):
    a, b = inst.operands
    value = _scalar_constant(b)
    if value is None or not inst.shape.dtype.is_float or value == 0:
        return None
    mantissa, _ = np.frexp(np.float64(value))
    if abs(mantissa) != 0.5:
        return None  # only powers of two have an exact reciprocal
    reciprocal = np.array(1.0 / np.float64(value), dtype=inst.shape.dtype.to_numpy())
    if not np.isfinite(reciprocal) or reciprocal == 0:
        return None
    scalar = Instruction(names.fresh("constant"), "constant", ArrayShape(inst.shape.dtype, ()),
                         literal=reciprocal)
    factor = _new(names, inst, "broadcast", [scalar], {"dimensions": ()})
    return [scalar, factor, _new(names, inst, "multiply", [a, factor])]


def _select(inst, names, uses):
    pred, a, b = inst.operands
    value = _scalar_constant(pred)
    if value is None:
        return a if a is b else None
    chosen = a if bool(value) else b
    return chosen if _same_shape(inst, chosen) else None


def _get_tuple_element(inst, names, uses):
    (x,) = inst.operands
    if x.opcode == "tuple":
        return x.operands[inst.attrs["index"]]
    return None


def _concatenate(inst, names, uses):
    return inst.operands[0] if len(inst.operands) == 1 else None


def _adds(comp) -> bool:
    root = comp.root
    return root.opcode == "add" and [o.opcode for o in root.operands] == ["parameter"] * 2


def _scatter(inst, names, uses):
    """A scatter-add with one update per operand row (take_along_axis's gradient: every
    dim but the scattered one is a batching dim) becomes select(iota == index, operand +
    update, operand): elementwise, so it fuses and runs in parallel. Exact: each position
    gets at most one update, and out-of-range indices match no position (dropped)."""
    operand, indices, updates = inst.operands
    a = inst.attrs
    rank = operand.shape.rank
    targets = tuple(a["scatter_dims_to_operand_dims"])
    operand_batching = tuple(a.get("input_batching_dims", ()))
    index_batching = tuple(a.get("scatter_indices_batching_dims", ()))
    if (a["update_window_dims"] or len(targets) != 1 or operand.shape.dtype.is_pred
            or not _adds(inst.calls["to_apply"])
            or sorted(operand_batching + targets) != list(range(rank))):
        return None
    pairs = sorted(zip(index_batching, operand_batching))
    dims = [o for _, o in pairs]
    ivd = a["index_vector_dim"]
    singles = [n for d, n in enumerate(indices.shape.dims) if d != ivd and d not in
               index_batching]
    if dims != sorted(dims) or any(n != 1 for n in singles):
        return None   # (several updates per row may add up: keep the scatter)
    compact = tuple(indices.shape.dims[i] for i, _ in pairs)
    index_type = ArrayShape(indices.shape.dtype, operand.shape.dims)
    index = _new(names, inst, "reshape", [indices], shape=ArrayShape(indices.shape.dtype,
                                                                     compact))
    spread = _new(names, inst, "broadcast", [index], {"dimensions": tuple(dims)},
                  shape=index_type)
    positions = _new(names, inst, "iota", [], {"iota_dimension": targets[0]},
                     shape=index_type)
    hit = _new(names, inst, "compare", [spread, positions], {"direction": "EQ"},
               shape=ArrayShape(DType.PRED, operand.shape.dims))
    update = _new(names, inst, "reshape", [updates], shape=ArrayShape(updates.shape.dtype,
                                                                      compact))
    update_spread = _new(names, inst, "broadcast", [update], {"dimensions": tuple(dims)})
    combined = _new(names, inst, "add", [operand, update_spread])
    return [index, spread, positions, hit, update, update_spread, combined,
            _new(names, inst, "select", [hit, combined, operand])]


RULES: dict[Opcode, Rule] = {
    Opcode.RESHAPE: _reshape, Opcode.BROADCAST: _broadcast, Opcode.TRANSPOSE: _transpose,
    Opcode.CONVERT: _convert, Opcode.COPY: _copy, Opcode.SLICE: _slice, Opcode.NEGATE: _negate,
    Opcode.MULTIPLY: _multiply, Opcode.ADD: _add, Opcode.SUBTRACT: _subtract, Opcode.DIVIDE: _divide,
    Opcode.SELECT: _select, Opcode.DOT: _dot, Opcode.GET_TUPLE_ELEMENT: _get_tuple_element,
    Opcode.CONCATENATE: _concatenate, Opcode.SCATTER: _scatter,
}


def run(module: Module) -> bool:
    """Apply exact algebraic identities (x*1, reshape∘reshape, gte∘tuple, ...)."""
    names = NameTable.for_module(module)
    changed = False
    for comp in module.computations:
        changed |= rewrite_computation(comp, RULES, names)
    return changed
