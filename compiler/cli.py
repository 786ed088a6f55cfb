"""The `flowjit` command line: dump a function's IR, run or optimize an HLO file.

    flowjit dump examples/mlp.py:predict --arg f32[128,784] --arg f32[784,10]
    flowjit run module.hlo --inputs in.npz --out out.npz --check
    flowjit opt module.hlo --passes cse,fusion
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import time
from typing import Optional, Sequence

import numpy as np

from flowjit.ir import dtypes
from flowjit.ir.errors import FlowjitError

_SPEC = re.compile(r"^([a-z0-9]+)\[([0-9, ]*)\]$")


def parse_arg_spec(text: str) -> np.ndarray:
    """`f32[128,784]` → a random array of that type and shape (fixed seed)."""
    m = _SPEC.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad --arg {text!r}: write it like f32[128,784]")
    dtype = dtypes.parse(m.group(1)).to_numpy()
    dims = tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d)
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(dims).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(dims) < 0.5
    return rng.integers(0, 10, dims).astype(dtype)


def load_function(target: str):
    """`path/to/file.py:name` → the function object (jitted or not)."""
    path, _, name = target.rpartition(":")
    if not path or not name:
        raise SystemExit(f"flowjit: expected FILE.py:FUNCTION, got {target!r}")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0],
                                                  path)
    if spec is None or not os.path.exists(path):
        raise SystemExit(f"flowjit: no such file {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if fn is None:
        raise SystemExit(f"flowjit: {path} has no function {name!r}")
    return getattr(fn, "fun", fn)


def _read_hlo(path: str):
    from flowjit.ir.parser import parse_module
    with open(path) as f:
        return parse_module(f.read())


def cmd_dump(args) -> int:
    import flowjit
    from flowjit.passes import PassManager, pipeline_for
    fn = load_function(args.target)
    arrays = [parse_arg_spec(a) for a in args.arg]
    jitted = flowjit.jit(fn, opt_level=args.opt_level)
    start = time.perf_counter()
    lowered = jitted.lower(*arrays)
    trace_time = time.perf_counter() - start
    module = lowered.module
    if args.after is None and not (args.diff or args.explain_fusion or args.timings
                                   or args.stage != "hlo" or args.target_device != "cpu"):
        print(module.to_text(metadata=not args.no_metadata), end="")
        return 0
    manager = PassManager(pipeline_for(args.opt_level), verify=True)
    optimized = manager.run(module)
    if args.after == "all":
        for record in manager.records:
            print(f"// ---- after {record.name} ({record.seconds * 1e3:.2f} ms"
                  f"{', changed' if record.changed else ''}) ----")
            print(record.after_text, end="")
    elif args.after is not None:
        texts = [r for r in manager.records if r.name == args.after]
        if not texts:
            names = ", ".join(r.name for r in manager.records)
            raise SystemExit(f"flowjit: no pass named {args.after!r} ran (ran: {names})")
        print(texts[-1].after_text, end="")
    if args.diff:
        for record in manager.records:
            if record.changed:
                print(record.diff(), end="")
    if args.explain_fusion:
        from flowjit.ir.parser import parse_module
        from flowjit.passes import explain_fusion
        before = [r.before_text for r in manager.records if r.name == "fusion"]
        print(explain_fusion(parse_module(before[0]) if before else optimized, optimized))
    if args.stage == "ptx" or args.target_device == "cuda":
        from flowjit.codegen.ptx import ptx_for_module
        print(ptx_for_module(optimized, args.arch))
    elif args.stage in ("llvm", "asm"):
        from flowjit.runtime.executable import compile_module
        executable = compile_module(optimized)
        print(executable.llvm_ir if args.stage == "llvm" else executable.optimized_llvm_ir)
    if args.timings:
        from flowjit.runtime.executable import compile_module
        start = time.perf_counter()
        executable = compile_module(optimized)
        total = time.perf_counter() - start
        print(f"trace: {trace_time * 1e3:.2f} ms")
        for record in manager.records:
            print(f"pass {record.name}: {record.seconds * 1e3:.2f} ms")
        for stage, seconds in getattr(executable, "timings", {}).items():
            print(f"{stage}: {seconds * 1e3:.2f} ms")
        print(f"backend total: {total * 1e3:.2f} ms")
    if args.after is None and args.stage == "hlo" and args.target_device == "cpu" and not (
            args.diff or args.explain_fusion or args.timings):
        print(optimized.to_text(), end="")
    return 0


def _flatten_result(value) -> list:
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _flatten_result(v)]
    return [np.asarray(value)]


def cmd_run(args) -> int:
    from flowjit.passes import optimize
    from flowjit.runtime.executable import compile_module
    module = _read_hlo(args.module)
    params = module.entry.parameters
    inputs = []
    if params:
        if not args.inputs:
            raise SystemExit(f"flowjit: the module takes {len(params)} parameters; pass "
                             "--inputs FILE.npz with arrays a0, a1, ...")
        data = np.load(args.inputs)
        for i, p in enumerate(params):
            key = f"a{i}"
            if key not in data:
                raise SystemExit(f"flowjit: {args.inputs} has no array {key!r} for parameter "
                                 f"{i} ({p.shape})")
            array = data[key]
            if tuple(array.shape) != p.shape.dims:
                raise SystemExit(f"flowjit: {key} has shape {array.shape}, parameter {i} "
                                 f"%{p.name} needs {p.shape}")
            inputs.append(array.astype(p.shape.dtype.to_numpy(), copy=False))
    reference_module = _read_hlo(args.module) if args.check else None
    optimized, _ = optimize(module, opt_level=args.opt_level)
    executable = compile_module(optimized)
    outputs = executable(*inputs)
    if args.out:
        np.savez(args.out, **{f"r{i}": o for i, o in enumerate(outputs)})
    for i, o in enumerate(outputs):
        print(f"r{i}: {o.dtype}{list(o.shape)}")
    if args.check:
        from flowjit.ir.reference import evaluate
        expected = _flatten_result(evaluate(reference_module, inputs))
        worst = 0.0
        for i, (got, want) in enumerate(zip(outputs, expected)):
            if got.size == 0:
                err = 0.0
            elif got.dtype.kind in "fc":
                err = float(np.nanmax(np.abs(got.astype(np.float64) - want.astype(np.float64)))
                            ) if np.isfinite(want).any() else 0.0
                if not np.array_equal(np.isnan(got), np.isnan(want)):
                    err = float("inf")
            else:
                err = float(np.max(np.abs(got.astype(np.int64) - want.astype(np.int64))))
            worst = max(worst, err)
            print(f"r{i}: max abs error vs reference = {err:.3g}")
        return 0 if np.isfinite(worst) else 1
    return 0


def cmd_opt(args) -> int:
    from flowjit.passes import PassManager, registered_passes
    if args.list_passes:
        passes = registered_passes()
        width = max(map(len, passes))
        for name, doc in passes.items():
            print(f"{name:{width}s}  {doc}")
        return 0
    if not args.module:
        raise SystemExit("flowjit opt: give an HLO file (or --list-passes)")
    module = _read_hlo(args.module)
    pipeline = [p for p in (args.passes or "").split(",") if p]
    manager = PassManager(pipeline, verify=True)
    result = manager.run(module)
    if args.diff:
        for record in manager.records:
            if record.changed:
                print(record.diff(), end="")
    else:
        print(result.to_text(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowjit", description="flowjit: an XLA-like compiler for numpy-style Python. "
        "Show the IR of a function after each pass, run HLO files, try passes.")
    sub = parser.add_subparsers(dest="command", required=True)

    dump = sub.add_parser("dump", help="print the IR of a Python function",
                          description="Trace FILE.py:FUNCTION on random arrays of the given "
                          "types and print its HLO (before optimization unless --after).")
    dump.add_argument("target", help="FILE.py:FUNCTION (plain or @jit-decorated)")
    dump.add_argument("--arg", action="append", default=[], metavar="TYPE[DIMS]",
                      help="one per positional argument, e.g. --arg f32[128,784]")
    dump.add_argument("--after", metavar="PASS", help="print the module after this pass "
                      "('all' prints it after every pass)")
    dump.add_argument("--diff", action="store_true", help="unified diff for each pass that "
                      "changed the module")
    dump.add_argument("--explain-fusion", action="store_true", help="say why each "
                      "producer/consumer pair was or was not fused")
    dump.add_argument("--timings", action="store_true", help="time each compile stage")
    dump.add_argument("--stage", choices=["hlo", "llvm", "asm", "ptx"], default="hlo",
                      help="hlo (default), llvm (LLVM IR), asm (optimized LLVM IR), ptx")
    dump.add_argument("--target", dest="target_device", choices=["cpu", "cuda"],
                      default="cpu", help="cuda: print the PTX (as --stage ptx)")
    dump.add_argument("--arch", default="sm_80", help="CUDA architecture for PTX (sm_90 ...)")
    dump.add_argument("--opt-level", type=int, default=2, choices=[0, 1, 2])
    dump.add_argument("--no-metadata", action="store_true", help="omit source lines")
    dump.set_defaults(handler=cmd_dump)

    run = sub.add_parser("run", help="compile and run an HLO text file",
                         description="Run an HLO module. Inputs are read from an .npz with "
                         "arrays a0, a1, ... (one per entry parameter, in order); outputs are "
                         "written as r0, r1, ... (a tuple result flattened in order).")
    run.add_argument("module", help="HLO text file (ours, or as printed by JAX/XLA)")
    run.add_argument("--inputs", metavar="X.npz")
    run.add_argument("--out", metavar="Y.npz")
    run.add_argument("--check", action="store_true", help="also evaluate with the reference "
                     "(numpy) semantics and print the largest error per output")
    run.add_argument("--opt-level", type=int, default=2, choices=[0, 1, 2])
    run.set_defaults(handler=cmd_run)

    opt = sub.add_parser("opt", help="apply named passes to an HLO file and print it")
    opt.add_argument("module", nargs="?")
    opt.add_argument("--passes", help="comma-separated pass names, in order")
    opt.add_argument("--list-passes", action="store_true")
    opt.add_argument("--diff", action="store_true")
    opt.set_defaults(handler=cmd_opt)

    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except FlowjitError as e:
        print(f"flowjit: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
