"""Exceptions the IR raises. The front end adds the user's source line to them."""


class FlowjitError(Exception):
    """Base of every error flowjit raises on purpose."""


class ShapeError(FlowjitError, TypeError):
    """Operands whose shapes or dtypes do not fit the op; the message names them."""


class VerifierError(FlowjitError):
    """An ill-typed or malformed module; the message names the instruction."""


class HloParseError(FlowjitError, ValueError):
    """Malformed HLO text; the message carries line and column."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
