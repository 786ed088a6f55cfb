"""flowjit's IR: dtypes, shapes, the op table, modules, HLO text printer and parser."""
from flowjit.ir.dtypes import DType
from flowjit.ir.errors import FlowjitError, HloParseError, ShapeError, VerifierError
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.ops import OPS, infer_shape
from flowjit.ir.parser import parse_module
from flowjit.ir.shapes import ArrayShape, TupleShape
from flowjit.ir.verifier import verify

__all__ = ["DType", "FlowjitError", "HloParseError", "ShapeError", "VerifierError",
           "Computation", "Instruction", "Module", "OPS", "infer_shape", "parse_module",
           "ArrayShape", "TupleShape", "verify"]
