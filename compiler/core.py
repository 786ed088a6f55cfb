"""Tracing: Tracer values, the trace stack, and `bind`, the one way a primitive is applied.

`bind(opcode, operands, ...)` either appends an instruction to the innermost active trace
(when an operand is a Tracer) or evaluates the op at once with its reference semantics
(eager mode). Either way the op table's shape rule checks the operands first, and a
ShapeError names the user's source line.
"""
from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

import numpy as np

from flowjit.config import canonicalize_dtype
from flowjit.errors import TracerArrayConversionError, TracerBoolConversionError
from flowjit.source_info import at_user_line, user_metadata
from flowjit.ir import dtypes
from flowjit.ir.builder import Builder, NameTable, scalar_computation
from flowjit.ir.errors import ShapeError
from flowjit.ir.module import Computation, Instruction
from flowjit.ir.ops import infer_shape
from flowjit.ir.reference import evaluate_instruction
from flowjit.ir.shapes import ArrayShape, Shape


IMMUTABLE_MESSAGE = (
    "flowjit arrays are immutable and do not support in-place item assignment, as in JAX. "
    "Instead of x[idx] = y, use x = x.at[idx].set(y) or another .at[] method (add, "
    "multiply, min, max)")


def _immutable(what: str):
    def method(self, *args, **kwargs):
        raise TypeError(at_user_line(f"{what}: {IMMUTABLE_MESSAGE}"))
    method.__name__ = what
    return method


def _out_of_place(name: str):
    """`a op= b` on an Array makes a new array (as JAX does), never writing into `a`, which
    may share memory with the caller's numpy array."""
    operator = getattr(np.ndarray, name)

    def method(self, other):
        return operator(self, other)
    method.__name__ = name.replace("__", "__i", 1)
    return method


class Array(np.ndarray):
    """A concrete array from eager execution: a numpy array that also has `.at[...]` and,
    as JAX's arrays, cannot be changed in place."""

    @property
    def at(self):
        from flowjit.indexing import IndexUpdateHelper
        return IndexUpdateHelper(self)

    __setitem__ = _immutable("item assignment")
    fill = _immutable("fill")
    put = _immutable("put")
    itemset = _immutable("itemset")
    resize = _immutable("resize")
    # sort() and partition() stay numpy's (in place): np.sort(a) calls them on its copy.

    def block_until_ready(self) -> "Array":
        """Itself: eager and compiled CPU results are complete when returned (JAX's API)."""
        return self


for _name in ("__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__",
              "__pow__", "__matmul__", "__and__", "__or__", "__xor__", "__lshift__",
              "__rshift__"):
    setattr(Array, _name.replace("__", "__i", 1), _out_of_place(_name))


def _array_operator(name: str, reflected: bool = False):
    """An Array operator that computes as jit does (flowjit.numpy.<name>), not as numpy."""
    def method(self, other):
        import flowjit.numpy as fnp
        return getattr(fnp, name)(other, self) if reflected else getattr(fnp, name)(self, other)
    return method


# Integer `//` and `%` by zero: numpy gives 0 (and warns), jit gives jax.numpy's values; the
# eager operators take flowjit's path so both agree. In-place forms return a new array.
_ARRAY_OPERATORS = {"floordiv": "floor_divide", "mod": "remainder", "divmod": "divmod"}
for _dunder, _name in _ARRAY_OPERATORS.items():
    setattr(Array, f"__{_dunder}__", _array_operator(_name))
    setattr(Array, f"__r{_dunder}__", _array_operator(_name, reflected=True))
    if _dunder != "divmod":
        setattr(Array, f"__i{_dunder}__", _array_operator(_name))


def as_array(value: np.ndarray) -> Array:
    return np.asarray(value).view(Array)


def concrete(x: Any) -> np.ndarray:
    """A concrete operand as flowjit holds it: a numpy array of canonical dtype (64-bit
    kinds become 32-bit unless x64 is enabled, as in JAX)."""
    array = np.asarray(x)
    target = canonicalize_dtype(array.dtype)
    return array if array.dtype == target else array.astype(target)


class Trace:
    """One level of tracing: a builder for the computation being recorded."""

    def __init__(self, name: str, level: int, names: Optional[NameTable] = None,
                 parent: Optional["Trace"] = None):
        self.names = names or NameTable()
        self.builder = Builder(name, self.names)
        self.level = level
        self.parent = parent
        # Values of enclosing traces used here: (outer value, the parameter standing for it).
        self.captures: list[tuple["Tracer", Instruction]] = []
        self.explicit_parameters = 0
        self.computations: list[Computation] = []   # reducers, bodies... called from here
        self._reducers: dict[tuple, Computation] = {}
        # A conditional branch: work on outer values may not be hoisted out of it, since
        # only the taken branch runs (set by control_flow while tracing a branch).
        self.barrier = False

    def reducer(self, opcode: str, dtype: dtypes.DType) -> Computation:
        key = (opcode, dtype)
        if key not in self._reducers:
            comp = scalar_computation(opcode, dtype, self.names)
            self._reducers[key] = comp
            self.computations.append(comp)
        return self._reducers[key]

    def add_computation(self, comp: Computation) -> None:
        if comp not in self.computations:
            self.computations.append(comp)

    def capture(self, outer: "Tracer") -> Instruction:
        """A parameter of this computation standing for `outer`, a value of an enclosing
        trace (closure conversion: the caller passes it in as an extra operand)."""
        for value, param in self.captures:
            if value is outer:
                return param
        number = self.explicit_parameters + len(self.captures)
        param = self.builder.parameter(number, outer.inst.shape, "captured")
        self.captures.append((outer, param))
        return param


class _State(threading.local):
    def __init__(self):
        self.stack: list[Trace] = []


_state = _State()


def current_trace() -> Optional[Trace]:
    return _state.stack[-1] if _state.stack else None


class new_trace:
    """Context manager: trace into a fresh computation at the next level."""

    def __init__(self, name: str, names: Optional[NameTable] = None,
                 parent: Optional[Trace] = None):
        level = len(_state.stack)
        self.trace = Trace(name, level, names, parent)

    def __enter__(self) -> Trace:
        _state.stack.append(self.trace)
        return self.trace

    def __exit__(self, *exc) -> None:
        _state.stack.remove(self.trace)


class Tracer:
    """A value known only by its shape and dtype while a function is being traced."""

    __slots__ = ("trace", "inst", "weak_type")
    __array_priority__ = 1000  # numpy defers `ndarray op Tracer` to us

    def __init__(self, trace: Trace, inst: Instruction, weak_type: bool = False):
        self.trace = trace
        self.inst = inst
        self.weak_type = weak_type

    # --- abstract value ----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.inst.shape.dims

    @property
    def dtype(self) -> np.dtype:
        return self.inst.shape.dtype.to_numpy()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Traced<{self.inst.shape}>"

    # --- conversions that need a concrete value ------------------------------------------
    def _concrete_error(self, what: str):
        return TracerBoolConversionError(at_user_line(
            f"{what} needs a concrete value, but this is a traced array {self.inst.shape} "
            "whose value is only known when the compiled function runs. Use "
            "flowjit.numpy.where, flowjit.cond or flowjit.while_loop for data-dependent "
            "control flow, or mark the argument static (jit(..., static_argnums=...))."))

    def __bool__(self):
        raise self._concrete_error("A Python `if`, `while`, `and`/`or` or bool()")

    def __int__(self):
        raise self._concrete_error("int()")

    def __float__(self):
        raise self._concrete_error("float()")

    def __index__(self):
        raise self._concrete_error("Using a traced value as a Python index")

    def __array__(self, dtype=None, copy=None):
        raise TracerArrayConversionError(at_user_line(
            f"numpy cannot convert the traced array {self.inst.shape} to a concrete array; "
            "use flowjit.numpy (import flowjit.numpy as fnp) inside jit instead of numpy"))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __hash__(self):
        return id(self)


def shape_of(x) -> ArrayShape:
    if isinstance(x, Tracer):
        return x.inst.shape
    array = np.asarray(x)
    return ArrayShape(dtypes.from_numpy(canonicalize_dtype(array.dtype)), array.shape)


def _innermost(operands: Sequence[Any]) -> Optional[Trace]:
    """The trace to record into: the innermost of the operands', else the active one.

    Like JAX's omnistaging, an op with only concrete operands inside `jit` is staged
    too (so `fnp.zeros` becomes a broadcast, not a large literal)."""
    traces = [o.trace for o in operands if isinstance(o, Tracer)]
    current = current_trace()
    if not traces:
        return current
    target = max(traces, key=lambda t: t.level)
    # Hoist toward `target`, but never out of a conditional branch on the way.
    t = current
    while t is not None and t is not target:
        if t.barrier:
            return t
        t = t.parent
    return target


def lift(x: Any, trace: Trace) -> Instruction:
    """The instruction for `x` in `trace`: a Tracer of it, or a new constant."""
    if isinstance(x, Tracer):
        if x.trace is trace:
            return x.inst
        if _encloses(x.trace, trace):
            return trace.capture(x)
        raise TracerArrayConversionError(at_user_line(
            "a traced value from an outer function leaked into an inner trace; pass it as "
            "an argument instead of closing over it"))
    return trace.builder.constant(concrete(x))


def _encloses(outer: Trace, inner: Trace) -> bool:
    t = inner.parent
    while t is not None:
        if t is outer:
            return True
        t = t.parent
    return False


def bind(opcode: str, operands: Sequence[Any], attrs: Optional[dict] = None,
         calls: Optional[dict] = None, shape: Optional[Shape] = None,
         weak_type: bool = False, unpack: bool = True) -> Any:
    """Apply one primitive: record it when tracing, evaluate it at once otherwise."""
    attrs = dict(attrs or {})
    calls = dict(calls or {})
    trace = _innermost(operands)
    if trace is None:
        return _eager(opcode, operands, attrs, calls, shape)
    for comp in _called(calls):
        trace.add_computation(comp)
    insts = [lift(o, trace) for o in operands]
    try:
        inst = trace.builder.add(opcode, insts, attrs, calls, shape, metadata=user_metadata())
    except ShapeError as e:
        raise ShapeError(at_user_line(str(e))) from None
    if inst.shape.is_tuple and not unpack:
        return Tracer(trace, inst)
    if inst.shape.is_tuple:
        return tuple(Tracer(trace, trace.builder.add("get-tuple-element", [inst], {"index": i},
                                                     metadata=user_metadata()), weak_type)
                     for i in range(len(inst.shape.elements)))
    return Tracer(trace, inst, weak_type)


def _called(calls: dict) -> list[Computation]:
    out = []
    for value in calls.values():
        out.extend(value if isinstance(value, list) else [value])
    return out


def _eager(opcode, operands, attrs, calls, shape):
    arrays = [concrete(o) for o in operands]
    shapes = [ArrayShape(dtypes.from_numpy(a.dtype), a.shape) for a in arrays]
    try:
        result = infer_shape(opcode, shapes, attrs, calls, shape)
    except ShapeError as e:
        raise ShapeError(at_user_line(str(e))) from None
    inst = Instruction("eager", opcode, result, [], attrs, calls)
    value = evaluate_instruction(inst, arrays)
    if isinstance(value, tuple):
        return tuple(as_array(v) for v in value)
    return as_array(value)


def reducer(opcode: str, dtype: dtypes.DType, operands: Sequence[Any]) -> Computation:
    """The scalar `opcode` computation, owned by the trace the operands belong to."""
    trace = _innermost(operands)
    if trace is None:
        return scalar_computation(opcode, dtype, NameTable())
    return trace.reducer(opcode, dtype)


def _np_function(name: str):
    """A Tracer method that calls flowjit.numpy.<name> (imported late: numpy builds on core)."""
    def method(self, *args, **kwargs):
        import flowjit.numpy as fnp
        return getattr(fnp, name)(self, *args, **kwargs)
    method.__name__ = name
    return method


def _reflected(name: str):
    def method(self, other):
        import flowjit.numpy as fnp
        return getattr(fnp, name)(other, self)
    method.__name__ = f"r{name}"
    return method


# Python operators and array methods of traced values: one row each.
_OPERATORS = {
    "__add__": "add", "__sub__": "subtract", "__mul__": "multiply", "__truediv__": "divide",
    "__floordiv__": "floor_divide", "__mod__": "remainder", "__pow__": "power",
    "__matmul__": "matmul", "__and__": "bitwise_and", "__or__": "bitwise_or",
    "__xor__": "bitwise_xor", "__lshift__": "left_shift", "__rshift__": "right_shift",
    "__divmod__": "divmod",
    "__lt__": "less", "__le__": "less_equal", "__gt__": "greater", "__ge__": "greater_equal",
    "__eq__": "equal", "__ne__": "not_equal",
}
_REFLECTED = {
    "__radd__": "add", "__rsub__": "subtract", "__rmul__": "multiply",
    "__rtruediv__": "divide", "__rfloordiv__": "floor_divide", "__rmod__": "remainder",
    "__rdivmod__": "divmod",
    "__rpow__": "power", "__rmatmul__": "matmul", "__rand__": "bitwise_and",
    "__ror__": "bitwise_or", "__rxor__": "bitwise_xor",
}
_UNARY = {"__neg__": "negative", "__pos__": "positive", "__abs__": "absolute",
          "__invert__": "invert"}
_METHODS = ("sum", "mean", "max", "min", "prod", "any", "all", "argmax", "argmin", "var",
            "std", "reshape", "transpose", "astype", "ravel", "squeeze", "swapaxes", "clip",
            "cumsum", "dot", "round", "flatten")

for _dunder, _name in {**_OPERATORS, **_UNARY}.items():
    setattr(Tracer, _dunder, _np_function(_name))
for _dunder, _name in _REFLECTED.items():
    setattr(Tracer, _dunder, _reflected(_name))
for _name in _METHODS:
    setattr(Tracer, _name, _np_function("ravel" if _name == "flatten" else _name))


def _reshape_method(self, *shape, **kwargs):
    import flowjit.numpy as fnp
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return fnp.reshape(self, shape, **kwargs)


def _transpose_method(self, *axes):
    import flowjit.numpy as fnp
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return fnp.transpose(self, axes or None)


def _getitem(self, index):
    from flowjit.indexing import getitem
    return getitem(self, index)


def _setitem(self, index, value):
    raise TypeError(at_user_line(f"item assignment on a traced array: {IMMUTABLE_MESSAGE}"))


def _at(self):
    from flowjit.indexing import IndexUpdateHelper
    return IndexUpdateHelper(self)


Tracer.reshape = _reshape_method
Tracer.transpose = _transpose_method
Tracer.__getitem__ = _getitem
Tracer.__setitem__ = _setitem
Tracer.at = property(_at)
Tracer.T = property(lambda self: _transpose_method(self))


class SubTrace:
    """A Python function traced into a computation of its own (a loop body, a branch).

    `computation` takes the explicit arguments first, then one parameter per captured outer
    value; `captured` lists those outer values (Tracers of the enclosing trace), which the
    caller passes as extra operands. `out_tree` is the structure of the function's result.
    """

    def __init__(self, computation: Computation, captured: list, out_tree,
                 computations: list[Computation]):
        self.computation = computation
        self.captured = captured
        self.out_tree = out_tree
        self.computations = computations


def trace_subfunction(fun, arg_shapes: Sequence[ArrayShape], name: str,
                      tuple_result: bool = True) -> SubTrace:
    """Trace `fun` on abstract arguments of `arg_shapes` inside the current trace.

    The root is a tuple of the result's leaves (or the single leaf when `tuple_result` is
    False and the result is one array). Nested computations are registered with the
    enclosing trace so they end up in the module.
    """
    from flowjit import tree
    parent = current_trace()
    names = parent.names if parent is not None else NameTable()
    with new_trace(name, names, parent) as sub:
        sub.explicit_parameters = len(arg_shapes)
        tracers = [Tracer(sub, sub.builder.parameter(i, s, "arg")) for i, s in
                   enumerate(arg_shapes)]
        out = fun(*tracers)
        leaves, out_tree = tree.flatten(out)
        results = [lift(leaf, sub) for leaf in leaves]
        if tuple_result or len(results) != 1 or out_tree.kind != "leaf":
            root = sub.builder.add("tuple", results, metadata={})
        else:
            root = results[0]
        comp = sub.builder.finish(root)
    comp.instructions = [i for i in comp.instructions if i.opcode == "parameter"] + [
        i for i in comp.instructions if i.opcode != "parameter"]
    if parent is not None:
        for c in sub.computations:
            parent.add_computation(c)
    return SubTrace(comp, [value for value, _ in sub.captures], out_tree, sub.computations)
