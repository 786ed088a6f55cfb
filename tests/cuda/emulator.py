"""An emulated CUDA device for tests without a GPU: the program's kernels, as the LLVM IR
given to NVPTX, compiled for the host CPU and run with one OS thread per GPU thread.

Thread and block ids come from callbacks, `bar.sync` is a threading.Barrier (with a timeout,
so a barrier not reached by every thread fails the test instead of hanging), warp shuffles
exchange values through tables and a barrier of their warp, libdevice calls go to libm.
Blocks run one after another with a small grid, so grid-stride loops really stride. It checks
the kernels' logic and the runtime's program interpreter, not NVPTX's code generation.
"""
from __future__ import annotations

import ctypes
import re
import threading
from typing import Sequence

import llvmlite.binding as llvm
import numpy as np

from flowjit.codegen.cpu import host_data_layout, host_target_machine, host_triple, optimize

_SREGS = ("tid.x", "ctaid.x", "ntid.x", "nctaid.x")
_BARRIER_TIMEOUT = 30.0
MAX_BLOCKS = 3


class EmulatedDevice:
    """A runtime.cuda Backend whose memory is host memory and whose kernels run on threads."""

    arch = "sm_80"

    def __init__(self, max_blocks: int = MAX_BLOCKS):
        self.max_blocks = max_blocks
        self.launches: list[tuple[str, tuple, tuple]] = []
        self._local = threading.local()
        self._engines = []
        self._functions: dict[str, int] = {}
        self._kinds: dict[str, str] = {}
        self._callbacks = self._make_callbacks()

    # --- memory ------------------------------------------------------------------------
    def allocate(self, nbytes: int):
        return np.zeros(max(1, nbytes) + 64, np.uint8)

    def pointer(self, allocation) -> int:
        address = allocation.ctypes.data
        return address + (-address) % 64

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        ctypes.memmove(pointer, array.ctypes.data, array.nbytes)

    def to_host(self, array: np.ndarray, pointer: int) -> None:
        ctypes.memmove(array.ctypes.data, pointer, array.nbytes)

    def copy(self, target: int, source: int, nbytes: int) -> None:
        ctypes.memmove(target, source, nbytes)

    def synchronize(self) -> None:
        pass

    # --- kernels -----------------------------------------------------------------------
    def load(self, program) -> None:
        """Compile the program's (NVPTX-flavoured) LLVM IR for the host."""
        text, kernels = program.llvm_ir, program.kernel_names
        self._kinds.update({k.name: k.kind for k in program.kernels})
        text = re.sub(r'target triple = ".*"', f'target triple = "{host_triple()}"', text)
        text = re.sub(r'target datalayout = ".*"', f'target datalayout = "{host_data_layout()}"',
                      text)
        text = text.replace(" addrspace(3)", "")
        text = text.replace("llvm.nvvm.read.ptx.sreg.", "emu.sreg.")
        text = text.replace("llvm.nvvm.barrier0", "emu.barrier")
        text = text.replace("llvm.nvvm.shfl.sync.", "emu.shfl.")
        text = re.sub(r'"__nv_(\w+)"', r'"\1"', text)
        text = re.sub(r"@__nv_(\w+)", r"@\1", text)
        for name, callback in self._callbacks.items():
            llvm.add_symbol(name, ctypes.cast(callback, ctypes.c_void_p).value)
        module = llvm.parse_assembly(text)
        module.verify()
        tm = host_target_machine()
        optimize(module, tm, 2)
        engine = llvm.create_mcjit_compiler(module, tm)
        engine.finalize_object()
        self._engines.append(engine)
        for name in kernels:
            self._functions[name] = engine.get_function_address(name)

    def launch(self, kernel: str, grid, block, pointers: Sequence[int]) -> None:
        self.launches.append((kernel, tuple(grid), tuple(block)))
        function = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(pointers))(
            self._functions[kernel])
        threads = block[0]
        if self._kinds.get(kernel) in ("loop", "scatter"):
            # Grid-stride loops read the block size: fewer threads are as correct (and stride
            # more), and much cheaper to emulate.
            threads = min(threads, 32)
        blocks = min(grid[0], self.max_blocks)
        errors: list[BaseException] = []
        for block_id in range(blocks):
            state = _BlockState(threads)

            def run(tid: int) -> None:
                local = self._local
                local.sregs = {"tid.x": tid, "ctaid.x": block_id, "ntid.x": threads,
                               "nctaid.x": blocks}
                local.block = state
                local.tid = tid
                try:
                    function(*pointers)
                except BaseException as e:  # pragma: no cover - reported below
                    errors.append(e)
                    state.barrier.abort()
            workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            if state.broken or errors:
                raise RuntimeError(f"kernel {kernel}: a barrier was not reached by every "
                                   f"thread of block {block_id}") from (errors[0] if errors
                                                                        else None)

    # --- the callbacks standing in for NVVM intrinsics --------------------------------------
    def _make_callbacks(self) -> dict:
        local = self._local
        callbacks = {}
        for name in _SREGS:
            callbacks[f"emu.sreg.{name}"] = ctypes.CFUNCTYPE(ctypes.c_int32)(
                lambda name=name: local.sregs[name])

        def barrier() -> None:
            local.block.wait()
        callbacks["emu.barrier"] = ctypes.CFUNCTYPE(None)(barrier)
        shuffle_type = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                                        ctypes.c_int32, ctypes.c_int32)
        for mode in ("down", "bfly"):
            def shuffle(mask, value, offset, clamp, mode=mode):
                state, tid = local.block, local.tid
                lane = tid % 32
                source = lane ^ offset if mode == "bfly" else lane + offset
                if source > clamp:
                    source = lane
                # Two tables used in turn: a lane cannot overwrite one before every lane of
                # its warp has passed the next shuffle's barrier, so one barrier suffices.
                turn = state.turns[tid] = state.turns[tid] ^ 1
                table = state.tables[turn]
                table[tid] = value
                state.warps[tid // 32].wait()
                return table[tid - lane + source]
            callbacks[f"emu.shfl.{mode}.i32"] = shuffle_type(shuffle)
        return callbacks


class _BlockState:
    def __init__(self, threads: int):
        self.barrier = threading.Barrier(threads, timeout=_BARRIER_TIMEOUT)
        # Shuffles synchronize one warp, as on the GPU.
        self.warps = [threading.Barrier(min(32, threads), timeout=_BARRIER_TIMEOUT)
                      for _ in range(-(-threads // 32))]
        self.tables = ([0] * threads, [0] * threads)
        self.turns = [0] * threads
        self.broken = False

    def wait(self) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.broken = True
            raise
