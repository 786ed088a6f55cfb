"""Profile mode: the compiled program times each of its own steps.

With profiling on, every kernel call and every copy of a loop's carried state is bracketed
by two reads of the monotonic clock, and the difference (ns) and a call count are added to
a counters array the runtime passes as one more slot of the table. Steps inside loops add up
over iterations, so a loop body's kernels are seen one by one, as XLA's profiler shows them.
The clock read costs ~20 ns (vDSO), small beside a kernel; what is timed is the call, so a
parallel kernel counts its wall time.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from llvmlite import ir as llvm_ir

from flowjit.codegen.llvm_types import I64, PTR, i64

_CLOCK_MONOTONIC = 1
I32 = llvm_ir.IntType(32)


@dataclass
class ProfileSite:
    """One timed step of the program: what runs there and where."""

    what: str                  # "kernel.3.fusion.1 (fusion kLoop)", "copy of loop state"
    instruction: str           # the HLO instruction's name
    where: str                 # "entry", or the loops and branches it sits in
    source_lines: list = field(default_factory=list)


class StepTimer:
    """Emits the clock reads and counter updates around steps (for one ModuleLowering)."""

    def __init__(self, module: llvm_ir.Module):
        self.module = module
        self.sites: list[ProfileSite] = []
        self.where: list[str] = []
        self._clock = None

    def clock(self):
        if self._clock is None:
            self._clock = llvm_ir.Function(
                self.module, llvm_ir.FunctionType(I32, [I32, PTR]), "clock_gettime")
        return self._clock

    def _now(self, b: llvm_ir.IRBuilder, timespec) -> llvm_ir.Value:
        b.call(self.clock(), [llvm_ir.Constant(I32, _CLOCK_MONOTONIC), timespec])
        seconds = b.load(b.gep(timespec, [i64(0)], source_etype=I64), typ=I64)
        nanos = b.load(b.gep(timespec, [i64(1)], source_etype=I64), typ=I64)
        return b.add(b.mul(seconds, i64(1_000_000_000)), nanos)

    @contextlib.contextmanager
    def around(self, b: llvm_ir.IRBuilder, counters: llvm_ir.Value, timespec: llvm_ir.Value,
               site: ProfileSite):
        """Time what the body emits as `site`: counters[2k] += ns, counters[2k+1] += 1.
        `timespec` is two i64s of stack (allocated in the function's entry block)."""
        index = len(self.sites)
        self.sites.append(site)
        start = self._now(b, timespec)
        yield
        elapsed = b.sub(self._now(b, timespec), start)
        for offset, amount in ((0, elapsed), (1, i64(1))):
            cell = b.gep(counters, [i64(2 * index + offset)], source_etype=I64)
            b.store(b.add(b.load(cell, typ=I64), amount), cell)

    @contextlib.contextmanager
    def inside(self, description: str):
        """Steps emitted in the body are labelled as inside `description` (a loop, a branch)."""
        self.where.append(description)
        try:
            yield
        finally:
            self.where.pop()

    def site(self, what: str, instruction: str, source_lines=()) -> ProfileSite:
        return ProfileSite(what, instruction, " > ".join(self.where) or "entry",
                           list(source_lines))


@dataclass
class ProfileRow:
    site: ProfileSite
    seconds: float             # per run
    calls: float               # per run


@dataclass
class KernelProfile:
    """Time per step of a program, averaged over `runs` runs."""

    rows: list
    runs: int
    run_seconds: float         # wall time of one run, as the caller saw it

    def __str__(self) -> str:
        timed = sum(r.seconds for r in self.rows)
        lines = [f"{'ms/run':>9} {'%':>5} {'calls':>7}  step  [where]  source",
                 f"{self.run_seconds * 1e3:9.3f} {100.0:5.1f} {1:7d}  whole run "
                 f"({(self.run_seconds - timed) * 1e3:.3f} ms outside timed steps)"]
        for row in sorted(self.rows, key=lambda r: -r.seconds):
            share = 100 * row.seconds / self.run_seconds if self.run_seconds else 0.0
            source = row.site.source_lines[0] if row.site.source_lines else ""
            lines.append(f"{row.seconds * 1e3:9.3f} {share:5.1f} {row.calls:7.0f}  "
                         f"{row.site.what} %{row.site.instruction}  [{row.site.where}]"
                         + (f"  {source}" if source else ""))
        return "\n".join(lines)

    def by_where(self) -> dict:
        """Seconds per run summed by where the steps sit (entry, each loop body, ...)."""
        totals: dict = {}
        for row in self.rows:
            totals[row.site.where] = totals.get(row.site.where, 0.0) + row.seconds
        return totals


def report(sites: list, counters, runs: int, run_seconds: float) -> KernelProfile:
    rows = [ProfileRow(site, counters[2 * k] * 1e-9 / runs, counters[2 * k + 1] / runs)
            for k, site in enumerate(sites)]
    return KernelProfile(rows, runs, run_seconds)
