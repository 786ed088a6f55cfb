"""The op table: every opcode declared once, with everything that is a property of the op.

An `OpSpec` holds an op's arity, typed attribute schema (the printer and parser derive
attribute formats from it), shape rule, fusion role, cost class, differentiability and side
effects. Other concerns (reference semantics, VJP rules, CPU and PTX lowerings) live in
their own tables keyed by `Opcode`, in the package that owns the concern; each covers an op
or marks it `Unsupported` with a reason, and `tests/test_op_tables.py` holds every table to
that.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from flowjit.ir import shape_rules as rules
from flowjit.ir.attributes import COMMON_ATTRS, KNOWN_TRIP_COUNT, Attr, AttrKind, optional
from flowjit.ir.dtypes import DType
from flowjit.ir.opcodes import Opcode
from flowjit.ir.shape_rules import ShapeRule
from flowjit.ir.shapes import Shape

K = AttrKind


class FusionRole(enum.Enum):
    """How an op takes part in fusion (XLA's classification of instructions)."""

    ELEMENTWISE = "elementwise"      # each element from the same element of each operand
    GENERATOR = "generator"          # elements from nothing but the index (constant, iota)
    DATA_MOVEMENT = "data movement"  # elements moved or read by index, not computed
    REDUCTION = "reduction"          # folds dimensions with a computation
    CONTRACTION = "contraction"      # dot: fuses only with its elementwise epilogue
    OPAQUE = "opaque"                # its own kernel or control flow; never fused
    BOOKKEEPING = "bookkeeping"      # names values (parameter, tuple, get-tuple-element)


class CostClass(enum.Enum):
    """What computing one result element costs, in the classes passes decide by."""

    FREE = "free"                    # no work at run time: names or holds values
    CHEAP = "cheap"                  # a few instructions (add, compare, select, moves)
    DIVISION = "division"            # a long-latency arithmetic instruction
    TRANSCENDENTAL = "transcendental"  # a polynomial or library call (XLA counts these)
    HEAVY = "heavy"                  # many operand elements per result element, or a kernel


@dataclass(frozen=True)
class OpSpec:
    """Declaration of one opcode."""

    opcode: Opcode
    arity: Optional[int]          # None: variadic
    shape_rule: ShapeRule
    role: FusionRole
    cost: CostClass = CostClass.CHEAP
    attrs: tuple[Attr, ...] = ()  # the attribute schema, in XLA's printing order
    commutative: bool = False
    # May act beyond its result (an opaque custom call): never merged with an equal one.
    side_effecting: bool = False
    # False: no gradient flows through the op (comparisons, integer ops, piecewise constants).
    differentiable: bool = True
    # Reads one operand element for many of its own elements (so an expensive producer
    # is better computed once than fused into it).
    rereads_operands: bool = False
    dtypes: str = "any"           # which element types the op accepts: float/int/numeric/logical

    @property
    def name(self) -> str:
        return self.opcode.value

    @property
    def elementwise(self) -> bool:
        return self.role is FusionRole.ELEMENTWISE

    @property
    def fusible(self) -> bool:
        return self.role not in (FusionRole.OPAQUE, FusionRole.BOOKKEEPING)

    @property
    def does_work(self) -> bool:
        """Whether the op, standing alone, runs any code (it gets a kernel)."""
        return self.cost is not CostClass.FREE

    @property
    def costly(self) -> bool:
        """Worth computing once rather than twice (divisions, transcendentals, heavy ops)."""
        return self.cost in (CostClass.DIVISION, CostClass.TRANSCENDENTAL, CostClass.HEAVY)

    def attr(self, name: str) -> Optional[Attr]:
        """The schema entry named `name` (by key or text spelling), if the op has one."""
        for attribute in self.attrs + COMMON_ATTRS:
            if name in (attribute.name, attribute.text_name):
                return attribute
        return None


def _unary(opcode: Opcode, dtypes: str = "float", cost: CostClass = CostClass.TRANSCENDENTAL,
           **flags) -> OpSpec:
    return OpSpec(opcode, 1, rules.elementwise(opcode.value, dtypes), FusionRole.ELEMENTWISE,
                  cost, dtypes=dtypes, **flags)


def _binary(opcode: Opcode, dtypes: str = "numeric", cost: CostClass = CostClass.CHEAP,
            **flags) -> OpSpec:
    return OpSpec(opcode, 2, rules.elementwise(opcode.value, dtypes), FusionRole.ELEMENTWISE,
                  cost, dtypes=dtypes, **flags)


def _moves(opcode: Opcode, arity, rule: ShapeRule, *attrs: Attr, **flags) -> OpSpec:
    return OpSpec(opcode, arity, rule, FusionRole.DATA_MOVEMENT, CostClass.CHEAP, attrs,
                  **flags)


_CHEAP, _DIVISION, _HEAVY = CostClass.CHEAP, CostClass.DIVISION, CostClass.HEAVY
_TO_APPLY = Attr("to_apply", K.COMPUTATION)
_DIMENSIONS = Attr("dimensions", K.INT_LIST)

_SPECS = [
    OpSpec(Opcode.PARAMETER, 0, rules.parameter_rule, FusionRole.BOOKKEEPING, CostClass.FREE,
           (Attr("number", K.INT, spelling="parameter"),)),
    OpSpec(Opcode.CONSTANT, 0, rules.declared("constant"), FusionRole.GENERATOR, CostClass.FREE,
           differentiable=False),
    OpSpec(Opcode.IOTA, 0, rules.iota_rule, FusionRole.GENERATOR,
           attrs=(Attr("iota_dimension", K.INT),), differentiable=False),
    OpSpec(Opcode.CONVERT, 1, rules.convert_rule, FusionRole.ELEMENTWISE),
    OpSpec(Opcode.COPY, 1, rules.elementwise("copy", "any"), FusionRole.ELEMENTWISE),
    OpSpec(Opcode.BITCAST_CONVERT, 1, rules.bitcast_convert_rule, FusionRole.ELEMENTWISE,
           differentiable=False),
    _unary(Opcode.NEGATE, "numeric", _CHEAP), _unary(Opcode.ABS, "numeric", _CHEAP),
    _unary(Opcode.SIGN, "numeric", _CHEAP, differentiable=False),
    _unary(Opcode.EXPONENTIAL), _unary(Opcode.EXPONENTIAL_MINUS_ONE), _unary(Opcode.LOG),
    _unary(Opcode.LOG_PLUS_ONE), _unary(Opcode.SQRT), _unary(Opcode.RSQRT),
    _unary(Opcode.CBRT), _unary(Opcode.TANH), _unary(Opcode.LOGISTIC), _unary(Opcode.SINE),
    _unary(Opcode.COSINE), _unary(Opcode.TAN), _unary(Opcode.ERF),
    _unary(Opcode.FLOOR, cost=_CHEAP, differentiable=False),
    _unary(Opcode.CEIL, cost=_CHEAP, differentiable=False),
    _unary(Opcode.ROUND_NEAREST_EVEN, cost=_CHEAP, differentiable=False),
    _unary(Opcode.ROUND_NEAREST_AFZ, cost=_CHEAP, differentiable=False),
    _unary(Opcode.NOT, "logical", _CHEAP, differentiable=False),
    _unary(Opcode.POPCNT, "int", _CHEAP, differentiable=False),
    _unary(Opcode.CLZ, "int", _CHEAP, differentiable=False),
    OpSpec(Opcode.IS_FINITE, 1, rules.elementwise("is-finite", "float", DType.PRED),
           FusionRole.ELEMENTWISE, differentiable=False, dtypes="float"),
    _binary(Opcode.ADD, commutative=True), _binary(Opcode.SUBTRACT),
    _binary(Opcode.MULTIPLY, commutative=True),
    _binary(Opcode.DIVIDE, cost=_DIVISION), _binary(Opcode.REMAINDER, cost=_DIVISION),
    _binary(Opcode.POWER, cost=CostClass.TRANSCENDENTAL),
    _binary(Opcode.MAXIMUM, commutative=True), _binary(Opcode.MINIMUM, commutative=True),
    _binary(Opcode.ATAN2, "float", cost=CostClass.TRANSCENDENTAL),
    _binary(Opcode.AND, "logical", commutative=True, differentiable=False),
    _binary(Opcode.OR, "logical", commutative=True, differentiable=False),
    _binary(Opcode.XOR, "logical", commutative=True, differentiable=False),
    _binary(Opcode.SHIFT_LEFT, "int", differentiable=False),
    _binary(Opcode.SHIFT_RIGHT_ARITHMETIC, "int", differentiable=False),
    _binary(Opcode.SHIFT_RIGHT_LOGICAL, "int", differentiable=False),
    OpSpec(Opcode.COMPARE, 2, rules.compare_rule, FusionRole.ELEMENTWISE,
           attrs=(Attr("direction", K.WORD), optional("type", K.WORD)), differentiable=False),
    OpSpec(Opcode.SELECT, 3, rules.select_rule, FusionRole.ELEMENTWISE),
    OpSpec(Opcode.CLAMP, 3, rules.clamp_rule, FusionRole.ELEMENTWISE),
    _moves(Opcode.BROADCAST, 1, rules.broadcast_rule, _DIMENSIONS, rereads_operands=True),
    _moves(Opcode.RESHAPE, 1, rules.reshape_rule),
    _moves(Opcode.TRANSPOSE, 1, rules.transpose_rule, _DIMENSIONS),
    _moves(Opcode.SLICE, 1, rules.slice_rule, Attr("slice", K.SLICE)),
    _moves(Opcode.DYNAMIC_SLICE, None, rules.dynamic_slice_rule,
           Attr("dynamic_slice_sizes", K.INT_LIST), rereads_operands=True),
    _moves(Opcode.DYNAMIC_UPDATE_SLICE, None, rules.dynamic_update_slice_rule),
    _moves(Opcode.CONCATENATE, None, rules.concatenate_rule, _DIMENSIONS, rereads_operands=True),
    _moves(Opcode.PAD, 2, rules.pad_rule, Attr("padding", K.PADDING), rereads_operands=True),
    _moves(Opcode.REVERSE, 1, rules.reverse_rule, _DIMENSIONS),
    OpSpec(Opcode.REDUCE, None, rules.reduce_rule, FusionRole.REDUCTION, _HEAVY,
           (_DIMENSIONS, _TO_APPLY)),
    OpSpec(Opcode.DOT, 2, rules.dot_rule, FusionRole.CONTRACTION, _HEAVY,
           tuple(optional(name, K.INT_LIST) for name in (
               "lhs_batch_dims", "lhs_contracting_dims", "rhs_batch_dims",
               "rhs_contracting_dims")), rereads_operands=True),
    OpSpec(Opcode.GATHER, 2, rules.gather_rule, FusionRole.DATA_MOVEMENT, _HEAVY, (
        Attr("offset_dims", K.INT_LIST), optional("collapsed_slice_dims", K.INT_LIST),
        optional("operand_batching_dims", K.INT_LIST),
        optional("start_indices_batching_dims", K.INT_LIST),
        Attr("start_index_map", K.INT_LIST), Attr("index_vector_dim", K.INT),
        Attr("slice_sizes", K.INT_LIST), optional("indices_are_sorted", K.BOOL),
        optional("unique_indices", K.BOOL)), rereads_operands=True),
    OpSpec(Opcode.SCATTER, 3, rules.scatter_rule, FusionRole.OPAQUE, _HEAVY, (
        Attr("update_window_dims", K.INT_LIST), optional("inserted_window_dims", K.INT_LIST),
        optional("input_batching_dims", K.INT_LIST),
        optional("scatter_indices_batching_dims", K.INT_LIST),
        Attr("scatter_dims_to_operand_dims", K.INT_LIST), Attr("index_vector_dim", K.INT),
        optional("indices_are_sorted", K.BOOL), optional("unique_indices", K.BOOL),
        _TO_APPLY)),
    # Each output folds a window of operand elements; a pooling fuses with its producers.
    OpSpec(Opcode.REDUCE_WINDOW, None, rules.reduce_window_rule, FusionRole.REDUCTION, _HEAVY,
           (Attr("window", K.WINDOW), _TO_APPLY), rereads_operands=True),
    OpSpec(Opcode.SELECT_AND_SCATTER, 3, rules.select_and_scatter_rule, FusionRole.OPAQUE,
           _HEAVY, (Attr("window", K.WINDOW), Attr("select", K.COMPUTATION),
                    Attr("scatter", K.COMPUTATION))),
    OpSpec(Opcode.TUPLE, None, rules.tuple_rule, FusionRole.BOOKKEEPING, CostClass.FREE),
    OpSpec(Opcode.GET_TUPLE_ELEMENT, 1, rules.get_tuple_element_rule, FusionRole.BOOKKEEPING,
           CostClass.FREE, (Attr("index", K.INT),)),
    OpSpec(Opcode.CALL, None, rules.callee_result("to_apply"), FusionRole.OPAQUE, _HEAVY,
           (_TO_APPLY,)),
    OpSpec(Opcode.FUSION, None, rules.callee_result("calls"), FusionRole.OPAQUE, _HEAVY,
           (Attr("kind", K.WORD), Attr("calls", K.COMPUTATION))),
    OpSpec(Opcode.WHILE, 1, rules.while_rule, FusionRole.OPAQUE, _HEAVY,
           (Attr("condition", K.COMPUTATION), Attr("body", K.COMPUTATION), KNOWN_TRIP_COUNT)),
    OpSpec(Opcode.CONDITIONAL, None, rules.conditional_rule, FusionRole.OPAQUE, _HEAVY, (
        optional("true_computation", K.COMPUTATION),
        optional("false_computation", K.COMPUTATION),
        optional("branch_computations", K.COMPUTATIONS))),
    OpSpec(Opcode.CUSTOM_CALL, None, rules.custom_call_rule, FusionRole.OPAQUE, _HEAVY, (
        Attr("custom_call_target", K.STRING),
        optional("called_computations", K.COMPUTATIONS),
        # Typed-FFI calls (JAX's LAPACK targets): the layouts the target needs, and its
        # options as MLIR prints them (`{uplo = 76 : ui8}`); other configs stay verbatim.
        optional("operand_layout_constraints", K.LAYOUTS),
        Attr("ffi_config", K.FFI_CONFIG, required=False, spelling="backend_config")),
        side_effecting=True),
    # Opaque: passes/lower_convolution rewrites it into pads, slices and a dot (which fuse
    # and go to BLAS) before fusion and codegen ever see it.
    OpSpec(Opcode.CONVOLUTION, 2, rules.convolution_rule, FusionRole.OPAQUE, _HEAVY, (
        optional("window", K.WINDOW), Attr("dim_labels", K.DIM_LABELS),
        optional("feature_group_count", K.INT), optional("batch_group_count", K.INT)),
        rereads_operands=True),
    # Decompositions: each runs LAPACK on the host (codegen/lapack.py), never fused.
    OpSpec(Opcode.CHOLESKY, 1, rules.cholesky_rule, FusionRole.OPAQUE, _HEAVY,
           (optional("lower", K.BOOL),), dtypes="float"),
    OpSpec(Opcode.TRIANGULAR_SOLVE, 2, rules.triangular_solve_rule, FusionRole.OPAQUE, _HEAVY,
           (optional("left_side", K.BOOL), optional("lower", K.BOOL),
            optional("unit_diagonal", K.BOOL), optional("transpose_a", K.WORD)),
           dtypes="float"),
    # Sorts rows along one dimension by a comparator over 2N scalars (codegen/sort_kernel).
    OpSpec(Opcode.SORT, None, rules.sort_rule, FusionRole.OPAQUE, _HEAVY,
           (_DIMENSIONS, optional("is_stable", K.BOOL), _TO_APPLY)),
    # The k largest (or smallest) of each row of the last dimension, and their indices.
    OpSpec(Opcode.TOPK, 1, rules.topk_rule, FusionRole.OPAQUE, _HEAVY,
           (Attr("k", K.INT), optional("largest", K.BOOL))),
]

OPS: dict[Opcode, OpSpec] = {spec.opcode: spec for spec in _SPECS}
assert set(OPS) == set(Opcode), "every opcode is declared exactly once"


def spec(opcode: str) -> OpSpec:
    """The declaration of `opcode`; KeyError names the unknown opcode."""
    try:
        return OPS[opcode]
    except KeyError:
        raise KeyError(f"unknown opcode '{opcode}'") from None


def opcodes_where(predicate) -> frozenset[Opcode]:
    """The opcodes whose spec satisfies `predicate` (for passes that need a set)."""
    return frozenset(op for op, s in OPS.items() if predicate(s))


def infer_shape(opcode: str, operand_shapes: list[Shape], attrs: dict, calls: dict,
                declared: Optional[Shape] = None) -> Shape:
    """The result shape of `opcode` on these operands; ShapeError if they do not fit."""
    op = spec(opcode)
    if op.arity is not None and len(operand_shapes) != op.arity:
        raise rules.fail(opcode, f"takes {op.arity} operands, got {len(operand_shapes)}",
                         operand_shapes)
    for attribute in op.attrs:
        if attribute.required and attribute.name not in attrs and attribute.name not in calls:
            raise rules.fail(opcode, f"missing attribute '{attribute.name}'", operand_shapes)
    return op.shape_rule(list(operand_shapes), attrs, calls, declared)
