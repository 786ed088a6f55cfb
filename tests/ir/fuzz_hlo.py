"""A mutation fuzzer over HLO text: bad input must give a flowjit error, never anything else.

Valid modules (the JAX fixtures, modules drawn from `hlo_strategies`, and a few written here
for ops the others lack) are mutated token by token: tokens deleted, duplicated, swapped;
numbers made huge or negative; opcodes, element types, shapes and attribute values
exchanged; operand names renamed (cycles, dangling references); text truncated. Each mutant
goes through parse (which verifies) -> optimize -> compile -> run on small random inputs.
Any exception that is not a `FlowjitError` (HloParseError, VerifierError, ShapeError, ...)
is a bug; so is a crash or a hang.

`tests/ir/test_hlo_fuzz.py` runs a few hundred mutants in-process in CI. The longer run
executes them in a child process with a timeout, so a segfault or a hang is reported with
the mutant's text:

    python -m tests.ir.fuzz_hlo --count 2000 --seed 1
    python -m tests.ir.fuzz_hlo --seed 1 --show 17      # print mutant 17 of that run

Mutant `i` of seed `s` depends only on (s, i), so any report can be replayed alone.
"""
from __future__ import annotations

import argparse
import glob
import multiprocessing
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Optional

import numpy as np

from flowjit.ir.dtypes import DType
from flowjit.ir.errors import FlowjitError
from flowjit.ir.opcodes import Opcode

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures")
# A mutant is only run when every array it computes is this small (random inputs of a
# mutated `f32[99999999]` parameter would test numpy's allocator, not flowjit).
MAX_RUN_ELEMENTS = 1 << 16
HANDWRITTEN_SEEDS = {
    "scatter-gather": """HloModule sg

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

ENTRY main {
  x = f32[5,3] parameter(0)
  i = s32[4,1] parameter(1)
  u = f32[4,3] parameter(2)
  g = f32[4,3] gather(x, i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0},
      index_vector_dim=1, slice_sizes={1,3}
  s = f32[5,3] scatter(x, i, g), update_window_dims={1}, inserted_window_dims={0},
      scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
  ROOT t = (f32[4,3], f32[5,3]) tuple(g, s)
}
""",
    "slices": """HloModule slices

ENTRY main {
  x = f32[6,4] parameter(0)
  k = s32[] parameter(1)
  z = f32[] constant(0)
  d = f32[2,3] dynamic-slice(x, k, k), dynamic_slice_sizes={2,3}
  u = f32[6,4] dynamic-update-slice(x, d, k, k)
  s = f32[3,2] slice(u), slice={[0:6:2], [1:3]}
  p = f32[5,6] pad(s, z), padding=1_1_0x2_2_0
  c = f32[10,6] concatenate(p, p), dimensions={0}
  r = f32[6,10] transpose(c), dimensions={1,0}
  ROOT v = f32[6,10] reverse(r), dimensions={0}
}
""",
    "control": """HloModule control

cond {
  cs = (s32[], f32[3]) parameter(0)
  ci = s32[] get-tuple-element(cs), index=0
  lim = s32[] constant(3)
  ROOT lt = pred[] compare(ci, lim), direction=LT
}

body {
  bs = (s32[], f32[3]) parameter(0)
  bi = s32[] get-tuple-element(bs), index=0
  bv = f32[3] get-tuple-element(bs), index=1
  one = s32[] constant(1)
  ni = s32[] add(bi, one)
  nv = f32[3] multiply(bv, bv)
  ROOT nt = (s32[], f32[3]) tuple(ni, nv)
}

double {
  dp = f32[3] parameter(0)
  ROOT dd = f32[3] add(dp, dp)
}

ENTRY main {
  x = f32[3] parameter(0)
  p = pred[] parameter(1)
  zero = s32[] constant(0)
  init = (s32[], f32[3]) tuple(zero, x)
  w = (s32[], f32[3]) while(init), condition=cond, body=body
  wv = f32[3] get-tuple-element(w), index=1
  c = f32[3] conditional(p, wv, x), true_computation=double, false_computation=double
  ROOT r = f32[3] call(c), to_apply=double
}
""",
    "reduce-dot": """HloModule rd

max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}

ENTRY main {
  x = f32[4,5] parameter(0)
  y = f32[5,2] parameter(1)
  d = f32[4,2] dot(x, y), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ninf = f32[] constant(-inf)
  r = f32[4] reduce(d, ninf), dimensions={1}, to_apply=max
  b = f32[4,2] broadcast(r), dimensions={0}
  e = f32[4,2] exponential(b)
  i = s32[4,2] iota(), iota_dimension=1
  f = f32[4,2] convert(i)
  l = pred[4,2] compare(e, f), direction=GT
  ROOT s = f32[4,2] select(l, e, f)
}
""",
}


def _drawn_seeds(count: int = 12) -> list[str]:
    """Printed modules from the hypothesis strategy, drawn deterministically."""
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.ir.hlo_strategies import modules_with_args
    texts: list[str] = []

    @settings(derandomize=True, max_examples=count, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(modules_with_args())
    def collect(module_and_args):
        texts.append(module_and_args[0].to_text())

    collect()
    return texts[:count]


def seed_texts() -> list[str]:
    """The valid modules mutants are made from (fixed: the same every run)."""
    texts = [open(path).read() for path in sorted(glob.glob(os.path.join(FIXTURES, "*.hlo")))]
    texts += list(HANDWRITTEN_SEEDS.values())
    return texts + _drawn_seeds()


# --- mutations --------------------------------------------------------------------------
_PIECE = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|->|[%A-Za-z0-9_.+\-<>]+|.', re.DOTALL)
_NUMBER = re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?$")
_NAME = re.compile(r"%?[A-Za-z_][A-Za-z0-9_.\-]*$")
OPCODES = [op.value for op in Opcode]
DTYPE_NAMES = [d.value for d in DType]
INTERESTING_NUMBERS = ["0", "1", "-1", "2", "7", "-7", "127", "128", "255", "256", "65535",
                       "65536", "2147483647", "2147483648", "-2147483649", "4294967295",
                       "4294967296", "9223372036854775807", "9223372036854775808",
                       "-9223372036854775809", "18446744073709551616", "99999999999999",
                       "1e400", "-1e400", "65520", "3.5e38", "1e-50", "nan", "inf", "-inf",
                       "0.5", "-0"]
PUNCTUATION = list("{}[]()=,:") + ["->", "ROOT", "ENTRY", "%", "..."]


def _opcode_groups() -> list[list[str]]:
    """Opcodes that take the same operands, so one can stand for another."""
    from flowjit.ir.ops import OPS
    groups: dict[tuple, list[str]] = {}
    for op, spec in OPS.items():
        key = ("elementwise", spec.arity) if spec.elementwise else (spec.role, spec.arity)
        groups.setdefault(key, []).append(op.value)
    return list(groups.values())


OPCODE_GROUPS = _opcode_groups()


def _tokens(text: str) -> list[str]:
    return _PIECE.findall(text)


def _solid(pieces: list[str]) -> list[int]:
    return [i for i, p in enumerate(pieces) if not p.isspace()]


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _delete(pieces, i, rng):
    del pieces[i]


def _duplicate(pieces, i, rng):
    pieces.insert(i, pieces[i])


def _swap(pieces, i, rng):
    j = _pick(rng, _solid(pieces))
    pieces[i], pieces[j] = pieces[j], pieces[i]


def _interesting_number(pieces, i, rng):
    numbers = [k for k in _solid(pieces) if _NUMBER.match(pieces[k])]
    if numbers:
        pieces[_pick(rng, numbers)] = _pick(rng, INTERESTING_NUMBERS)


def _small_number(pieces, i, rng):
    numbers = [k for k in _solid(pieces) if _NUMBER.match(pieces[k]) and "." not in pieces[k]]
    if numbers:
        pieces[_pick(rng, numbers)] = str(int(rng.integers(-3, 9)))


def _other_opcode(pieces, i, rng):
    ops = [k for k in _solid(pieces) if pieces[k] in OPCODES]
    if ops:
        k = _pick(rng, ops)
        similar = [group for group in OPCODE_GROUPS if pieces[k] in group]
        pieces[k] = _pick(rng, similar[0] if similar and rng.random() < 0.7 else OPCODES)


def _other_dtype(pieces, i, rng):
    types = [k for k in _solid(pieces) if pieces[k] in DTYPE_NAMES]
    if types:
        pieces[_pick(rng, types)] = _pick(rng, DTYPE_NAMES)


def _dtype_everywhere(pieces, i, rng):
    """Every use of one element type becomes another: the module may stay well-typed."""
    old, new = _pick(rng, DTYPE_NAMES), _pick(rng, DTYPE_NAMES)
    for k, piece in enumerate(pieces):
        if piece == old:
            pieces[k] = new


def _dimension_everywhere(pieces, i, rng):
    """Every dimension of one size becomes another size (0, 1, large, huge)."""
    dims = [k for k in range(1, len(pieces)) if pieces[k].isdigit()
            and pieces[k - 1] in ("[", ",") and _inside_brackets(pieces, k)]
    if not dims:
        return
    old = pieces[_pick(rng, dims)]
    new = _pick(rng, ["0", "1", "2", "3", "5", "1000", "99999999999999", "4611686018427387904"])
    for k in dims:
        if pieces[k] == old:
            pieces[k] = new


def _inside_brackets(pieces, k) -> bool:
    for j in range(k - 1, max(k - 40, -1), -1):
        if pieces[j] in ("[", "]", "{", "}", "(", ")"):
            return pieces[j] == "["
    return False


def _rename_use(pieces, i, rng):
    """A use names another value: a dangling reference, a cycle, or a value of the wrong
    shape; most often one of the same shape, so the module stays well-typed."""
    names = [k for k in _solid(pieces) if _NAME.match(pieces[k]) and pieces[k] not in OPCODES
             and pieces[k] not in DTYPE_NAMES]
    if len(names) > 1:
        pieces[_pick(rng, names)] = pieces[_pick(rng, names)]


def _renumber_parameter(pieces, i, rng):
    """A parameter takes another's number (or one past the end): duplicate or missing."""
    numbers = [k + 2 for k in range(len(pieces) - 2) if pieces[k] == "parameter"
               and pieces[k + 1] == "(" and pieces[k + 2].isdigit()]
    if numbers:
        taken = [pieces[k] for k in numbers]
        pieces[_pick(rng, numbers)] = _pick(rng, taken + [str(len(taken))])


def _punctuation(pieces, i, rng):
    pieces[i] = _pick(rng, PUNCTUATION)


def _lines(pieces, i, rng):
    lines = "".join(pieces).split("\n")
    a, b = int(rng.integers(len(lines))), int(rng.integers(len(lines)))
    choice = int(rng.integers(3))
    if choice == 0:
        del lines[a]
    elif choice == 1:
        lines.insert(a, lines[b])
    else:
        lines[a], lines[b] = lines[b], lines[a]
    pieces[:] = _tokens("\n".join(lines))


def _truncate(pieces, i, rng):
    del pieces[i:]


def _nest(pieces, i, rng):
    """Wrap a token in many brackets: deep nesting in shapes, literals, attributes."""
    opener = _pick(rng, ["(", "{", "["])
    closer = {"(": ")", "{": "}", "[": "]"}[opener]
    depth = int(_pick(rng, [3, 50, 3000]))
    pieces[i:i] = [opener] * depth + [pieces[i]] + [closer] * depth
    del pieces[i + 2 * depth + 1]


# (mutation, weight): the ones that keep the text parseable weigh more, so that mutants
# get past the parser into the verifier, the passes, the code generator and the runtime.
MUTATIONS = [(_delete, 2), (_duplicate, 1), (_swap, 2), (_interesting_number, 4),
             (_small_number, 4), (_other_opcode, 4), (_other_dtype, 2), (_dtype_everywhere, 3),
             (_dimension_everywhere, 3), (_rename_use, 5), (_renumber_parameter, 2),
             (_punctuation, 1), (_lines, 2), (_truncate, 1), (_nest, 1)]


def _mutate_once(pieces: list[str], rng: np.random.Generator) -> list[str]:
    solid = _solid(pieces)
    if not solid:
        return pieces
    weights = np.array([w for _, w in MUTATIONS], dtype=float)
    mutation = MUTATIONS[int(rng.choice(len(MUTATIONS), p=weights / weights.sum()))][0]
    mutation(pieces, _pick(rng, solid), rng)
    return pieces


def mutant(seeds: list[str], seed: int, index: int) -> str:
    """Mutant number `index` of run `seed`: 1-3 token mutations of one seed module."""
    rng = np.random.default_rng([seed, index])
    pieces = _tokens(_pick(rng, seeds))
    for _ in range(int(rng.integers(1, 4))):
        pieces = _mutate_once(pieces, rng)
    return "".join(pieces)


# --- running one mutant -----------------------------------------------------------------
@dataclass
class Outcome:
    stage: str                 # how far it got: parse, optimize, compile, run, ran, skipped
    error: Optional[str] = None


def _cheap_to_run(module) -> bool:
    from flowjit.ir.shapes import leaves
    for comp in module.computations:
        for inst in comp.instructions:
            if inst.opcode == "while":
                return False   # a mutated loop condition may legitimately never end
            if any(leaf.size > MAX_RUN_ELEMENTS for leaf in leaves(inst.shape)):
                return False
    return True


def exercise(text: str, rng: np.random.Generator) -> Outcome:
    """Take `text` as far as it goes; a FlowjitError ends it, anything else propagates."""
    from flowjit.ir.parser import parse_module
    from flowjit.ir.verifier import verify_compilable
    from flowjit.passes import optimize
    from flowjit.runtime.executable import compile_module
    from tests.ir.hlo_strategies import random_array
    stage = "parse"
    try:
        module = parse_module(text)
        verify_compilable(module)   # as `flowjit run` does before compiling
        stage = "optimize"
        optimized, _ = optimize(module, opt_level=int(_pick(rng, [0, 2])))
        stage = "compile"
        executable = compile_module(optimized)
        if not _cheap_to_run(optimized):
            return Outcome("skipped")
        stage = "run"
        args = [random_array(rng, p.shape) for p in module.entry.parameters]
        with np.errstate(all="ignore"):
            executable(*args)
        return Outcome("ran")
    except FlowjitError as e:
        return Outcome(stage, f"{type(e).__name__}: {e}")


# --- the long run: each mutant in a child process, with a timeout ------------------------
def _worker(connection, seed: int) -> None:
    seeds = seed_texts()
    while True:
        index = connection.recv()
        if index is None:
            return
        text = mutant(seeds, seed, index)
        try:
            outcome = exercise(text, np.random.default_rng([seed, index, 1]))
            connection.send(("ok", outcome.stage))
        except BaseException:
            connection.send(("exception", traceback.format_exc()))


class _Child:
    """A worker process that runs mutants one at a time; restarted after a crash or hang."""

    def __init__(self, seed: int):
        self.seed = seed
        self.start()

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_worker, args=(child_end, self.seed),
                                       daemon=True)
        self.process.start()

    def run(self, index: int, timeout: float) -> tuple[str, str]:
        self.connection.send(index)
        if not self.connection.poll(timeout):
            self.process.kill()
            self.process.join()
            self.start()
            return "hang", f"no answer after {timeout:.0f} s"
        try:
            return self.connection.recv()
        except EOFError:
            self.process.join()
            code = self.process.exitcode
            self.start()
            return "crash", f"the child died (exit code {code})"

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(5)


def long_run(count: int, seed: int, timeout: float, first: int = 0) -> int:
    """Run mutants first..first+count-1 of `seed`; print each failure; 1 if any."""
    seeds = seed_texts()
    child = _Child(seed)
    # The first mutant also pays for the child's imports and its seed modules.
    stages: dict[str, int] = {}
    failures = 0
    started = time.time()
    for index in range(first, first + count):
        kind, detail = child.run(index, timeout if index > first else timeout + 60)
        if kind == "ok":
            stages[detail] = stages.get(detail, 0) + 1
            continue
        failures += 1
        print(f"==== mutant {index} (seed {seed}): {kind}\n{detail}\n---- text:\n"
              f"{mutant(seeds, seed, index)}\n", flush=True)
    child.close()
    print(f"{count} mutants in {time.time() - started:.0f} s; {failures} failures; "
          f"stages reached: {dict(sorted(stages.items()))}")
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="index of the first mutant")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one mutant may take before it counts as a hang")
    parser.add_argument("--show", type=int, metavar="INDEX", help="print that mutant and stop")
    args = parser.parse_args(argv)
    if args.show is not None:
        print(mutant(seed_texts(), args.seed, args.show), end="")
        return 0
    return long_run(args.count, args.seed, args.timeout, args.first)


if __name__ == "__main__":
    sys.exit(main())
