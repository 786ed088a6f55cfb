"""Kernels: one LLVM function per entry instruction that computes something, and the
`entry(ptr slots)` function that calls them all in order (one call from the runtime)."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

from llvmlite import ir as llvm_ir

from flowjit.codegen import lapack
from flowjit.codegen.control import alloca_at_entry, for_range, level_bounds
from flowjit.codegen.dot import (emit_gemm, epilogue_of, gemm_plan, row_alignment,
                                 row_split)
from flowjit.codegen.parallel import MIN_PARALLEL_WORK, parallel_for, thread_count
from flowjit.codegen.parallel import kernel_type as parallel_kernel_type
from flowjit.codegen.profile import StepTimer
from flowjit.codegen.elemental import (ELEMENTAL_OPCODES, ConstantPool, ElementalEmitter,
                                       RowCache, emit_scalar_computation, is_elemental,
                                       linearize, load_element, scatter_target)
from flowjit.codegen.scalar_ops import ScalarContext, convert, to_memory
from flowjit.codegen.window_kernels import (emit_pooling, emit_prefix_scan,
                                            emit_select_and_scatter, pooling_of,
                                            prefix_scan_of, scan_splits_rows,
                                            select_and_scatter_rows)
from flowjit.codegen.llvm_types import PTR, i64, memory_type
from flowjit.codegen.sort_kernel import SORT_OPCODES, emit_sort_kernel, sort_parallel_rows
from flowjit.ir.buffers import accumulated_parameter, updated_operand
from flowjit.ir.dtypes import DType
from flowjit.ir.graph import post_order, structure_key
from flowjit.ir.module import Instruction, Module
from flowjit.ir.lapack_targets import parse_target
from flowjit.ir.op_tables import Unsupported
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import CostClass, opcodes_where, spec
from flowjit.ir.shapes import ArrayShape, leaves

# Entry-level instructions that only name buffers: no kernel runs for them.
NO_KERNEL = opcodes_where(lambda s: not s.does_work)
# Steps (kernel calls, loops, branches) of the entry computation per LLVM function: each
# keeps its slot pointers in registers across its calls, and LLVM's register allocation
# slows down with more (1,000 steps: 1.2 s in parts of 64, 4.3 s in parts of 1,024).
PROGRAM_PART_STEPS = 64
# Attributes that say where a value lives, not how it is computed.
_NOT_CODE_ATTRS = frozenset({"buffer"})


@dataclass
class KernelInfo:
    """One kernel: its LLVM name, the instruction it computes, and its buffer slots."""

    name: str
    instruction: Instruction
    output_slots: list[int]
    input_slots: list[int]
    source_lines: list[str] = field(default_factory=list)
    parallel_rows: int = 0   # > 0: split over threads by rows of the first dimension
    row_align: int = 1       # a thread's rows start at a multiple of this


class ModuleLowering:
    """Builds the LLVM module for one (fused, scheduled) ir.Module."""

    def __init__(self, module: Module, slots_of: Callable[[Instruction], list[int]],
                 num_slots: int, triple: str = "", data_layout: str = "",
                 boxed_slots: frozenset = frozenset(), data_offset: int = 0,
                 profile: bool = False):
        self.module = module
        self.slots_of = slots_of
        self.num_slots = num_slots
        # Slots whose table entry is a numpy array object rather than its data: `entry`
        # reads the data pointer at `data_offset` bytes into the object, so the runtime
        # needs no Python-level address lookup per call (it was most of dispatch time).
        self.boxed_slots = frozenset(boxed_slots)
        self.data_offset = data_offset
        self.llvm = llvm_ir.Module(name=module.name)
        if triple:
            self.llvm.triple = triple
        if data_layout:
            self.llvm.data_layout = data_layout
        self.constants = ConstantPool(self.llvm)
        self.kernels: list[KernelInfo] = []
        # Instructions that compute the same thing the same way share one LLVM function
        # (an unfused chain of 10,000 adds needs one `add` kernel): key -> function name.
        self.kernel_names: dict[tuple, str] = {}
        self.structure_memo: dict[int, tuple] = {}
        self.parallel_wrappers: dict[str, llvm_ir.Function] = {}
        # Profile mode: each step is timed into a counters array held in one more slot.
        self.timer = StepTimer(self.llvm) if profile else None
        self.profile_slot = num_slots

    def lower(self) -> llvm_ir.Module:
        """The LLVM module: one function per kernel and `entry(ptr slots)` running them
        (through `program.N` functions of at most PROGRAM_PART_STEPS steps each when the
        program is long: LLVM's code generation slows down on one huge function)."""
        program = self.module.entry.instructions
        steps = [inst for inst in program if inst.opcode not in NO_KERNEL]
        if len(steps) <= PROGRAM_PART_STEPS:
            self.emit_function("entry", program)
            return self.llvm
        parts, part, count = [], [], 0
        for inst in program:
            part.append(inst)
            count += inst.opcode not in NO_KERNEL
            if count == PROGRAM_PART_STEPS:
                parts.append(part)
                part, count = [], 0
        parts.append(part)
        functions = [self.emit_function(f"program.{k}", part) for k, part in enumerate(parts)]
        entry = llvm_ir.Function(self.llvm, llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR]),
                                 "entry")
        b = llvm_ir.IRBuilder(entry.append_basic_block("body"))
        for fn in functions:
            fn.linkage = "internal"
            fn.attributes.add("noinline")   # inlined back, they would make one huge function
            b.call(fn, [entry.args[0]])
        b.ret_void()
        return self.llvm

    def emit_function(self, name: str, instructions: list) -> llvm_ir.Function:
        """`void name(ptr slots)` running `instructions` (of the entry computation)."""
        fn = llvm_ir.Function(self.llvm, llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR]),
                              name)
        load_block = fn.append_basic_block("load_slots")
        body_block = fn.append_basic_block("body")
        self.loads = llvm_ir.IRBuilder(load_block)
        self.b = llvm_ir.IRBuilder(body_block)
        self.table = fn.args[0]
        self.loaded: dict[int, llvm_ir.Value] = {}
        self.ctx = ScalarContext(self.b, self.llvm)
        for inst in instructions:
            self.emit_instruction(inst)
        self.b.ret_void()
        self.loads.branch(body_block)
        return fn

    def size(self) -> int:
        """LLVM instructions in the lowered module (what LLVM's work grows with)."""
        return sum(len(block.instructions) for fn in self.llvm.functions for block in fn.blocks)

    def split(self, parts: int) -> list[str]:
        """The lowered module as up to `parts` LLVM texts that link into one program, so
        LLVM can optimize and compile them in parallel: the first holds `entry`, the others
        whole kernels (a kernel with its `.parallel`/`.worker` helpers), balanced by size.
        A function defined in one text is declared in the others (so all are external)."""
        groups: dict[str, list[llvm_ir.Function]] = {}
        for fn in self.llvm.functions:
            if fn.blocks and fn.name != "entry":
                fn.linkage = ""
                groups.setdefault(".".join(fn.name.split(".")[:2]), []).append(fn)
        if parts <= 1 or len(groups) < 2:
            return [str(self.llvm)]
        size = {key: sum(len(block.instructions) for fn in fns for block in fn.blocks)
                for key, fns in groups.items()}
        # Largest first onto the lightest part; part 0 also runs `entry`.
        loads = [0] * parts
        owner: dict[str, int] = {}
        for key in sorted(groups, key=lambda k: -size[k]):
            part = min(range(parts), key=lambda p: loads[p])
            owner[key] = part
            loads[part] += size[key]
        bodies = {fn: fn.blocks for fns in groups.values() for fn in fns}
        texts = []
        try:
            for part in sorted(set(owner.values()) | {0}):
                for key, fns in groups.items():
                    for fn in fns:
                        fn.blocks = bodies[fn] if owner[key] == part else []
                entry = self.llvm.get_global("entry")
                entry_blocks = entry.blocks
                if part != 0:
                    entry.blocks = []
                texts.append(str(self.llvm))
                entry.blocks = entry_blocks
        finally:
            for fn, blocks in bodies.items():
                fn.blocks = blocks
        return texts

    # --- the program: kernel calls, loops and branches, in the entry function -------------
    def slot(self, k: int) -> llvm_ir.Value:
        """Pointer in slot k, loaded once at the top of `entry` (the table doesn't change)."""
        if k not in self.loaded:
            address = self.loads.gep(self.table, [i64(k)], inbounds=True, source_etype=PTR)
            if k in self.boxed_slots:
                array_object = self.loads.load(address, typ=PTR, name=f"object{k}")
                address = self.loads.gep(array_object, [i64(self.data_offset)],
                                         source_etype=llvm_ir.IntType(8))
            self.loaded[k] = self.loads.load(address, typ=PTR, name=f"slot{k}")
        return self.loaded[k]

    def emit_program(self, comp) -> None:
        """The calls that run `comp`'s instructions in order, each by its CPU_LOWERING rule."""
        for inst in comp.instructions:
            self.emit_instruction(inst)

    def emit_instruction(self, inst: Instruction) -> None:
        rule = CPU_LOWERING[inst.opcode]
        if isinstance(rule, Unsupported):
            raise NotImplementedError(f"the CPU backend cannot run '{inst.opcode}' "
                                      f"(%{inst.name}): {rule.reason}")
        rule(self, inst)

    def emit_nothing(self, inst: Instruction) -> None:
        """Parameters, literals and tuples only name buffers: no code runs for them."""

    def emit_call(self, inst: Instruction) -> None:
        self.emit_program(inst.calls["to_apply"])

    def timed(self, what: str, inst: Instruction, source_lines=()):
        """In profile mode, time what is emitted inside as one step; else nothing."""
        if self.timer is None:
            return contextlib.nullcontext()
        timespec = self.loads.alloca(llvm_ir.IntType(64), size=i64(2), name="timespec")
        return self.timer.around(self.b, self.slot(self.profile_slot), timespec,
                                 self.timer.site(what, inst.name, source_lines))

    def inside(self, description: str):
        return self.timer.inside(description) if self.timer else contextlib.nullcontext()

    def emit_kernel_call(self, inst: Instruction) -> None:
        """One kernel computing `inst`, and its call (split across threads by rows)."""
        info = self.lower_instruction(inst)
        self.kernels.append(info)
        kind = inst.attrs.get("kind")
        what = f"{info.name} ({inst.opcode}{' ' + kind if kind else ''})"
        with self.timed(what, inst, info.source_lines):
            self.call_kernel(info)

    def emit_lapack_call(self, inst: Instruction) -> None:
        """A LAPACK custom call's kernel; any other custom call should not be here."""
        if parse_target(inst.attrs.get("custom_call_target", "")) is None:
            raise NotImplementedError(
                f"the CPU backend cannot run custom-call %{inst.name} to "
                f"{inst.attrs.get('custom_call_target')!r}: only LAPACK targets reach codegen")
        self.emit_kernel_call(inst)

    def call_kernel(self, info: KernelInfo) -> None:
        kernel = self.llvm.globals[info.name]
        pointers = [self.slot(k) for k in info.output_slots + info.input_slots]
        if info.parallel_rows:
            table = self.loads.alloca(PTR, size=i64(len(pointers)), name="kernel_args")
            for k, p in enumerate(pointers):
                self.b.store(p, self.b.gep(table, [i64(k)], source_etype=PTR))
            wrapper = (info.name, info.row_align)
            if wrapper not in self.parallel_wrappers:
                self.parallel_wrappers[wrapper] = parallel_for(self.llvm, kernel, info.row_align)
            self.b.call(self.parallel_wrappers[wrapper], [table, i64(info.parallel_rows)])
        else:
            self.b.call(kernel, pointers)

    def copy_slots(self, sources: list[int], targets: list[int], shapes) -> None:
        """targets[k] = sources[k], safe when a source is also an earlier target (a swap)."""
        b = self.b
        memmove = self.ctx.declare("llvm.memmove.p0.p0.i64", llvm_ir.VoidType(),
                                   [PTR, PTR, llvm_ir.IntType(64), llvm_ir.IntType(1)])
        no = llvm_ir.Constant(llvm_ir.IntType(1), 0)
        staged = {}
        target_set = set(targets)
        for k, (src, dst) in enumerate(zip(sources, targets)):
            if src != dst and src in target_set and shapes[k].nbytes:
                # In the entry block, through its own builder (another builder inserting
                # there would shift where this one appends).
                scratch = self.loads.alloca(llvm_ir.ArrayType(llvm_ir.IntType(8),
                                                              shapes[k].nbytes))
                b.call(memmove, [scratch, self.slot(src), i64(shapes[k].nbytes), no])
                staged[k] = scratch
        for k, (src, dst) in enumerate(zip(sources, targets)):
            if src != dst and shapes[k].nbytes:
                origin = staged.get(k, None) or self.slot(src)
                b.call(memmove, [self.slot(dst), origin, i64(shapes[k].nbytes), no])

    def emit_while(self, inst: Instruction) -> None:
        b = self.b
        state = self.slots_of(inst)
        shapes = leaves(inst.shape)
        with self.timed("copy into loop state", inst):
            self.copy_slots(self.slots_of(inst.operands[0]), state, shapes)
        header = b.append_basic_block("while.header")
        body = b.append_basic_block("while.body")
        done = b.append_basic_block("while.exit")
        b.branch(header)
        b.position_at_end(header)
        condition = inst.calls["condition"]
        loop_body = inst.calls["body"]
        with self.inside(f"while %{inst.name} condition"):
            self.emit_program(condition)
        (pred_slot,) = self.slots_of(condition.root)
        flag = b.load(self.slot(pred_slot), typ=llvm_ir.IntType(8))
        b.cbranch(b.icmp_unsigned("!=", flag, llvm_ir.Constant(flag.type, 0)), body, done)
        b.position_at_end(body)
        with self.inside(f"while %{inst.name} body"):
            self.emit_program(loop_body)
            with self.timed("copy of loop state", loop_body.root):
                self.copy_slots(self.slots_of(loop_body.root), state, shapes)
        b.branch(header)
        b.position_at_end(done)

    def emit_conditional(self, inst: Instruction) -> None:
        b = self.b
        selector, *operands = inst.operands
        (selector_slot,) = self.slots_of(selector)
        branches = inst.calls.get("branch_computations") or [
            inst.calls["true_computation"], inst.calls["false_computation"]]
        value = load_element(self.ctx, self.slot(selector_slot), selector.shape, [])
        if selector.shape.dtype is DType.PRED:
            index = b.select(value, llvm_ir.Constant(llvm_ir.IntType(32), 0),
                             llvm_ir.Constant(llvm_ir.IntType(32), 1))
        else:
            index = convert(self.ctx, value, selector.shape.dtype, DType.S32)
        blocks = [b.append_basic_block(f"branch.{k}") for k in range(len(branches))]
        merge = b.append_basic_block("branch.merge")
        switch = b.switch(index, blocks[-1])  # out-of-range indices take the last branch
        for k, block in enumerate(blocks[:-1]):
            switch.add_case(llvm_ir.Constant(llvm_ir.IntType(32), k), block)
        outputs = self.slots_of(inst)
        for k, (block, branch) in enumerate(zip(blocks, branches)):
            b.position_at_end(block)
            with self.inside(f"branch {k} of %{inst.name}"):
                self.emit_program(branch)
                with self.timed("copy of branch result", branch.root):
                    self.copy_slots(self.slots_of(branch.root), outputs, leaves(inst.shape))
            b.branch(merge)
        b.position_at_end(merge)

    # --- one kernel ---------------------------------------------------------------------
    def lower_instruction(self, inst: Instruction) -> KernelInfo:
        out_slots = self.slots_of(inst)
        operands = list(inst.operands)
        in_slots = [s for o in operands for s in self.slots_of(o)]
        name = f"kernel.{len(self.kernels)}.{inst.name}"
        info = KernelInfo(name, inst, out_slots, in_slots, _source_lines(inst))
        aliased = bool(set(out_slots) & set(in_slots))
        n_args = len(out_slots) + len(in_slots)
        info.parallel_rows = self.parallel_rows(inst)
        info.row_align = self.row_align(inst)
        key = (_repeats(out_slots + in_slots), _repeats([id(o) for o in operands]),
               info.parallel_rows, structure_key(inst, self.structure_memo, _NOT_CODE_ATTRS))
        if key in self.kernel_names:
            info.name = self.kernel_names[key]
            return info
        self.kernel_names[key] = name
        if info.parallel_rows:
            # (ptr args, i64 begin, i64 end): rows [begin, end) of the output, on any thread.
            # It calls the body with the pointers as arguments, marked noalias: pointers
            # loaded from a table carry no such promise, and without it LLVM neither
            # vectorizes the loops nor hoists loads out of them.
            entry_fn = llvm_ir.Function(self.llvm, parallel_kernel_type(), name)
            entry_fn.linkage = "internal"
            entry_fn.attributes.add("nounwind")
            caller = llvm_ir.IRBuilder(entry_fn.append_basic_block("entry"))
            table, begin, end = entry_fn.args
            loaded = [caller.load(caller.gep(table, [i64(k)], source_etype=PTR), typ=PTR)
                      for k in range(n_args)]
            fn = llvm_ir.Function(self.llvm, llvm_ir.FunctionType(
                llvm_ir.VoidType(), [PTR] * n_args + [llvm_ir.IntType(64)] * 2), name + ".rows")
            for arg in fn.args[:n_args]:
                if not aliased:
                    arg.add_attribute("noalias")
            fn.attributes.add("alwaysinline")
            caller.call(fn, loaded + [begin, end])
            caller.ret_void()
            builder = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
            pointers = list(fn.args[:n_args])
            rows = (fn.args[n_args], fn.args[n_args + 1])
        else:
            fn_type = llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR] * n_args)
            fn = llvm_ir.Function(self.llvm, fn_type, name)
            for arg in fn.args:
                if not aliased:
                    arg.add_attribute("noalias")
            builder = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
            pointers = list(fn.args)
            rows = None
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        # Each kernel is optimized on its own: LLVM's loop passes slow down on one huge
        # function (all kernels inlined into entry took ~20% longer to compile).
        (entry_fn if info.parallel_rows else fn).attributes.add("noinline")
        ctx = ScalarContext(builder, self.llvm)
        outputs = pointers[:len(out_slots)]
        inputs = pointers[len(out_slots):]
        if inst.opcode in _LAPACK_KERNELS:
            _LAPACK_KERNELS[inst.opcode](ctx, inst, outputs, inputs)
        elif inst.opcode == "scatter":
            self.emit_scatter(ctx, inst, outputs[0], inputs,
                              in_place=out_slots[0] == in_slots[0])
        elif (dus := self.update_in_place(inst)) is not None:
            buffers = ({id(p): inputs[p.attrs["number"]]
                        for p in inst.calls["calls"].parameters} if inst.opcode == "fusion"
                       else {id(o): p for o, p in zip(operands, inputs)})
            self.emit_update(ctx, dus, outputs[0], buffers)
        elif inst.opcode == "select-and-scatter":
            emitter = ElementalEmitter(ctx, _no_parameters, self.constants,
                                       {id(inst.operands[2]): inputs[2]})
            emit_select_and_scatter(ctx, emitter, inst, outputs[0], inputs[0], inputs[1],
                                    rows)
        elif prefix_scan_of(inst) is not None or pooling_of(inst) is not None:
            # A windowed kernel (codegen/window_kernels.py), its producers fused in.
            if inst.opcode == "fusion":
                comp = inst.calls["calls"]
                buffers = {id(p): inputs[p.attrs["number"]] for p in comp.parameters}
            else:
                buffers = {id(o): p for o, p in zip(operands, inputs)}
            emitter = ElementalEmitter(ctx, _no_parameters, self.constants, buffers)
            if prefix_scan_of(inst) is not None:
                emit_prefix_scan(ctx, emitter, prefix_scan_of(inst), outputs[0], rows)
            else:
                emit_pooling(ctx, emitter, pooling_of(inst), outputs[0], rows)
        elif inst.opcode == "dot" and gemm_plan(inst) is not None:
            emit_gemm(ctx, gemm_plan(inst), outputs[0], inputs[0], inputs[1], rows)
        elif self.accumulates_in_place(inst):
            comp = inst.calls["calls"]
            dot = self.output_fusion_dot(inst)
            params = {id(p): inputs[p.attrs["number"]] for p in comp.parameters}
            # out already holds the accumulator (its buffer): out += product.
            emit_gemm(ctx, gemm_plan(dot), outputs[0], params[id(dot.operands[0])],
                      params[id(dot.operands[1])], rows, accumulate=True)
        elif inst.opcode == "fusion" and self.output_fusion_dot(inst) is not None:
            comp = inst.calls["calls"]
            dot = self.output_fusion_dot(inst)
            params = {id(p): inputs[p.attrs["number"]] for p in comp.parameters}
            emit_gemm(ctx, gemm_plan(dot), outputs[0], params[id(dot.operands[0])],
                      params[id(dot.operands[1])], rows)
            # The epilogue reads the product where it was just written, element by element
            # (the same rows).
            self.emit_loop_nest(ctx, comp.root, outputs, {**params, id(dot): outputs[0]},
                                rows, row_dims=gemm_plan(dot).row_dims)
        elif inst.opcode == "fusion":
            comp = inst.calls["calls"]
            params = {id(p): inputs[p.attrs["number"]] for p in comp.parameters}
            pieces = _concatenated_pieces(comp, rows)
            if pieces is None:
                self.emit_loop_nest(ctx, comp.root, outputs, params, rows)
            else:
                self.emit_concatenation(ctx, comp.root, pieces, outputs[0], params, rows)
        elif inst.opcode in ("reshape", "copy") and not inst.shape.is_tuple:
            # The same elements in the same (row-major) order: a block copy, not an index
            # computation per element (a weight reshaped for a convolution's product, each run).
            _emit_block_copy(ctx, outputs[0], inputs[0], inst.shape, rows)
        elif inst.opcode in SORT_OPCODES:
            emit_sort_kernel(ctx, self.constants, inst, outputs, inputs, rows)
        elif is_elemental(inst):
            buffers = {id(o): p for o, p in zip(operands, inputs)}
            self.emit_loop_nest(ctx, inst, outputs, buffers, rows)
        else:
            raise NotImplementedError(f"the CPU backend cannot run '{inst.opcode}' "
                                      f"(%{inst.name}) yet")
        builder.ret_void()
        return info

    def update_in_place(self, inst: Instruction) -> Optional[Instruction]:
        """The dynamic-update-slice `inst` computes in its operand's buffer (the buffer plan
        gave them one slot, ir/buffers.py), if any: then only the update is written."""
        k = updated_operand(inst)
        if k is None or inst.opcode == "scatter":
            return None
        if self.slots_of(inst.operands[k]) != self.slots_of(inst):
            return None
        dus = inst if inst.opcode != "fusion" else inst.calls["calls"].root
        return dus if dus.opcode == "dynamic-update-slice" else None

    def accumulates_in_place(self, inst: Instruction) -> bool:
        """A fused `acc + dot(a, b)` whose output shares acc's buffer: a GEMM with beta=1."""
        if inst.opcode != "fusion" or self.output_fusion_dot(inst) is None:
            return False
        acc = accumulated_parameter(inst.calls["calls"])
        return (acc is not None and self.slots_of(inst.operands[acc.attrs["number"]])
                == self.slots_of(inst))

    def emit_update(self, ctx: ScalarContext, dus: Instruction, out, buffers: dict) -> None:
        """out[start + i] = update[i] over the update's elements only: `out` already holds
        the operand (dynamic-update-slice in place)."""
        operand, update, *starts = dus.operands
        emitter = ElementalEmitter(ctx, _no_parameters, self.constants, buffers)
        b = ctx.builder
        begins = []
        for start, dim, size in zip(starts, operand.shape.dims, update.shape.dims):
            value = convert(ctx, emitter.value(start, []), start.shape.dtype, DType.S64)
            begins.append(emitter.clamp(value, 0, dim - size))
        dtype = operand.shape.dtype
        index: list = []

        def nest(level: int) -> None:
            if level == update.shape.rank:
                value = emitter.value(update, list(index))
                target = [b.add(i, begin) for i, begin in zip(index, begins)]
                address = b.gep(out, [linearize(b, target, operand.shape.dims)], inbounds=True,
                                source_etype=memory_type(dtype))
                b.store(to_memory(ctx, value, dtype), address)
                return
            with for_range(b, update.shape.dims[level], name=f"u{level}") as var:
                index.append(var)
                emitter.push_scope()
                nest(level + 1)
                emitter.pop_scope()
                index.pop()
        if update.shape.size:
            nest(0)

    def gemm_of(self, inst: Instruction):
        """The row-major product `inst` computes (a dot, or an output fusion's), if any."""
        if inst.opcode == "dot":
            return gemm_plan(inst)
        dot = self.output_fusion_dot(inst) if inst.opcode == "fusion" else None
        return gemm_plan(dot) if dot is not None else None

    def row_align(self, inst: Instruction) -> int:
        """Rows a split keeps together: a BLAS product's register tiles (codegen/dot.py)."""
        plan = self.gemm_of(inst)
        return row_alignment(plan) if plan is not None else 1

    def parallel_rows(self, inst: Instruction) -> int:
        """Rows to split across threads (0: run on one thread), from a simple cost model:
        output elements times the instructions computed per element."""
        if inst.opcode in SORT_OPCODES:
            return sort_parallel_rows(inst)
        if thread_count() < 2 or inst.shape.is_tuple or inst.shape.rank == 0:
            return 0
        if self.update_in_place(inst) is not None:
            return 0   # writes only its update: small work
        if inst.opcode == "select-and-scatter":
            rows = select_and_scatter_rows(inst)
            work = inst.operands[1].shape.size * math.prod(w.size for w in inst.attrs["window"])
            return rows if rows >= thread_count() and work >= MIN_PARALLEL_WORK else 0
        if inst.opcode not in ("fusion",) and not is_elemental(inst):
            return 0
        if scan_splits_rows(inst):
            return 0
        plan = self.gemm_of(inst)
        if inst.opcode == "dot" or plan is not None:
            # A one-thread BLAS call split by rows across ours (codegen/blas.py), unless the
            # rows kept together for identical results leave nothing to split.
            if plan is None:
                return 0
            rows = row_split(plan, thread_count())
            return rows if rows >= 2 * row_alignment(plan) else 0
        per_element = len(inst.calls["calls"].instructions) if inst.opcode == "fusion" else 1
        for node in (inst.calls["calls"].instructions if inst.opcode == "fusion" else [inst]):
            if node.opcode in ("reduce", "dot"):
                per_element += node.operands[0].shape.size // max(node.shape.size, 1)
        rows = inst.shape.dims[0]
        if rows < thread_count() or inst.shape.size * per_element < MIN_PARALLEL_WORK:
            return 0
        return rows

    @staticmethod
    def output_fusion_dot(inst: Instruction):
        """The dot a fusion is built around, when BLAS-style emission applies to it."""
        comp = inst.calls["calls"]
        dot = epilogue_of(comp)
        if dot is None or gemm_plan(dot) is None:
            return None
        if any(o.opcode != "parameter" for o in dot.operands):
            return None
        if comp.root.shape.dtype != dot.shape.dtype:
            return None
        return dot

    def emit_concatenation(self, ctx: ScalarContext, root: Instruction, pieces: list, out,
                           buffers: dict, rows=None) -> None:
        """A fused concatenation: one loop nest over the dims before the joined axis, and in
        it one loop nest per part, storing at the part's offset. No element tests which part
        it is in, the inner loops vectorize, and the output is written in order (im2col's 49
        parts of 3 features each, as 49 whole passes over a 59 MB patch matrix, took 3x as
        long)."""
        (axis,) = root.attrs["dimensions"]
        dims = root.shape.dims
        emitter = ElementalEmitter(ctx, _no_parameters, self.constants, buffers)
        b = ctx.builder
        index: list = []

        def loop(level: int, extent: int, body) -> None:
            with for_range(b, name=f"d{level}", **level_bounds(level, extent, rows)) as var:
                index.append(var)
                emitter.push_scope()
                body()
                emitter.pop_scope()
                index.pop()

        def part(piece: Instruction, offset: int, level: int) -> None:
            if level < root.shape.rank:
                loop(level, piece.shape.dims[level], lambda: part(piece, offset, level + 1))
                return
            target = list(index)
            if offset:
                target[axis] = b.add(target[axis], i64(offset))
            stored = to_memory(ctx, emitter.value(piece, index), piece.shape.dtype)
            b.store(stored, b.gep(out, [linearize(b, target, dims)], inbounds=True,
                                  source_etype=memory_type(piece.shape.dtype)))

        def shared(level: int) -> None:
            if level < axis:
                loop(level, dims[level], lambda: shared(level + 1))
                return
            for piece, offsets in pieces:
                part(piece, offsets[axis], level)

        shared(0)

    def emit_loop_nest(self, ctx: ScalarContext, root: Instruction, outputs: list,
                       buffers: dict, rows=None, row_dims: int = 1) -> None:
        """for each output index: out[index] = value(root, index). `rows` (a thread's share)
        run over the first `row_dims` dims merged (one loop, its indices by division)."""
        out_shapes = leaves(root.shape)
        groups = [list(range(len(out_shapes)))]
        if len({s.dims for s in out_shapes}) > 1:
            groups = [[k] for k in range(len(out_shapes))]  # differently shaped outputs
        row_reductions = _row_reductions(root, buffers)
        for group in groups:
            dims = out_shapes[group[0]].dims
            emitter = ElementalEmitter(ctx, _no_parameters, self.constants, buffers)
            b = ctx.builder
            index: list = []
            caches = {}
            for found in row_reductions.values():
                for reduction in found:
                    cache = _row_cache(ctx, reduction, root, buffers)
                    if cache is not None and id(reduction.operands[0]) not in emitter.row_caches:
                        caches[id(reduction)] = cache
                        emitter.row_caches[id(reduction.operands[0])] = cache

            def enter(level: int) -> None:
                """Row reductions the fusion needs are computed once per row, here, before
                the loop over the row (their broadcasts then hit the cache)."""
                for reduction in row_reductions.get(level + 1, []):
                    cache = caches.get(id(reduction))
                    if cache is not None:
                        cache.state = "filling"
                    emitter.value(reduction, list(index))
                    if cache is not None:
                        cache.state = "filled"

            def leave(level: int) -> None:
                for reduction in row_reductions.get(level + 1, []):
                    if caches.get(id(reduction)) is not None:
                        caches[id(reduction)].state = "off"

            def merged_rows() -> None:
                merged = dims[:row_dims]
                with for_range(b, name="row", **level_bounds(0, math.prod(merged), rows)) as r:
                    for level in reversed(range(row_dims)):   # r = row-major index of merged
                        index.insert(0, b.urem(r, i64(merged[level])) if level else r)
                        r = b.udiv(r, i64(merged[level]))
                    for level in range(row_dims):
                        emitter.push_scope()
                        enter(level)
                    nest(row_dims)
                    for level in reversed(range(row_dims)):
                        leave(level)
                        emitter.pop_scope()
                    del index[:row_dims]

            def nest(level: int) -> None:
                if level == 0 and row_dims > 1:
                    merged_rows()
                    return
                if level == len(dims):
                    value = emitter.value(root, index)
                    values = value if isinstance(value, list) else [value]
                    for k in group:
                        shape = out_shapes[k]
                        stored = to_memory(ctx, values[k], shape.dtype)
                        address = b.gep(outputs[k], [linearize(b, index, dims)],
                                        inbounds=True, source_etype=memory_type(shape.dtype))
                        b.store(stored, address)
                    return
                with for_range(b, name=f"d{level}",
                               **level_bounds(level, dims[level], rows)) as var:
                    index.append(var)
                    emitter.push_scope()
                    enter(level)
                    nest(level + 1)
                    leave(level)
                    emitter.pop_scope()
                    index.pop()
            if all(s.size > 0 for s in (out_shapes[k] for k in group)):
                nest(0)

    def emit_scatter(self, ctx: ScalarContext, inst: Instruction, out, inputs: list,
                     in_place: bool = False) -> None:
        """Copy the operand (unless `out` is its buffer), then combine every in-bounds update
        window into it (XLA)."""
        operand, indices, updates = inst.operands
        op_ptr, idx_ptr, upd_ptr = inputs
        b = ctx.builder
        shape = operand.shape
        nbytes = shape.nbytes
        if nbytes and not in_place:
            memmove = ctx.declare("llvm.memmove.p0.p0.i64", llvm_ir.VoidType(),
                                  [PTR, PTR, llvm_ir.IntType(64), llvm_ir.IntType(1)])
            b.call(memmove, [out, op_ptr, i64(nbytes), llvm_ir.Constant(llvm_ir.IntType(1), 0)])
        if updates.shape.size == 0:
            return
        comp = inst.calls["to_apply"]
        emitter = ElementalEmitter(ctx, _no_parameters, self.constants)
        index: list = []

        def body() -> None:
            in_bounds, target = scatter_target(ctx, inst, idx_ptr, index)
            with b.if_then(in_bounds):
                old = load_element(ctx, out, shape, target)
                new = load_element(ctx, upd_ptr, updates.shape, index)
                combined = emit_scalar_computation(emitter, comp, [old, new])
                address = b.gep(out, [linearize(b, target, shape.dims)], inbounds=True,
                                source_etype=memory_type(shape.dtype))
                b.store(to_memory(ctx, combined, shape.dtype), address)

        def nest(level: int) -> None:
            if level == updates.shape.rank:
                body()
                return
            with for_range(b, updates.shape.dims[level], f"u{level}") as var:
                index.append(var)
                nest(level + 1)
                index.pop()
        nest(0)


def _emit_block_copy(ctx: ScalarContext, out, source, shape, rows=None) -> None:
    """out = source, byte for byte; with `rows`, only those rows of out's first dim (the
    same bytes of source: the order of elements is the same)."""
    b = ctx.builder
    row_bytes = shape.nbytes // shape.dims[0] if shape.rank and shape.dims[0] else shape.nbytes
    begin, end = rows if rows is not None else (i64(0), i64(shape.dims[0] if shape.rank else 1))
    start = b.mul(begin, i64(row_bytes))
    size = b.mul(b.sub(end, begin), i64(row_bytes))
    # memmove: the buffer plan may give the result its operand's buffer.
    memmove = ctx.declare("llvm.memmove.p0.p0.i64", llvm_ir.VoidType(),
                          [PTR, PTR, llvm_ir.IntType(64), llvm_ir.IntType(1)])
    byte = llvm_ir.IntType(8)
    b.call(memmove, [b.gep(out, [start], source_etype=byte),
                     b.gep(source, [start], source_etype=byte),
                     size, llvm_ir.Constant(llvm_ir.IntType(1), 0)])


def _concatenated_pieces(comp, rows):
    """[(part, offsets)] when a fusion's root is a concatenate (a tree of them along one
    axis flattened) that can run as a loop per part inside the shared loops
    (`emit_concatenation`; no reductions or products in the fusion; a split by rows may not
    cut across parts), else None."""
    root = comp.root
    if root.opcode != "concatenate" or root.shape.is_tuple:
        return None
    (axis,) = root.attrs["dimensions"]
    if (rows is not None and axis == 0) or any(i.opcode in ("reduce", "dot")
                                              for i in comp.instructions):
        return None
    pieces = []

    def add_parts(concatenate: Instruction, at: int) -> None:
        for part in concatenate.operands:
            if part.opcode == "concatenate" and part.attrs["dimensions"] == (axis,):
                add_parts(part, at)  # a tree of concatenates (im2col's) is one flat list
            elif part.shape.size:
                offsets = [0] * root.shape.rank
                offsets[axis] = at
                pieces.append((part, offsets))
            at += part.shape.dims[axis]

    add_parts(root, 0)
    return pieces


def _row_reductions(root: Instruction, buffers: dict) -> dict[int, list[Instruction]]:
    """Reductions in root's computation whose result indexes the output's leading dims, by
    rank: computed once per row when the loop nest reaches that depth."""
    found: dict[int, list[Instruction]] = {}
    for node in post_order([root], stop=lambda inst: id(inst) in buffers):
        if node.opcode != "reduce" or node.shape.is_tuple or root.shape.is_tuple:
            continue
        rank = node.shape.rank
        if rank and root.shape.dims[:rank] == node.shape.dims:
            found.setdefault(rank, []).append(node)
    return found


# Ops worth keeping in a row buffer rather than computing twice (loads and adds are not).
_COSTLY = opcodes_where(lambda s: s.cost in (CostClass.DIVISION, CostClass.TRANSCENDENTAL))
_ROW_CACHE_BYTES = 1 << 16


def _row_cache(ctx: ScalarContext, reduction: Instruction, root: Instruction,
               buffers: dict) -> Optional[RowCache]:
    """A RowCache for the input of a row reduction over the trailing dims when the output
    also reads that input directly, at the same index, and it is costly to compute."""
    if len(reduction.operands) != 2 or root.shape.is_tuple:
        return None
    values = reduction.operands[0]
    rank = values.shape.rank
    lead = reduction.shape.rank
    if (values.shape.dims != root.shape.dims or id(values) in buffers
            or tuple(reduction.attrs["dimensions"]) != tuple(range(lead, rank))):
        return None
    row = ArrayShape(values.shape.dtype, values.shape.dims[lead:])
    if row.nbytes > _ROW_CACHE_BYTES or not _costly(values, buffers):
        return None
    if not _reads_elementwise(root, values, reduction, buffers):
        return None
    storage = alloca_at_entry(ctx.builder, memory_type(row.dtype), "row_cache", row.size)
    return RowCache(storage, row, lead)


def _costly(inst: Instruction, buffers: dict) -> bool:
    stack, seen = [inst], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or id(node) in buffers:
            continue
        seen.add(id(node))
        if node.opcode in _COSTLY:
            return True
        if node.opcode != "reduce":
            stack.extend(node.operands)
    return False


def _reads_elementwise(root: Instruction, target: Instruction, skip: Instruction,
                       buffers: dict) -> bool:
    """Whether `root` reads `target` at its own index through elementwise ops only (not
    through `skip`, the reduction, or anything that moves indices)."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is target:
            return True
        if id(node) in seen or node is skip or id(node) in buffers:
            continue
        seen.add(id(node))
        if spec(node.opcode).elementwise and node.shape.dims == root.shape.dims:
            stack.extend(node.operands)
    return False


def _repeats(items: list) -> tuple:
    """Which items equal an earlier one: for each, the position of its first occurrence."""
    first: dict = {}
    return tuple(first.setdefault(item, k) for k, item in enumerate(items))


def _no_parameters(inst: Instruction, index: list):
    raise NotImplementedError(f"parameter %{inst.name} has no buffer in this kernel")


def _source_lines(inst: Instruction) -> list[str]:
    """The user source lines an instruction (or the fusion it calls) holds."""
    insts = [inst]
    if inst.opcode == "fusion":
        insts = inst.calls["calls"].instructions
    lines = []
    for i in insts:
        where = i.source_line
        if where and where not in lines:
            lines.append(where)
    return lines


# Kernels that call LAPACK for one opcode (codegen/lapack.py).
_LAPACK_KERNELS = {Opcode.CUSTOM_CALL: lapack.emit_lapack_custom_call,
                   Opcode.CHOLESKY: lapack.emit_cholesky,
                   Opcode.TRIANGULAR_SOLVE: lapack.emit_triangular_solve}

# How each op runs on the CPU: `rule(lowering, inst)` emits it into the entry function.
# Elemental ops (a rule in codegen.scalar_ops or codegen.elemental), fusions and scatters
# become kernels; calls, loops and branches become control flow around kernel calls.
CPU_LOWERING: dict = {
    **{op: ModuleLowering.emit_kernel_call for op in ELEMENTAL_OPCODES},
    **{op: ModuleLowering.emit_nothing for op in NO_KERNEL},
    Opcode.FUSION: ModuleLowering.emit_kernel_call,
    Opcode.SCATTER: ModuleLowering.emit_kernel_call,
    Opcode.SELECT_AND_SCATTER: ModuleLowering.emit_kernel_call,
    Opcode.CALL: ModuleLowering.emit_call,
    Opcode.WHILE: ModuleLowering.emit_while,
    Opcode.CONDITIONAL: ModuleLowering.emit_conditional,
    # JAX's LAPACK calls run LAPACK (codegen/lapack.py); the autodiff markers are replaced
    # by IR in the lower-custom-calls pass, before codegen.
    Opcode.CUSTOM_CALL: ModuleLowering.emit_lapack_call,
    Opcode.CHOLESKY: ModuleLowering.emit_kernel_call,
    Opcode.TRIANGULAR_SOLVE: ModuleLowering.emit_kernel_call,
    Opcode.CONVOLUTION: Unsupported("rewritten to pads, slices and a dot by the "
                                    "lower-convolution pass, before codegen"),
    Opcode.SORT: ModuleLowering.emit_kernel_call,
    Opcode.TOPK: ModuleLowering.emit_kernel_call,
}
