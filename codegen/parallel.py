"""Splitting large kernels across the cores: pthreads driven from the compiled code itself.

A parallel kernel is `void k(ptr args, i64 begin, i64 end)`: it computes rows
[begin, end) of its output's first dimension, reading its buffer pointers from `args`.
`parallel_for(k, args, n)` runs it in chunks that the calling thread and threads-1 helpers
claim — no Python and no GIL anywhere near a kernel. The helpers are a pool of threads
started once per process (on Linux; elsewhere one thread per launch), each with a mailbox
the caller posts the launch to and a futex it sleeps on after a short spin: a new thread per
launch cost its creation every time and often started on the caller's own core, so half the
splits of a 16M-element kernel gained nothing.
"""
from __future__ import annotations

import os
import platform
import sys

from llvmlite import ir as llvm_ir

from flowjit.codegen.control import for_range
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
# `void post(ptr shared, i64 helpers)`: hand a launch to `helpers` helper threads.
POST_SYMBOL = "flowjit_parallel_post"
# The pool: per helper thread, its mailbox (a launch not yet taken), the counter it sleeps
# on, whether it sleeps, whether it was started.
MAX_HELPERS = 63
_HELPER = llvm_ir.LiteralStructType([PTR, I32, I32, I32, I32])
_MAILBOX, _SIGNAL, _SLEEPING, _STARTED = range(4)
_POOL = llvm_ir.ArrayType(_HELPER, MAX_HELPERS)
# How long an idle helper watches its mailbox before it sleeps (cycle-counter ticks, about
# 30 us): the launches of a loop's body follow each other closer than a futex wake-up.
SPIN_TICKS = 100_000
# futex(2) numbers where the pool runs (Linux); elsewhere a launch creates its threads.
_SYS_FUTEX = {"x86_64": 202, "AMD64": 202, "aarch64": 98, "arm64": 98}
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
# Per parallel kernel, [launches still to run on one thread, the current penalty]: when
# splitting it stops paying (the other cores are busy, or a VM's are stolen), the kernel
# runs on the calling thread for a while.
_BACKOFF = llvm_ir.ArrayType(I64, 2)
# A split that took at least this share of the time one thread would have (estimated from
# the caller's own rows) gained nothing: the next launches run unsplit, for twice as many
# launches each time it happens again (up to MAX_PENALTY), half as many after a split pays.
NO_GAIN = 0.9
MAX_PENALTY = 256


def _declare(module: llvm_ir.Module, name: str, ret, args) -> llvm_ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return llvm_ir.Function(module, llvm_ir.FunctionType(ret, args), name)


def _field(b: llvm_ir.IRBuilder, shared, k: int):
    return b.gep(shared, [i64(0), I32(k)], source_etype=_SHARED)


def _run_chunks(b: llvm_ir.IRBuilder, kernel, shared, own=None) -> None:
    """Claim chunks of rows and run them until none is left (emitted inline). `kernel` is
    the function, or None to call the one the shared state names; `own`, if given, is an
    i64 slot that counts the rows this thread ran."""
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
    if own is not None:
        b.store(b.add(b.load(own, typ=I64), b.sub(end, begin)), own)
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


def _futex_number():
    return _SYS_FUTEX.get(platform.machine()) if sys.platform.startswith("linux") else None


def worker_module(triple: str = "", data_layout: str = "") -> str:
    """The LLVM IR of the process-wide parallel support: `flowjit_parallel_post`, the
    helpers' entry points and the pool (each kernel keeps its own backoff state)."""
    module = llvm_ir.Module(name="flowjit_parallel_support")
    if triple:
        module.triple = triple
    if data_layout:
        module.data_layout = data_layout
    # One launch, then let go (a thread per launch, where there is no pool).
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(PTR, [PTR]), WORKER_SYMBOL)
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    (shared,) = fn.args
    _run_chunks(b, None, shared)
    _release(module, b, shared)
    b.ret(llvm_ir.Constant(PTR, None))
    futex = _futex_number()
    if futex is None:
        _post_by_new_threads(module, fn)
    else:
        pool = llvm_ir.GlobalVariable(module, _POOL, "flowjit_parallel_pool")
        pool.initializer = llvm_ir.Constant(_POOL, None)
        pool.linkage = "internal"
        _post_to_pool(module, pool, _pool_helper(module, pool, futex), futex)
    return str(module)


def _post_function(module: llvm_ir.Module):
    """`void post(ptr shared, i64 helpers)`: its function, args, builder and the slot a new
    thread's handle is written to."""
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(llvm_ir.VoidType(), [PTR, I64]),
                          POST_SYMBOL)
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    return fn, fn.args, b, b.alloca(I64)


def _post_by_new_threads(module: llvm_ir.Module, worker) -> None:
    fn, (shared, helpers), b, handle = _post_function(module)
    create = _declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    detach = _declare(module, "pthread_detach", I32, [I64])
    with for_range(b, helpers, "helper"):
        rc = b.call(create, [handle, llvm_ir.Constant(PTR, None), worker, shared])
        with b.if_else(b.icmp_signed("==", rc, I32(0))) as (started, failed):
            with started:
                b.call(detach, [b.load(handle, typ=I64)])
            with failed:   # no thread: its reference is dropped, its chunks run elsewhere
                _release(module, b, shared)
    b.ret_void()


def _helper_field(b: llvm_ir.IRBuilder, pool, index, k: int):
    return b.gep(pool, [i64(0), index, I32(k)], source_etype=_POOL)


def _syscall(module: llvm_ir.Module):
    existing = module.globals.get("syscall")
    if existing is not None:
        return existing
    return llvm_ir.Function(module, llvm_ir.FunctionType(I64, [I64], var_arg=True), "syscall")


def _pool_helper(module: llvm_ir.Module, pool, futex: int) -> llvm_ir.Function:
    """`ptr helper(ptr index)`: forever take the launch in its mailbox and run its chunks;
    when none comes for SPIN_TICKS, sleep on its futex until one is posted."""
    fn = llvm_ir.Function(module, llvm_ir.FunctionType(PTR, [PTR]), "flowjit_parallel_helper")
    fn.linkage = "internal"
    b = llvm_ir.IRBuilder(fn.append_basic_block("entry"))
    clock = _declare(module, "llvm.readcyclecounter", I64, [])
    index = b.ptrtoint(fn.args[0], I64)
    mailbox = _helper_field(b, pool, index, _MAILBOX)
    signal = _helper_field(b, pool, index, _SIGNAL)
    sleeping = _helper_field(b, pool, index, _SLEEPING)
    top, run, watch, watching, sleep = (fn.append_basic_block(name) for name in (
        "take", "run", "watch", "watching", "sleep"))
    null = llvm_ir.Constant(PTR, None)
    b.branch(top)
    b.position_at_end(top)
    # The counter is read before the mailbox: a post after this changes it, so the futex
    # wait below cannot miss that post.
    seen = b.load_atomic(signal, "seq_cst", 4, typ=I32)
    job = b.atomic_rmw("xchg", mailbox, null, "acq_rel")
    b.cbranch(b.icmp_unsigned("!=", job, null), run, watch)
    b.position_at_end(run)
    _run_chunks(b, None, job)
    _release(module, b, job)
    b.branch(top)
    b.position_at_end(watch)
    since = b.call(clock, [])
    b.branch(watching)
    b.position_at_end(watching)
    waiting = b.load_atomic(mailbox, "acquire", 8, typ=PTR)
    with b.if_then(b.icmp_unsigned("!=", waiting, null)):
        b.branch(top)
    elapsed = b.sub(b.call(clock, []), since)
    b.cbranch(b.icmp_unsigned("<", elapsed, i64(SPIN_TICKS)), watching, sleep)
    b.position_at_end(sleep)
    b.atomic_rmw("xchg", sleeping, I32(1), "seq_cst")
    late = b.load_atomic(mailbox, "seq_cst", 8, typ=PTR)
    with b.if_then(b.icmp_unsigned("==", late, null)):
        b.call(_syscall(module), [i64(futex), signal, i64(FUTEX_WAIT_PRIVATE),
                                  b.zext(seen, I64), null])
    b.atomic_rmw("xchg", sleeping, I32(0), "seq_cst")
    b.branch(top)
    return fn


def _post_to_pool(module: llvm_ir.Module, pool, helper, futex: int) -> None:
    """`post(shared, helpers)`: start helper threads not yet started, put the launch in each
    one's mailbox (dropping the reference of a launch still there, which that helper never
    took), and wake those that sleep."""
    fn, (shared, helpers), b, handle = _post_function(module)
    create = _declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    detach = _declare(module, "pthread_detach", I32, [I64])
    null = llvm_ir.Constant(PTR, None)
    over = b.icmp_unsigned(">", helpers, i64(MAX_HELPERS))
    with b.if_then(over):   # more than the pool holds: their references are dropped
        with for_range(b, b.sub(helpers, i64(MAX_HELPERS)), "extra"):
            _release(module, b, shared)
    count = b.select(over, i64(MAX_HELPERS), helpers)
    with for_range(b, count, "helper") as index:
        started = _helper_field(b, pool, index, _STARTED)
        first = b.cmpxchg(started, I32(0), I32(1), "acq_rel", "monotonic")
        posted = fn.append_basic_block("post")
        with b.if_then(b.extract_value(first, 1)):
            rc = b.call(create, [handle, null, helper, b.inttoptr(index, PTR)])
            with b.if_else(b.icmp_signed("==", rc, I32(0))) as (ok, failed):
                with ok:
                    b.call(detach, [b.load(handle, typ=I64)])
                with failed:   # no thread: its chunks run elsewhere, later calls retry
                    b.atomic_rmw("xchg", started, I32(0), "release")
                    _release(module, b, shared)
                    b.branch(posted)
        previous = b.atomic_rmw("xchg", _helper_field(b, pool, index, _MAILBOX), shared,
                                "acq_rel")
        with b.if_then(b.icmp_unsigned("!=", previous, null)):
            _release(module, b, previous)
        signal = _helper_field(b, pool, index, _SIGNAL)
        b.atomic_rmw("add", signal, I32(1), "seq_cst")
        asleep = b.load_atomic(_helper_field(b, pool, index, _SLEEPING), "seq_cst", 4, typ=I32)
        with b.if_then(b.icmp_unsigned("!=", asleep, I32(0))):
            b.call(_syscall(module), [i64(futex), signal, i64(FUTEX_WAKE_PRIVATE), i64(1)])
        b.branch(posted)
        b.position_at_end(posted)
    b.ret_void()


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
    post = _declare(module, POST_SYMBOL, llvm_ir.VoidType(), [PTR, I64])
    yield_cpu = _declare(module, "sched_yield", I32, [])
    clock = _declare(module, "llvm.readcyclecounter", I64, [])
    own = b.alloca(I64)
    backoff = llvm_ir.GlobalVariable(module, _BACKOFF, f"{kernel.name}.backoff")
    backoff.initializer = llvm_ir.Constant(_BACKOFF, [0, 0])
    backoff.linkage = "internal"
    skip_slot = b.gep(backoff, [i64(0), I32(0)], source_etype=_BACKOFF)
    penalty_slot = b.gep(backoff, [i64(0), I32(1)], source_etype=_BACKOFF)
    skip = b.load_atomic(skip_slot, "monotonic", 8, typ=I64)
    with b.if_then(b.icmp_signed(">", skip, i64(0))):
        # Splitting has not paid lately: this launch runs on the calling thread alone.
        b.atomic_rmw("sub", skip_slot, i64(1), "monotonic")
        b.call(kernel, [args, i64(0), n])
        b.ret_void()
    started_at = b.call(clock, [])
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
    b.call(post, [shared, i64(threads - 1)])
    b.store(i64(0), own)
    working_from = b.call(clock, [])
    _run_chunks(b, kernel, shared, own)
    worked_until = b.call(clock, [])
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
    _adapt(b, n, b.load(own, typ=I64), started_at, working_from, worked_until,
           b.call(clock, []), skip_slot, penalty_slot)
    b.ret_void()
    return fn


def _adapt(b: llvm_ir.IRBuilder, n, own, started_at, working_from, worked_until, ended_at,
           skip_slot, penalty_slot) -> None:
    """After a split launch: if it took NO_GAIN of the time one thread would have taken
    (the caller's own rate times all rows), the next `penalty` launches (doubled each time)
    run unsplit; if it paid, the penalty halves. Only timing changes: a split computes
    exactly what one thread computes."""
    f64 = llvm_ir.DoubleType()
    with b.if_then(b.icmp_unsigned(">", own, i64(0))):   # else the helpers did it all
        one_thread = b.fdiv(b.fmul(b.uitofp(b.sub(worked_until, working_from), f64),
                                   b.uitofp(n, f64)), b.uitofp(own, f64))
        took = b.uitofp(b.sub(ended_at, started_at), f64)
        penalty = b.load_atomic(penalty_slot, "monotonic", 8, typ=I64)
        no_gain = b.fcmp_ordered(">=", took, b.fmul(one_thread, llvm_ir.Constant(f64, NO_GAIN)))
        with b.if_else(no_gain) as (lost, paid):
            with lost:
                doubled = b.mul(penalty, i64(2))
                doubled = b.select(b.icmp_signed("<", doubled, i64(1)), i64(1), doubled)
                doubled = b.select(b.icmp_signed(">", doubled, i64(MAX_PENALTY)),
                                   i64(MAX_PENALTY), doubled)
                b.atomic_rmw("xchg", penalty_slot, doubled, "monotonic")
                b.atomic_rmw("xchg", skip_slot, doubled, "monotonic")
            with paid:
                b.atomic_rmw("xchg", penalty_slot, b.ashr(penalty, i64(1)), "monotonic")
