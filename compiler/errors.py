"""Errors a user can cause while tracing; each names the user's own source line."""
from flowjit.ir.errors import FlowjitError, ShapeError


class TracerBoolConversionError(FlowjitError, TypeError):
    """A Python `if`, `while`, `bool()` or `int()` on a value that is only known at run time."""


class TracerArrayConversionError(FlowjitError, TypeError):
    """`np.asarray` (or another numpy function) called on a traced value."""


__all__ = ["FlowjitError", "ShapeError", "TracerBoolConversionError",
           "TracerArrayConversionError"]
