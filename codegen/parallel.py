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


# Shared by the caller and its helper threads, on the heap: a helper that starts late (the
# machine is busy) may find the work done and the caller gone.
#   kernel, args, n rows, rows per chunk, next row to claim, rows finished, references held
_SHARED = llvm_ir.LiteralStructType([PTR, PTR, I64, I64, I64, I64, I64])
_KERNEL, _ARGS, _ROWS, _CHUNK, _NEXT, _DONE, _REFS = range(7)
# Chunks per thread: enough that a thread the OS runs late leaves its share to the others.
# A product (aligned rows) is split in one chunk per thread: each chunk packs the whole
# right-hand matrix again, which costs more than an uneven finish.
CHUNKS_PER_THREAD = 4
# The helper threads' entry. It lives in a small module compiled once per process and never
# freed (codegen/cpu.py): a helper that runs after its program's code was freed may still
# be executing it, but by then it only finds that no chunk is left.
WORKER_SYMBOL = "flowjit_parallel_worker"


def _declare(module: llvm_ir.Module, name: str, ret, args) -> llvm_ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return llvm_ir.Function(module, llvm_ir.FunctionType(ret, args), name)


def _field(b: llvm_ir.IRBuilder, shared, k: int):
    return b.gep(shared, [i64(0), I32(k)], source_etype=_SHARED)


def _run_chunks(b: llvm_ir.IRBuilder, kernel, shared) -> None:
    """Claim chunks of rows and run them until none is left (emitted inline). `kernel` is
    the function, or None to call the one the shared state names."""
    fn = b.function
    header = fn.append_basic_block("claim")
    work = fn.append_basic_block("chunk")
    done = fn.append_basic_block("no_more_chunks")
    if kernel is None:
        kernel = b.load(_field(b, shared, _KERNEL), typ=PTR)
        kernel.__class__ = _KernelPointer
    args = b.load(_field(b, shared, _ARGS), typ=PTR)
    n = b.load(_field(b, shared, _ROWS), typ=I64)
    chunk = b.load(_field(b, shared, _CHUNK), typ=I64)
    b.branch(header)
    b.position_at_end(header)
    begin = b.atomic_rmw("add", _field(b, shared, _NEXT), chunk, "monotonic")
    b.cbranch(b.icmp_unsigned("<", begin, n), work, done)
    b.position_at_end(work)
    end = b.add(begin, chunk)
    end = b.select(b.icmp_unsigned("<", end, n), end, n)
    b.call(kernel, [args, begin, end])
    b.atomic_rmw("add", _field(b, shared, _DONE), b.sub(end, begin), "release")
    b.branch(header)
    b.position_at_end(done)


class _KernelPointer(llvm_ir.LoadInstr):
    """A loaded kernel address, callable: llvmlite reads an indirect callee's signature from
    `function_type`, which an opaque pointer does not have."""

    @property
    def function_type(self):
        return kernel_type()


def _release(module, b: llvm_ir.IRBuilder, shared) -> None:
    """Drop one reference to the shared state; the last one frees it."""
    free = _declare(module, "free", llvm_ir.VoidType(), [PTR])
    before = b.atomic_rmw("sub", _field(b, shared, _REFS), i64(1), "acq_rel")
    with b.if_then(b.icmp_unsigned("==", before, i64(1))):
        b.call(free, [shared])


def worker_module(triple: str = "", data_layout: str = "") -> str:
    """The LLVM IR of `ptr flowjit_parallel_worker(ptr shared)`: run chunks, then let go."""
    module = llvm_ir.Module(name="flowjit_parallel_support")
    if triple:
        module.triple = triple
    if data_layout:
        module.data_layout = data_layout
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(PTR, [PTR]), WORKER_SYMBOL)
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    (shared,) = fn.args
    _run_chunks(b, None, shared)
    _release(module, b, shared)
    b.ret(llvm_ir.Constant(PTR, None))
    return str(module)


def _ceil_div(b: llvm_ir.IRBuilder, a, d):
    return b.udiv(b.add(a, b.sub(d, i64(1))), d)


def _aligned_chunk(b: llvm_ir.IRBuilder, n, even, align: int, threads: int):
    """A chunk size that is a multiple of `align` rows near `even` (n / threads): the one
    of the two neighbouring multiples whose chunks finish sooner on `threads` threads
    (rounds of chunks x rows per chunk; the smaller on a tie, which balances better). Always
    rounding up split 8 batch rows of 3-row alignment 6 + 2."""
    lower = b.mul(b.udiv(even, i64(align)), i64(align))
    lower = b.select(b.icmp_unsigned("<", lower, i64(align)), i64(align), lower)
    upper = b.mul(_ceil_div(b, even, i64(align)), i64(align))

    def finish(chunk):
        return b.mul(_ceil_div(b, _ceil_div(b, n, chunk), i64(threads)), chunk)
    return b.select(b.icmp_unsigned("<=", finish(lower), finish(upper)), lower, upper)


def parallel_for(module: llvm_ir.Module, kernel: llvm_ir.Function,
                 align: int = 1) -> llvm_ir.Function:
    """`void run(ptr args, i64 n)`: `kernel` over rows [0, n), in chunks of a multiple of
    `align` rows that the calling thread and threads-1 detached helpers claim one at a time.

    The caller waits only for chunks that were claimed, never for a helper to start: on a
    busy machine a helper the OS runs late finds nothing left, and the caller has done the
    work at one thread's speed instead of waiting a time slice for it (a static split, joined,
    made every parallel kernel as slow as its slowest thread's scheduling)."""
    threads = thread_count()
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR, I64]),
                          f"{kernel.name}.parallel")
    fn.linkage = "internal"
    args, n = fn.args
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    malloc = _declare(module, "malloc", PTR, [I64])
    create = _declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    detach = _declare(module, "pthread_detach", I32, [I64])
    yield_cpu = _declare(module, "sched_yield", I32, [])
    worker = _declare(module, WORKER_SYMBOL, PTR, [PTR])
    handle = b.alloca(I64)
    shared = b.call(malloc, [i64(8 * len(_SHARED.elements))])
    with b.if_then(b.icmp_unsigned("==", shared, llvm_ir.Constant(PTR, None))):
        b.call(kernel, [args, i64(0), n])   # no memory for the shared state: run it here
        b.ret_void()
    chunks = threads * (CHUNKS_PER_THREAD if align == 1 else 1)
    per_chunk = _ceil_div(b, n, i64(chunks))
    if align > 1:
        per_chunk = _aligned_chunk(b, n, per_chunk, align, threads)
    per_chunk = b.select(b.icmp_unsigned("<", per_chunk, i64(1)), i64(1), per_chunk)
    for k, value in ((_KERNEL, kernel), (_ARGS, args), (_ROWS, n), (_CHUNK, per_chunk),
                     (_NEXT, i64(0)), (_DONE, i64(0)), (_REFS, i64(threads))):
        b.store(value, _field(b, shared, k))
    for _ in range(1, threads):
        rc = b.call(create, [handle, llvm_ir.Constant(PTR, None), worker, shared])
        with b.if_else(b.icmp_signed("==", rc, I32(0))) as (started, failed):
            with started:
                b.call(detach, [b.load(handle, typ=I64)])
            with failed:   # no thread: its reference is dropped, its chunks run elsewhere
                b.atomic_rmw("sub", _field(b, shared, _REFS), i64(1), "acq_rel")
    _run_chunks(b, kernel, shared)
    # Wait for the chunks others claimed (the args table lives in the caller's frame).
    wait = fn.append_basic_block("wait")
    finished = fn.append_basic_block("finished")
    spin = fn.append_basic_block("spin")
    b.branch(wait)
    b.position_at_end(wait)
    done = b.load_atomic(_field(b, shared, _DONE), "acquire", 8, typ=I64)
    b.cbranch(b.icmp_unsigned(">=", done, n), finished, spin)
    b.position_at_end(spin)
    b.call(yield_cpu, [])
    b.branch(wait)
    b.position_at_end(finished)
    _release(module, b, shared)
    b.ret_void()
    return fn
