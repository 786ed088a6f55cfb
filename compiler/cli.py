"""The `flowjit` command line: dump a function's IR, run or optimize an HLO file.

    flowjit dump examples/mlp.py:predict --arg f32[128,784] --arg f32[784,10]
    flowjit dump examples/mlp.py:mlp --arg "[(f32[784,128], f32[128])]" --arg f32[64,784]
    flowjit run module.hlo --inputs in.npz --out out.npz --check
    flowjit opt module.hlo --passes cse,fusion

A mistake in how it is called (a bad option, a missing file, malformed HLO) prints one line,
`flowjit: error: ...`, and exits with status 2.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import inspect
import os
import re
import sys
import time
from typing import NoReturn, Optional, Sequence

import numpy as np

from flowjit.ir import dtypes
from flowjit.ir.errors import FlowjitError
from flowjit.ir.shapes import ArrayShape, array_shape_problem

_SPEC = re.compile(r"^([a-z0-9]+)\[([0-9, ]*)\]$")
_EMPTY_DIMS = re.compile(r"\b([a-z][a-z0-9]*)\[\s*\]")
ARG_SYNTAX = ("write an array as TYPE[DIMS] (f32[128,784], s32[]), and a pytree of them "
              "with Python's brackets: \"{'w': f32[3,4], 'b': f32[4]}\", "
              "\"[(f32[2,3], f32[3])]\"")


class UsageError(Exception):
    """A mistake in how the command line was used: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming it (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_arg_spec(text: str):
    """`f32[128,784]` → a random array of that type and shape (fixed seed); a pytree of
    such specs (`{'w': f32[3,4]}`, `[(f32[2], s32[])]`) → the same pytree of arrays.
    Python numbers stand for themselves. UsageError says what is wrong."""
    try:
        tree = ast.parse(_EMPTY_DIMS.sub(r"\1[()]", text.strip()), mode="eval").body
    except SyntaxError:
        raise UsageError(f"bad --arg {text!r}: {ARG_SYNTAX}") from None
    return _arg_value(tree, text)


def _runs(text: str) -> int:
    """--profile's RUNS: a whole number of at least 1."""
    try:
        runs = int(text)
    except ValueError:
        runs = 0
    if runs < 1:
        raise argparse.ArgumentTypeError(f"RUNS must be a whole number of at least 1, not {text!r}")
    return runs


def _arg_value(node: ast.AST, text: str):
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return _random_array(node.value.id, node.slice, text)
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_arg_value(e, text) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return {k.value: _arg_value(v, text) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _arg_value(node.operand, text)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float)):
        return node.value
    raise UsageError(f"bad --arg {text!r}: {ARG_SYNTAX}")


def _random_array(type_name: str, index: ast.AST, text: str) -> np.ndarray:
    try:
        dtype = dtypes.parse(type_name)
    except ValueError as e:
        raise UsageError(f"bad --arg {text!r}: {e}") from None
    items = index.elts if isinstance(index, ast.Tuple) else [index]
    if not all(isinstance(i, ast.Constant) and type(i.value) is int and i.value >= 0
               for i in items):
        raise UsageError(f"bad --arg {text!r}: dimensions are integers >= 0, as in "
                         f"{type_name}[128,784]")
    shape = ArrayShape(dtype, tuple(i.value for i in items))
    problem = array_shape_problem(shape) or (
        f"{shape} has {shape.size} elements; --arg arrays are filled with random numbers, "
        f"keep them under 2**31" if shape.size >= 1 << 31 else None)
    if problem:
        raise UsageError(f"bad --arg {text!r}: {problem}")
    return _random_values(dtype.to_numpy(), shape.dims)


def _random_values(dtype, dims: tuple) -> np.ndarray:
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
        raise UsageError(f"expected FILE.py:FUNCTION, got {target!r}")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0],
                                                  path)
    if spec is None or not os.path.isfile(path):
        raise UsageError(f"no such file {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise UsageError(f"{path} has no function {name!r}")
    return getattr(fn, "fun", fn)


def _check_arity(fn, arguments: list, target: str) -> None:
    """The --arg list fits the function's positional parameters (else a UsageError naming
    them), so a missing --arg is not a TypeError from deep inside tracing."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*arguments)
    except TypeError:
        params = [p.name for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise UsageError(f"{target} takes {len(params)} positional arguments "
                         f"({', '.join(params)}); got {len(arguments)} --arg") from None


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path!r}: {getattr(e, 'strerror', None) or e}"
                         ) from None


def _read_hlo(path: str):
    """The verified module in an HLO text file (HloParseError / VerifierError if it is not
    one flowjit can take)."""
    from flowjit.ir.parser import parse_module
    return parse_module(_read_text(path))


def _dump_arguments(args) -> list:
    if args.args_file and args.arg:
        raise UsageError("give the arguments with --arg or with --args-file, not both")
    if not args.args_file:
        return [parse_arg_spec(a) for a in args.arg]
    value = parse_arg_spec(_read_text(args.args_file))
    if not isinstance(value, (list, tuple)):
        raise UsageError(f"{args.args_file} must hold a list or tuple of the arguments")
    return list(value)


def cmd_dump(args) -> int:
    import flowjit
    from flowjit.passes import PassManager, pipeline_for
    fn = load_function(args.target)
    arrays = _dump_arguments(args)
    _check_arity(fn, arrays, args.target)
    jitted = flowjit.jit(fn, opt_level=args.opt_level)
    start = time.perf_counter()
    lowered = jitted.lower(*arrays)
    trace_time = time.perf_counter() - start
    module = lowered.module
    if args.after is None and not (args.diff or args.explain_fusion or args.timings
                                   or args.profile or args.stage != "hlo"
                                   or args.target_device != "cpu"):
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
            raise UsageError(f"no pass named {args.after!r} ran (ran: {names})")
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
    if args.profile:
        print(jitted.profile(*arrays, runs=args.profile))
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
            args.diff or args.explain_fusion or args.timings or args.profile):
        print(optimized.to_text(), end="")
    return 0


def _flatten_result(value) -> list:
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _flatten_result(v)]
    return [np.asarray(value)]


def _load_inputs(path: Optional[str], params) -> list[np.ndarray]:
    """The arrays a0, a1, ... of an .npz, one per entry parameter, checked against them."""
    if not params:
        return []
    if not path:
        raise UsageError(f"the module takes {len(params)} parameters; pass --inputs "
                         "FILE.npz with arrays a0, a1, ...")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"cannot read {path!r} as an .npz of arrays: {e}") from None
    if not hasattr(data, "files"):
        raise UsageError(f"{path!r} holds one array, not an .npz with arrays a0, a1, ...")
    inputs = []
    for i, p in enumerate(params):
        key = f"a{i}"
        if key not in data.files:
            raise UsageError(f"{path} has no array {key!r} for parameter {i} ({p.shape})")
        try:
            array = data[key]
        except (OSError, ValueError, EOFError) as e:
            raise UsageError(f"cannot read array {key!r} of {path!r}: {e}") from None
        if tuple(array.shape) != p.shape.dims:
            raise UsageError(f"{key} has shape {array.shape}, parameter {i} %{p.name} "
                             f"needs {p.shape}")
        if array.dtype.kind not in "biuf":
            raise UsageError(f"{key} has dtype {array.dtype}; parameter {i} %{p.name} "
                             f"needs {p.shape}")
        inputs.append(array.astype(p.shape.dtype.to_numpy(), copy=False))
    return inputs


def cmd_run(args) -> int:
    from flowjit.ir.verifier import verify_compilable
    from flowjit.passes import optimize
    from flowjit.runtime.executable import compile_module
    module = _read_hlo(args.module)
    verify_compilable(module)
    inputs = _load_inputs(args.inputs, module.entry.parameters)
    reference_module = module.copy() if args.check else None
    optimized, _ = optimize(module, opt_level=args.opt_level)
    executable = compile_module(optimized)
    outputs = executable(*inputs)
    if args.profile:
        from flowjit.runtime.executable import profile_run
        print(profile_run(compile_module(optimized, profile=True), inputs, args.profile))
    if args.out:
        try:
            np.savez(args.out, **{f"r{i}": o for i, o in enumerate(outputs)})
        except OSError as e:
            raise UsageError(f"cannot write {args.out!r}: {e.strerror or e}") from None
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
        raise UsageError("opt: give an HLO file (or --list-passes)")
    pipeline = _pass_names(args.passes)
    module = _read_hlo(args.module)
    manager = PassManager(pipeline, verify=True)
    result = manager.run(module)
    if args.diff:
        for record in manager.records:
            if record.changed:
                print(record.diff(), end="")
    else:
        print(result.to_text(), end="")
    return 0


def _pass_names(text: Optional[str]) -> list[str]:
    """The pass names of `--passes a,b`, each checked against the registered passes."""
    from flowjit.passes import registered_passes
    known = list(registered_passes())
    names = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not names:
        raise UsageError("opt: give --passes NAME,NAME,... (flowjit opt --list-passes "
                         "lists them)")
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"unknown pass {name!r}{hint} (known: {', '.join(known)})")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flowjit", description="flowjit: an XLA-like compiler for numpy-style Python. "
        "Show the IR of a function after each pass, run HLO files, try passes.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    dump = sub.add_parser("dump", help="print the IR of a Python function",
                          description="Trace FILE.py:FUNCTION on random arrays of the given "
                          "types and print its HLO (before optimization unless --after).")
    dump.add_argument("target", help="FILE.py:FUNCTION (plain or @jit-decorated)")
    dump.add_argument("--arg", action="append", default=[], metavar="SPEC",
                      help="one per positional argument: an array TYPE[DIMS] (random "
                      "values), e.g. --arg f32[128,784], or a pytree of them written with "
                      "Python's brackets, e.g. --arg \"{'w': f32[3,4], 'b': f32[4]}\"")
    dump.add_argument("--args-file", metavar="FILE", help="instead of --arg: a file holding "
                      "a list of the arguments, each written as for --arg")
    dump.add_argument("--after", metavar="PASS", help="print the module after this pass "
                      "('all' prints it after every pass)")
    dump.add_argument("--diff", action="store_true", help="unified diff for each pass that "
                      "changed the module")
    dump.add_argument("--explain-fusion", action="store_true", help="say why each "
                      "producer/consumer pair was or was not fused")
    dump.add_argument("--timings", action="store_true", help="time each compile stage")
    dump.add_argument("--profile", type=_runs, nargs="?", const=10, default=0, metavar="RUNS",
                      help="run the program RUNS times (10) and time each kernel and "
                           "loop-state copy, inside loops too")
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
    run.add_argument("--profile", type=_runs, nargs="?", const=10, default=0, metavar="RUNS",
                     help="time each kernel and loop-state copy over RUNS runs (10)")
    run.set_defaults(handler=cmd_run)

    opt = sub.add_parser("opt", help="apply named passes to an HLO file and print it")
    opt.add_argument("module", nargs="?")
    opt.add_argument("--passes", help="comma-separated pass names, in order")
    opt.add_argument("--list-passes", action="store_true")
    opt.add_argument("--diff", action="store_true")
    opt.set_defaults(handler=cmd_opt)

    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; 0 on success, 2 on a usage error or input flowjit rejects."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, FlowjitError) as e:
        print(f"flowjit: error: {_one_line(str(e))}", file=sys.stderr)
        return 2


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
