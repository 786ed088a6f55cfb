"""Finding the user's own source line, for metadata and error messages."""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Optional

# The folders of flowjit and its subpackages: one folder in a wheel, five in the repository.
_INTERNAL = tuple(os.path.join(folder, "")
                  for name in ("flowjit", "flowjit.ir", "flowjit.passes", "flowjit.codegen",
                               "flowjit.runtime")
                  for folder in importlib.util.find_spec(name).submodule_search_locations)


def _is_internal(filename: str) -> bool:
    return filename.startswith(_INTERNAL) or filename.startswith("<frozen")


def user_frame() -> Optional[tuple[str, int]]:
    """(file, line) of the innermost frame outside flowjit itself."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not _is_internal(filename) and "/numpy/" not in filename:
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


def user_metadata() -> dict:
    """`{source_file, source_line}` for the instruction being traced now."""
    where = user_frame()
    if where is None:
        return {}
    return {"source_file": where[0], "source_line": where[1]}


def at_user_line(message: str) -> str:
    """`message` followed by where in the user's code it happened."""
    where = user_frame()
    if where is None:
        return message
    return f"{message}\n  at {where[0]}:{where[1]}"
