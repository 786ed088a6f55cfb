"""flowjit's IR: dtypes, shapes, the op table, modules, HLO text printer and parser."""
from ir.dtypes import DType
from ir.errors import FlowjitError, HloParseError, ShapeError, VerifierError
from ir.module import Computation, Instruction, Module
from ir.ops import OPS, infer_shape
from ir.parser import parse_module
from ir.shapes import ArrayShape, TupleShape
from ir.verifier import verify

__all__ = ["DType", "FlowjitError", "HloParseError", "ShapeError", "VerifierError",
           "Computation", "Instruction", "Module", "OPS", "infer_shape", "parse_module",
           "ArrayShape", "TupleShape", "verify"]
