"""The pass manager: runs named passes in order, verifies, dumps, times and diffs them."""
from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from flowjit.ir.module import Module
from flowjit.ir.verifier import verify

Pass = Callable[[Module], bool]


@dataclass
class PassRecord:
    """What one pass did: its name, time, whether it changed the module, the text after."""

    name: str
    seconds: float
    changed: bool
    before_text: str
    after_text: str

    def diff(self) -> str:
        """A unified diff of the module before and after this pass."""
        return "".join(difflib.unified_diff(
            self.before_text.splitlines(keepends=True), self.after_text.splitlines(keepends=True),
            fromfile=f"before {self.name}", tofile=f"after {self.name}"))


class PassManager:
    """Runs a pipeline (a flat list of pass names) over a module.

    `verify` (or env FLOWJIT_VERIFY=1) runs the verifier after every pass; `dump_dir` (or env
    FLOWJIT_DUMP=DIR) writes `NN.name.hlo` after each pass; `disable` skips passes by name.
    A name ending in `*` (e.g. `simplify*`) runs that pass until it stops changing.
    """

    def __init__(self, pipeline: Sequence[str], verify: bool = False,
                 dump_dir: Optional[str] = None, disable: Sequence[str] = (),
                 keep_text: bool = True):
        from flowjit.passes.registry import PASSES
        self.registry = PASSES
        self.pipeline = list(pipeline)
        for name in self.pipeline:
            if name.rstrip("*") not in PASSES:
                raise KeyError(f"unknown pass '{name}' (known: {', '.join(sorted(PASSES))})")
        self.verify = verify or os.environ.get("FLOWJIT_VERIFY", "") not in ("", "0")
        self.dump_dir = dump_dir or os.environ.get("FLOWJIT_DUMP") or None
        self.disable = set(disable) | set(
            p for p in os.environ.get("FLOWJIT_DISABLE_PASSES", "").split(",") if p)
        self.keep_text = keep_text or bool(self.dump_dir)
        self.records: list[PassRecord] = []

    def run(self, module: Module) -> Module:
        text = module.to_text() if self.keep_text else ""
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
            self._dump(0, "input", text)
        for name in self.pipeline:
            fixed_point = name.endswith("*")
            name = name.rstrip("*")
            if name in self.disable:
                continue
            for _ in range(20 if fixed_point else 1):
                fn = self.registry[name][0]
                start = time.perf_counter()
                changed = bool(fn(module))
                seconds = time.perf_counter() - start
                if self.verify:
                    try:
                        verify(module)
                    except Exception as e:
                        raise type(e)(f"after pass '{name}': {e}") from None
                after = module.to_text() if self.keep_text else ""
                self.records.append(PassRecord(name, seconds, changed, text, after))
                text = after
                if self.dump_dir:
                    self._dump(len(self.records), name, after)
                if not changed:
                    break
        return module

    def _dump(self, number: int, name: str, text: str) -> None:
        path = os.path.join(self.dump_dir, f"{number:02d}.{name}.hlo")
        with open(path, "w") as f:
            f.write(text)


# flatten-call-graph runs at every level, after the passes that copy or merge code and
# before buffers are planned: the plan needs each loop body and branch called from one
# place. opt_level 0 keeps one buffer per value.
_PIPELINES = {
    0: ["lower-custom-calls", "inline-calls", "flatten-call-graph"],
    1: ["lower-custom-calls", "inline-calls", "fold-constants", "cse", "dce",
        "flatten-call-graph", "assign-buffers"],
    2: ["lower-custom-calls", "inline-calls", "simplify*", "fold-constants", "cse", "dce",
        "fusion", "dce", "flatten-call-graph", "assign-buffers"],
}
# Convolutions become patches and a dot at every level, before anything else sees them.
for _pipeline in _PIPELINES.values():
    _pipeline.insert(_pipeline.index("lower-custom-calls") + 1, "lower-convolution")


def pipeline_for(opt_level: int) -> list[str]:
    """The passes run at `opt_level` (0: what codegen needs, 2: everything)."""
    from flowjit.passes.registry import PASSES
    pipeline = _PIPELINES[min(max(opt_level, 0), 2)]
    return [p for p in pipeline if p.rstrip("*") in PASSES]


def optimize(module: Module, opt_level: int = 2, verify: bool = False,
             dump_dir: Optional[str] = None) -> tuple[Module, list[PassRecord]]:
    """Run the opt_level pipeline over `module` (in place); returns it and the records."""
    manager = PassManager(pipeline_for(opt_level), verify=verify, dump_dir=dump_dir,
                          keep_text=False)
    manager.run(module)
    return module, manager.records
