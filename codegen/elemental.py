"""The elemental emitter: the value of any instruction at one output index, as LLVM IR.

`ElementalEmitter.value(inst, index)` returns the register value of `inst` at the
multi-index `index` (a list of i64 values), computing its operands at the indices they need.
Every op that can be computed per output element is here (elementwise ops, broadcast,
reshape, transpose, slice, pad, concatenate, reverse, iota, dynamic-slice,
dynamic-update-slice, reduce, dot, gather), so a whole fused computation becomes one loop
nest around one call of `value(root, index)`. Values are cached per (instruction, index)
in a stack of scopes so a shared subexpression is computed once where it dominates.

Each op's rule is a Python generator that `yield`s `(operand, index)` for each operand value
it needs and is sent that value back, so `value` walks the graph with an explicit stack of
suspended rules rather than Python recursion: a fused chain of any length lowers.
"""
from __future__ import annotations

from types import GeneratorType
from typing import Callable, Generator, Optional

import numpy as np
from llvmlite import ir as llvm_ir

from flowjit.codegen.control import alloca_at_entry, for_range, merge_values
from flowjit.codegen.scalar_ops import (SCALAR_RULES, ScalarContext, convert, emit_scalar,
                                        from_memory, round_to_dtype, to_memory,
                                        wide_accumulator)
from flowjit.codegen.llvm_types import i64, memory_type, register_type
from flowjit.codegen.window_elemental import reduce_window_value
from flowjit.ir.dtypes import DType
from flowjit.ir.module import Computation, Instruction
from flowjit.ir.opcodes import Opcode
from flowjit.ir.shapes import ArrayShape

# loader(inst, index) -> register value of parameter `inst` at `index`
ParameterLoader = Callable[[Instruction, list], object]
# Rule work: yields (operand, index) for each operand value it needs, is sent that value,
# returns the instruction's value.
Work = Generator[tuple, object, object]
_MISSING = object()


class RowCache:
    """One row of an instruction's values, kept in a stack buffer: written while a row
    reduction over it runs, then read by the rest of the row's loop instead of computing
    them again (softmax's exp(x - max) is summed and then divided by the sum)."""

    def __init__(self, pointer, shape: ArrayShape, lead: int):
        self.pointer = pointer   # prod(shape.dims) elements
        self.shape = shape       # the trailing (reduced) dims
        self.lead = lead         # index entries before them (the row's position)
        self.state = "off"       # "filling" during the reduction, then "filled"

    def address(self, ctx: ScalarContext, index: list):
        mtype = memory_type(self.shape.dtype)
        return ctx.builder.gep(self.pointer, [linearize(ctx.builder, index[self.lead:],
                                                        self.shape.dims)],
                               inbounds=True, source_etype=mtype)


class ElementalEmitter:
    """Emits the values of one computation's instructions at given indices."""

    def __init__(self, ctx: ScalarContext, load_parameter: ParameterLoader,
                 constants: "ConstantPool", buffers: Optional[dict] = None):
        self.ctx = ctx
        self.load_parameter = load_parameter
        self.constants = constants
        # Instructions whose values are already in memory: id(inst) -> pointer.
        self.buffers = buffers or {}
        self.scopes: list[dict] = [{}]
        self.row_caches: dict[int, RowCache] = {}

    @property
    def b(self) -> llvm_ir.IRBuilder:
        return self.ctx.builder

    # --- caching ----------------------------------------------------------------------
    def push_scope(self) -> None:
        self.scopes.append({})

    def pop_scope(self) -> None:
        self.scopes.pop()

    def value(self, inst: Instruction, index: list):
        """Register value of `inst` at `index` (a list of values for tuple shapes)."""
        result = self._cached(inst, index)
        if result is not _MISSING:
            return result
        stack: list[_Frame] = []
        try:
            result = self._start(inst, index, stack)
            while stack:
                frame = stack[-1]
                try:
                    operand, operand_index = frame.work.send(result)
                except StopIteration as done:
                    stack.pop()
                    result = self._finish(frame.inst, frame.index, done.value)
                    continue
                result = self._cached(operand, operand_index)
                if result is _MISSING:
                    result = self._start(operand, operand_index, stack)
        except BaseException:
            # Unwind the suspended rules innermost first (closing their loops and scopes),
            # as returning through recursive calls would.
            for frame in reversed(stack):
                frame.work.close()
            raise
        return result

    def _cached(self, inst: Instruction, index: list):
        key = (id(inst), tuple(id(v) for v in index))
        for scope in reversed(self.scopes):
            if key in scope:
                return scope[key]
        return _MISSING

    def _start(self, inst: Instruction, index: list, stack: list):
        """The value of `inst` at `index` if no operand is needed for it; otherwise None,
        with the rule computing it pushed on `stack` (the driver sends it None to start)."""
        cache = self.row_caches.get(id(inst))
        if cache is not None and cache.state == "filled":
            mtype = memory_type(inst.shape.dtype)
            loaded = self.b.load(cache.address(self.ctx, index), typ=mtype)
            return self._finish(inst, index, from_memory(self.ctx, loaded, inst.shape.dtype))
        if id(inst) in self.buffers:
            return self._finish(inst, index, load_element(self.ctx, self.buffers[id(inst)],
                                                          inst.shape, index))
        work = _rule_for(inst)(self, inst, index)
        if isinstance(work, GeneratorType):
            stack.append(_Frame(inst, index, work))
            return None
        return self._finish(inst, index, work)

    def _finish(self, inst: Instruction, index: list, result):
        """Keep `inst`'s value at `index` in the innermost scope (and in its row cache while
        that is being filled); returns it."""
        cache = self.row_caches.get(id(inst))
        if cache is not None and cache.state == "filling":
            self.b.store(to_memory(self.ctx, result, inst.shape.dtype),
                         cache.address(self.ctx, index))
        self.scopes[-1][(id(inst), tuple(id(v) for v in index))] = result
        return result

    # --- helpers used by generators ---------------------------------------------------
    def inside_branch(self, fn: Callable[[], object]) -> Callable[[], object]:
        """Wrap `fn` so values it creates are cached only within its own block."""
        def run():
            self.push_scope()
            try:
                return fn()
            finally:
                self.pop_scope()
        return run

    def scoped(self, work: Work) -> Work:
        """Run rule work `work` with its values cached only within the current block."""
        self.push_scope()
        result = yield from work
        self.pop_scope()
        return result

    def index_value(self, inst: Instruction) -> Work:
        """A scalar integer operand (a start index) as i64, sign-extended."""
        v = yield inst, []
        return convert(self.ctx, v, inst.shape.dtype, DType.S64)

    def clamp(self, v, lo: int, hi: int):
        b = self.b
        v = b.select(b.icmp_signed("<", v, i64(lo)), i64(lo), v)
        return b.select(b.icmp_signed(">", v, i64(hi)), i64(hi), v)

    def branch(self, condition, then_work: Work, else_work, name: str) -> Work:
        """`condition ? then : else` with real branches (a load out of bounds in the untaken
        arm never runs); each arm is rule work (or, for else, a value already computed)."""
        b = self.b
        then_block = b.append_basic_block(f"{name}.then")
        else_block = b.append_basic_block(f"{name}.else")
        merge = b.append_basic_block(f"{name}.merge")
        b.cbranch(condition, then_block, else_block)
        b.position_at_end(then_block)
        then_value = yield from self.scoped(then_work)
        then_end = b.block
        b.branch(merge)
        b.position_at_end(else_block)
        if isinstance(else_work, GeneratorType):
            else_value = yield from self.scoped(else_work)
        else:
            else_value = else_work
        else_end = b.block
        b.branch(merge)
        b.position_at_end(merge)
        return merge_values(b, [(then_value, then_end), (else_value, else_end)], name)


class _Frame:
    """A rule suspended while the driver computes an operand it asked for."""

    __slots__ = ("inst", "index", "work")

    def __init__(self, inst: Instruction, index: list, work: Work):
        self.inst, self.index, self.work = inst, index, work


def _request(inst: Instruction, index: list) -> Work:
    """Rule work that is just the value of `inst` at `index`."""
    return (yield inst, index)


def _rule_for(inst: Instruction):
    if inst.opcode in SCALAR_RULES:
        return _scalar
    generator = _GENERATORS.get(inst.opcode)
    if generator is None:
        raise NotImplementedError(f"no elemental lowering for '{inst.opcode}' "
                                  f"(%{inst.name})")
    return generator


def linearize(b: llvm_ir.IRBuilder, index: list, dims: tuple) -> llvm_ir.Value:
    """Row-major offset of `index` in an array of `dims`."""
    offset = i64(0)
    for value, size in zip(index, dims):
        offset = b.add(b.mul(offset, i64(size), flags=["nsw"]), value, flags=["nsw"])
    return offset


def delinearize(b: llvm_ir.IRBuilder, offset, dims: tuple) -> list:
    """The multi-index of row-major `offset` in an array of `dims`."""
    index = []
    for size in reversed(dims):
        if size == 1:
            index.append(i64(0))
            continue
        index.append(b.urem(offset, i64(size)))
        offset = b.udiv(offset, i64(size))
    return list(reversed(index))


class ConstantPool:
    """Array constants as LLVM globals, one per literal."""

    def __init__(self, module: llvm_ir.Module):
        self.module = module
        self.globals: dict[int, llvm_ir.GlobalVariable] = {}

    def global_for(self, inst: Instruction) -> llvm_ir.GlobalVariable:
        if id(inst) not in self.globals:
            dtype = inst.shape.dtype
            flat = np.asarray(inst.literal).reshape(-1)
            mtype = memory_type(dtype)
            if dtype is DType.BF16:
                values = [int(v) for v in flat.view(np.uint16)]
            elif dtype is DType.PRED:
                values = [int(bool(v)) for v in flat]
            elif dtype.is_float:
                values = [float(v) for v in flat]
            else:
                values = [int(v) & ((1 << dtype.bits) - 1) for v in flat]
            array_type = llvm_ir.ArrayType(mtype, len(values))
            name = f"const.{len(self.globals)}"
            g = llvm_ir.GlobalVariable(self.module, array_type, name)
            g.initializer = llvm_ir.Constant(array_type, values)
            g.global_constant = True
            g.linkage = "internal"
            g.align = 64
            self.globals[id(inst)] = g
        return self.globals[id(inst)]


def load_element(ctx: ScalarContext, pointer, shape: ArrayShape, index: list):
    """Register value of `shape`'s element at `index` in the buffer at `pointer`."""
    b = ctx.builder
    mtype = memory_type(shape.dtype)
    address = b.gep(pointer, [linearize(b, index, shape.dims)], inbounds=True,
                    source_etype=mtype)
    return from_memory(ctx, b.load(address, typ=mtype), shape.dtype)


# --- rules: one per non-scalar opcode, and one for all scalar ops ---------------------------
# A rule returns the value, or (when it needs operand values) is a generator: rule work.

def _scalar(em: ElementalEmitter, inst, index) -> Work:
    args = []
    for operand in inst.operands:
        args.append((yield operand, index if operand.shape.rank else []))
    result = emit_scalar(em.ctx, inst, args)
    if inst.shape.dtype is DType.BF16:
        # bf16 is computed in f32 registers: round after every op, as if stored,
        # so a fused chain gives what separate kernels give.
        result = from_memory(em.ctx, to_memory(em.ctx, result, DType.BF16), DType.BF16)
    return result


def _parameter(em: ElementalEmitter, inst, index):
    return em.load_parameter(inst, index)


def _constant(em: ElementalEmitter, inst, index):
    dtype = inst.shape.dtype
    if inst.shape.size == 1:
        value = np.asarray(inst.literal).reshape(-1)[0]
        if dtype is DType.BF16:
            value = float(value)
        if dtype.is_float:
            return llvm_ir.Constant(register_type(dtype), float(value))
        if dtype is DType.PRED:
            return llvm_ir.Constant(register_type(dtype), int(bool(value)))
        return llvm_ir.Constant(register_type(dtype), int(value) & ((1 << dtype.bits) - 1))
    g = em.constants.global_for(inst)
    return load_element(em.ctx, g, inst.shape, index)


def _iota(em, inst, index):
    position = index[inst.attrs["iota_dimension"]]
    return convert(em.ctx, position, DType.S64, inst.shape.dtype)


def _broadcast(em, inst, index):
    (operand,) = inst.operands
    return (yield operand, [index[d] for d in inst.attrs["dimensions"]])


def _reshape(em, inst, index):
    (operand,) = inst.operands
    if operand.shape.dims == inst.shape.dims:
        return (yield operand, index)
    kept_in = [d for d in operand.shape.dims if d != 1]
    kept_out = [d for d in inst.shape.dims if d != 1]
    if kept_in == kept_out:  # only size-1 dims added or removed: no division needed
        significant = [v for v, d in zip(index, inst.shape.dims) if d != 1]
        it = iter(significant)
        return (yield operand, [next(it) if d != 1 else i64(0)
                                for d in operand.shape.dims])
    offset = linearize(em.b, index, inst.shape.dims)
    return (yield operand, delinearize(em.b, offset, operand.shape.dims))


def _transpose(em, inst, index):
    (operand,) = inst.operands
    perm = inst.attrs["dimensions"]
    operand_index = [None] * len(perm)
    for out_dim, in_dim in enumerate(perm):
        operand_index[in_dim] = index[out_dim]
    return (yield operand, operand_index)


def _slice(em, inst, index):
    (operand,) = inst.operands
    b = em.b
    operand_index = []
    for value, (start, _, stride) in zip(index, inst.attrs["slice"]):
        scaled = b.mul(value, i64(stride), flags=["nsw"]) if stride != 1 else value
        operand_index.append(b.add(scaled, i64(start), flags=["nsw"]) if start else scaled)
    return (yield operand, operand_index)


def _reverse(em, inst, index):
    (operand,) = inst.operands
    dims = set(inst.attrs["dimensions"])
    operand_index = [em.b.sub(i64(size - 1), v) if d in dims else v
                     for d, (v, size) in enumerate(zip(index, operand.shape.dims))]
    return (yield operand, operand_index)


def _pad(em, inst, index):
    operand, pad_value = inst.operands
    b = em.b
    inside = llvm_ir.Constant(llvm_ir.IntType(1), 1)
    operand_index = []
    for value, (lo, _, interior), size in zip(index, inst.attrs["padding"],
                                              operand.shape.dims):
        shifted = b.sub(value, i64(lo))
        step = interior + 1
        position = b.sdiv(shifted, i64(step)) if step != 1 else shifted
        inside = b.and_(inside, b.icmp_signed(">=", shifted, i64(0)))
        inside = b.and_(inside, b.icmp_signed("<", position, i64(size)))
        if step != 1:
            inside = b.and_(inside, b.icmp_signed("==", b.srem(shifted, i64(step)), i64(0)))
        operand_index.append(position)
    fill = yield pad_value, []
    if operand.shape.size == 0:
        return fill
    return (yield from em.branch(inside, _request(operand, operand_index), fill, "pad"))


def _concatenate(em, inst, index):
    (axis,) = inst.attrs["dimensions"]
    operands = [o for o in inst.operands if o.shape.dims[axis] > 0]
    b = em.b
    # index < end of operand k ? operand k : (the same test for operand k + 1, ...): nested
    # branches, opened in a loop and merged innermost first.
    open_branches = []   # (value from operand k, block it ends in, merge block)
    offset = 0
    for k, operand in enumerate(operands):
        local = list(index)
        local[axis] = b.sub(index[axis], i64(offset))
        if k == len(operands) - 1:
            value = yield from em.scoped(_request(operand, local))
            break
        offset += operand.shape.dims[axis]
        then_block = b.append_basic_block("concat.then")
        else_block = b.append_basic_block("concat.else")
        merge = b.append_basic_block("concat.merge")
        b.cbranch(b.icmp_signed("<", index[axis], i64(offset)), then_block, else_block)
        b.position_at_end(then_block)
        then_value = yield from em.scoped(_request(operand, local))
        open_branches.append((then_value, b.block, merge))
        b.branch(merge)
        b.position_at_end(else_block)
    for then_value, then_end, merge in reversed(open_branches):
        else_end = b.block
        b.branch(merge)
        b.position_at_end(merge)
        value = merge_values(b, [(then_value, then_end), (value, else_end)], "concat")
    return value


def _dynamic_slice(em, inst, index):
    operand, *starts = inst.operands
    sizes = inst.attrs["dynamic_slice_sizes"]
    b = em.b
    operand_index = []
    for value, start, dim, size in zip(index, starts, operand.shape.dims, sizes):
        begin = em.clamp((yield from em.index_value(start)), 0, dim - size)
        operand_index.append(b.add(value, begin))
    return (yield operand, operand_index)


def _dynamic_update_slice(em, inst, index):
    operand, update, *starts = inst.operands
    b = em.b
    inside = llvm_ir.Constant(llvm_ir.IntType(1), 1)
    update_index = []
    for value, start, dim, size in zip(index, starts, operand.shape.dims, update.shape.dims):
        begin = em.clamp((yield from em.index_value(start)), 0, dim - size)
        local = b.sub(value, begin)
        inside = b.and_(inside, b.icmp_signed(">=", local, i64(0)))
        inside = b.and_(inside, b.icmp_signed("<", local, i64(size)))
        update_index.append(local)
    if update.shape.size == 0:
        return (yield operand, index)
    return (yield from em.branch(inside, _request(update, update_index),
                                 _request(operand, index), "dus"))


def emit_scalar_computation(em: ElementalEmitter, comp: Computation, args: list):
    """Inline a computation over scalars (a reducer, a scatter combiner) on `args`."""
    values = {}

    def load(param, index):
        return args[param.attrs["number"]]
    inner = ElementalEmitter(em.ctx, load, em.constants)
    for inst in comp.instructions:
        values[id(inst)] = inner.value(inst, [])
    return values[id(comp.root)]


def _reduce(em, inst, index):
    n = len(inst.operands) // 2
    inputs, inits = inst.operands[:n], inst.operands[n:]
    dims = inst.attrs["dimensions"]
    comp = inst.calls["to_apply"]
    b = em.b
    wide = wide_accumulator(comp, inst.shape.dtype) if n == 1 else None
    init_values = []
    for init in inits:
        init_values.append((yield init, []))
    if wide is not None:
        init_values = [wide.widen(em.ctx, init_values[0])]
    slots = [alloca_at_entry(b, v.type, "acc") for v in init_values]
    for slot, v in zip(slots, init_values):
        b.store(v, slot)
    shape = inputs[0].shape
    kept = [d for d in range(shape.rank) if d not in dims]
    loop_vars: dict[int, llvm_ir.Value] = {}

    def nest(level: int):
        if level == len(dims):
            full = [loop_vars[d] if d in loop_vars else None for d in range(shape.rank)]
            kept_iter = iter(index)
            for d in kept:
                full[d] = next(kept_iter)
            em.push_scope()
            elements = []
            for x in inputs:
                elements.append((yield x, full))
            em.pop_scope()
            accumulators = [b.load(s) for s in slots]
            if wide is not None:
                b.store(wide.combine(em.ctx, accumulators[0], wide.widen(em.ctx, elements[0])),
                        slots[0])
                return
            # Reductions may be reassociated (as XLA does) so LLVM can vectorize them.
            em.ctx.reassociate = True
            try:
                result = emit_scalar_computation(em, comp, accumulators + elements)
            finally:
                em.ctx.reassociate = False
            results = result if isinstance(result, list) else [result]
            for slot, r in zip(slots, results):
                b.store(r, slot)
            return
        d = dims[level]
        with for_range(b, shape.dims[d], f"r{d}") as var:
            loop_vars[d] = var
            yield from nest(level + 1)
    # Innermost loop over the last reduced dim keeps reads contiguous when it is minor.
    dims = sorted(dims)
    yield from nest(0)
    out = [b.load(s) for s in slots]
    if wide is not None:
        return wide.narrow(em.ctx, out[0])
    return out[0] if n == 1 else out


def _dot(em, inst, index):
    lhs, rhs = inst.operands
    a = inst.attrs
    lb, rb = a.get("lhs_batch_dims", ()), a.get("rhs_batch_dims", ())
    lc, rc = a.get("lhs_contracting_dims", ()), a.get("rhs_contracting_dims", ())
    lfree = [d for d in range(lhs.shape.rank) if d not in lb and d not in lc]
    rfree = [d for d in range(rhs.shape.rank) if d not in rb and d not in rc]
    b = em.b
    out_dtype = inst.shape.dtype
    # f16/bf16 products are summed in f32 and rounded once, as XLA does.
    accumulate = DType.F32 if out_dtype in (DType.F16, DType.BF16) else out_dtype
    lhs_index = [None] * lhs.shape.rank
    rhs_index = [None] * rhs.shape.rank
    it = iter(index)
    for l, r in zip(lb, rb):
        v = next(it)
        lhs_index[l] = rhs_index[r] = v
    for d in lfree:
        lhs_index[d] = next(it)
    for d in rfree:
        rhs_index[d] = next(it)
    zero = llvm_ir.Constant(register_type(accumulate), 0.0 if out_dtype.is_float else 0)
    slot = alloca_at_entry(b, zero.type, "dot.acc")
    b.store(zero, slot)

    def nest(level: int):
        if level == len(lc):
            em.push_scope()
            x = convert(em.ctx, (yield lhs, lhs_index), lhs.shape.dtype, accumulate)
            y = convert(em.ctx, (yield rhs, rhs_index), rhs.shape.dtype, accumulate)
            em.pop_scope()
            acc = b.load(slot)
            if out_dtype.is_float:
                b.store(b.fadd(acc, b.fmul(x, y)), slot)
            elif out_dtype is DType.PRED:
                b.store(b.or_(acc, b.and_(x, y)), slot)
            else:
                b.store(b.add(acc, b.mul(x, y)), slot)
            return
        with for_range(b, lhs.shape.dims[lc[level]], f"k{level}") as k:
            lhs_index[lc[level]] = k
            rhs_index[rc[level]] = k
            yield from nest(level + 1)
    yield from nest(0)
    if accumulate is not out_dtype:
        return round_to_dtype(em.ctx, b.load(slot), out_dtype)
    return b.load(slot)


def _gather(em, inst, index):
    operand, indices = inst.operands
    a = inst.attrs
    offset_dims = list(a["offset_dims"])
    collapsed = set(a.get("collapsed_slice_dims", ()))
    start_map = a["start_index_map"]
    ivd = a["index_vector_dim"]
    sizes = a["slice_sizes"]
    b = em.b
    batch_index = [v for d, v in enumerate(index) if d not in offset_dims]
    offsets = [v for d, v in enumerate(index) if d in offset_dims]
    starts = [i64(0)] * operand.shape.rank
    for k, d in enumerate(start_map):
        idx = list(batch_index)
        if ivd < indices.shape.rank:
            idx.insert(ivd, i64(k))
        raw = convert(em.ctx, (yield indices, idx), indices.shape.dtype, DType.S64)
        starts[d] = em.clamp(raw, 0, operand.shape.dims[d] - sizes[d])
    # A batching dim of the operand is read at the output's position along its paired
    # index dim (its slice size is 1, so it has no offset).
    batching = paired_batch_positions(a.get("operand_batching_dims", ()),
                                      a.get("start_indices_batching_dims", ()), ivd)
    for d, position in batching.items():
        starts[d] = batch_index[position]
    collapsed |= set(batching)
    operand_index = []
    offset_iter = iter(offsets)
    for d in range(operand.shape.rank):
        if d in collapsed:
            operand_index.append(starts[d])
        else:
            operand_index.append(b.add(starts[d], next(offset_iter)))
    return (yield operand, operand_index)


def paired_batch_positions(operand_dims, index_dims, index_vector_dim: int) -> dict:
    """operand batching dim -> the position of its paired index dim among the indices'
    batch dims (every dim of the indices but the index vector dim, in order)."""
    return {d: i - (i > index_vector_dim) for d, i in zip(operand_dims, index_dims)}


def _get_tuple_element(em, inst, index):
    (operand,) = inst.operands
    return (yield operand, index)[inst.attrs["index"]]


def _tuple(em, inst, index):
    values = []
    for operand in inst.operands:
        values.append((yield operand, index))
    return values


_GENERATORS = {
    Opcode.PARAMETER: _parameter, Opcode.CONSTANT: _constant, Opcode.IOTA: _iota,
    Opcode.BROADCAST: _broadcast, Opcode.RESHAPE: _reshape, Opcode.TRANSPOSE: _transpose,
    Opcode.SLICE: _slice, Opcode.REVERSE: _reverse, Opcode.PAD: _pad,
    Opcode.CONCATENATE: _concatenate,
    Opcode.DYNAMIC_SLICE: _dynamic_slice, Opcode.DYNAMIC_UPDATE_SLICE: _dynamic_update_slice,
    Opcode.REDUCE: _reduce, Opcode.DOT: _dot, Opcode.GATHER: _gather,
    Opcode.GET_TUPLE_ELEMENT: _get_tuple_element, Opcode.TUPLE: _tuple,
    Opcode.REDUCE_WINDOW: reduce_window_value,
}

ELEMENTAL_OPCODES = frozenset(SCALAR_RULES) | (frozenset(_GENERATORS) - {Opcode.PARAMETER})


def scatter_target(ctx: ScalarContext, inst: Instruction, indices_ptr, update_index: list):
    """Where the update element at `update_index` of scatter `inst` lands in the operand:
    (in_bounds, operand index). As in XLA, an update window that does not fit entirely
    inside the operand is dropped (in_bounds is false for each of its elements)."""
    operand, indices, updates = inst.operands
    a = inst.attrs
    b = ctx.builder
    shape = operand.shape
    window_dims = list(a["update_window_dims"])
    ivd = a["index_vector_dim"]
    batching = paired_batch_positions(a.get("input_batching_dims", ()),
                                      a.get("scatter_indices_batching_dims", ()), ivd)
    inserted = set(a.get("inserted_window_dims", ())) | set(batching)
    operand_window_dims = [d for d in range(shape.rank) if d not in inserted]
    scatter_index = [v for d, v in enumerate(update_index) if d not in window_dims]
    window_index = [v for d, v in enumerate(update_index) if d in window_dims]
    start = [i64(0)] * shape.rank
    for k, d in enumerate(a["scatter_dims_to_operand_dims"]):
        idx = list(scatter_index)
        if ivd < indices.shape.rank:
            idx.insert(ivd, i64(k))
        raw = load_element(ctx, indices_ptr, indices.shape, idx)
        start[d] = convert(ctx, raw, indices.shape.dtype, DType.S64)
    for d, position in batching.items():   # always in bounds: the shapes match
        start[d] = scatter_index[position]
    window_size = [1] * shape.rank
    for k, d in enumerate(operand_window_dims):
        window_size[d] = updates.shape.dims[window_dims[k]]
    in_bounds = llvm_ir.Constant(llvm_ir.IntType(1), 1)
    for d in range(shape.rank):
        in_bounds = b.and_(in_bounds, b.icmp_signed(">=", start[d], i64(0)))
        in_bounds = b.and_(in_bounds, b.icmp_signed(
            "<=", b.add(start[d], i64(window_size[d])), i64(shape.dims[d])))
    target = list(start)
    for k, d in enumerate(operand_window_dims):
        target[d] = b.add(start[d], window_index[k])
    return in_bounds, target


def is_elemental(inst: Instruction) -> bool:
    """Whether `inst` can be computed one output element at a time."""
    return inst.opcode in ELEMENTAL_OPCODES
