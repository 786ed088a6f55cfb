"""Splitting large kernels across the cores: pthreads driven from the compiled code itself.

A parallel kernel is `void k(ptr args, i64 begin, i64 end)`: it computes rows
[begin, end) of its output's first dimension, reading its buffer pointers from `args`.
`parallel_for(k, args, n)` runs it on `threads` chunks: threads-1 new pthreads and the
calling thread, then joins them — no Python and no GIL anywhere near a kernel. A chunk whose
thread cannot be created runs on the calling thread instead.
"""
from __future__ import annotations

import os

from llvmlite import ir as llvm_ir

from flowjit.codegen.llvm_types import I32, I64, PTR, i64

# Below this much work (output elements x instructions per element) a kernel stays on one
# thread: creating and joining a thread costs tens of microseconds.
MIN_PARALLEL_WORK = 1 << 20


def thread_count() -> int:
    return max(1, int(os.environ.get("FLOWJIT_THREADS", os.cpu_count() or 1)))


def kernel_type() -> llvm_ir.FunctionType:
    return llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR, I64, I64])


_CONTEXT = llvm_ir.LiteralStructType([PTR, I64, I64])  # args, begin, end


def _declare(module: llvm_ir.Module, name: str, ret, args) -> llvm_ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return llvm_ir.Function(module, llvm_ir.FunctionType(ret, args), name)


def _worker(module: llvm_ir.Module, kernel: llvm_ir.Function) -> llvm_ir.Function:
    """`ptr worker(ptr context)`: the pthread entry that runs one chunk of `kernel`."""
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(PTR, [PTR]), f"{kernel.name}.worker")
    fn.linkage = "internal"
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    (context,) = fn.args
    fields = [b.load(b.gep(context, [i64(0), I32(k)], source_etype=_CONTEXT), typ=t)
              for k, t in enumerate([PTR, I64, I64])]
    b.call(kernel, fields)
    b.ret(llvm_ir.Constant(PTR, None))
    return fn


def parallel_for(module: llvm_ir.Module, kernel: llvm_ir.Function,
                 align: int = 1) -> llvm_ir.Function:
    """`void run(ptr args, i64 n)`: `kernel` over rows [0, n), split over the threads at
    multiples of `align` rows (a chunk may be empty)."""
    threads = thread_count()
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR, I64]),
                          f"{kernel.name}.parallel")
    fn.linkage = "internal"
    args, n = fn.args
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    create = _declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    join = _declare(module, "pthread_join", I32, [I64, PTR])
    # Opaque pointers to the stack arrays, so GEP/store use the element types given.
    contexts = b.alloca(_CONTEXT, size=i64(threads))
    handles = b.bitcast(b.alloca(I64, size=i64(threads)), PTR)
    started = b.bitcast(b.alloca(llvm_ir.IntType(1), size=i64(threads)), PTR)
    worker = _worker(module, kernel)

    def bound(t):
        even = b.udiv(b.mul(n, i64(t)), i64(threads))
        if align == 1 or t == threads:
            return even
        # The nearest multiple of align: chunks stay as even as the alignment allows.
        aligned = b.mul(b.udiv(b.add(even, i64(align // 2)), i64(align)), i64(align))
        return b.select(b.icmp_unsigned("<", aligned, n), aligned, n)
    for t in range(1, threads):
        context = b.gep(contexts, [i64(t)])
        for k, value in enumerate([args, bound(t), bound(t + 1)]):
            b.store(value, b.gep(contexts, [i64(t), I32(k)]))
        handle = b.gep(handles, [i64(t)], source_etype=I64)
        rc = b.call(create, [handle, llvm_ir.Constant(PTR, None), worker, context])
        ok = b.icmp_signed("==", rc, I32(0))
        b.store(ok, b.gep(started, [i64(t)], source_etype=llvm_ir.IntType(1)))
        with b.if_then(b.not_(ok)):   # no thread: run the chunk here
            b.call(kernel, [args, bound(t), bound(t + 1)])
    b.call(kernel, [args, i64(0), bound(1)])
    for t in range(1, threads):
        ok = b.load(b.gep(started, [i64(t)], source_etype=llvm_ir.IntType(1)),
                    typ=llvm_ir.IntType(1))
        with b.if_then(ok):
            handle = b.load(b.gep(handles, [i64(t)], source_etype=I64), typ=I64)
            b.call(join, [handle, llvm_ir.Constant(PTR, None)])
    b.ret_void()
    return fn
