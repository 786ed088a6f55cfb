"""Turning a Python function into an ir.Module by running it on Tracers."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from flowjit import tree
from flowjit.config import canonicalize_dtype
from flowjit.core import Tracer, concrete, new_trace
from flowjit.numpy._promote import is_python_scalar
from flowjit.source_info import at_user_line
from flowjit.ir import dtypes
from flowjit.ir.module import Module
from flowjit.ir.shapes import ArrayShape


@dataclass(frozen=True)
class ArgSpec:
    """What a traced argument leaf is known by: shape, dtype and weak type."""

    shape: tuple[int, ...]
    dtype: np.dtype
    weak_type: bool = False

    def __str__(self) -> str:
        return f"{dtypes.from_numpy(self.dtype).value}{list(self.shape)}".replace(" ", "")


def spec_of(leaf: Any, where: str) -> ArgSpec:
    """The ArgSpec of one argument leaf (its dtype canonical: 64-bit kinds are traced as
    32-bit unless x64 is enabled); TypeError naming the argument if it is no array."""
    if isinstance(leaf, Tracer):
        return ArgSpec(tuple(leaf.shape), leaf.dtype, leaf.weak_type)
    if is_python_scalar(leaf):
        return ArgSpec((), canonicalize_dtype(np.asarray(leaf).dtype), True)
    if isinstance(leaf, (np.ndarray, np.generic)) or hasattr(leaf, "__array__"):
        array = np.asarray(leaf)
        try:
            dtypes.from_numpy(array.dtype)
        except TypeError as e:
            raise TypeError(at_user_line(f"{where}: {e}")) from None
        return ArgSpec(array.shape, canonicalize_dtype(array.dtype), False)
    raise TypeError(at_user_line(
        f"{where} is a {type(leaf).__name__}, not an array; pass arrays or Python numbers, or "
        f"mark it static with jit(..., static_argnums=...)"))


def argument_names(fun: Callable, count: int) -> list[str]:
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(count)]


@dataclass
class Traced:
    """A traced function: its module, the output structure and the input specs."""

    module: Module
    out_tree: tree.TreeDef
    in_specs: list[ArgSpec]


def trace_function(fun: Callable, name: str, dynamic_args: Sequence[Any],
                   rebuild: Callable[[list], tuple], arg_labels: Sequence[str]) -> Traced:
    """Run `fun` on Tracers standing for the leaves of `dynamic_args`.

    `rebuild(tracers)` returns the full positional argument tuple (static args included);
    `arg_labels[i]` names leaf i for parameter names and error messages.
    """
    specs = [spec_of(leaf, label) for leaf, label in zip(dynamic_args, arg_labels)]
    with new_trace("main") as trace:
        tracers = []
        for number, (spec, label) in enumerate(zip(specs, arg_labels)):
            shape = ArrayShape(dtypes.from_numpy(spec.dtype), spec.shape)
            param = trace.builder.parameter(number, shape, _param_name(label))
            tracers.append(Tracer(trace, param, spec.weak_type))
        outputs = fun(*rebuild(tracers))
        leaves, out_tree = tree.flatten(outputs)
        results = []
        for leaf in leaves:
            if isinstance(leaf, Tracer) and leaf.trace is trace:
                results.append(leaf.inst)
            elif isinstance(leaf, Tracer):
                raise TypeError(at_user_line("the function returned a traced value from another "
                                             "trace"))
            else:
                try:
                    results.append(trace.builder.constant(concrete(leaf)))
                except TypeError:
                    raise TypeError(at_user_line(
                        f"the function returned a {type(leaf).__name__}, which is not an "
                        "array")) from None
        builder = trace.builder
        if len(results) == 1 and out_tree.kind == "leaf":
            root = results[0]
        else:
            root = builder.add("tuple", results, metadata={})
        entry = builder.finish(root)
        module = Module(f"jit_{name}", entry, list(trace.computations))
    return Traced(module, out_tree, specs)


def _param_name(label: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in label).strip("_")
    return cleaned or "arg"
