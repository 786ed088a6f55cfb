"""Mutated HLO text never escapes as anything but a flowjit error (issue 12, "Done when").

A fixed seed and a bounded count keep this deterministic and quick; every mutant runs
in-process through parse (which verifies) -> optimize -> compile -> run. The longer run, in
a child process that also catches crashes and hangs, is `python -m tests.ir.fuzz_hlo`.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.ir.fuzz_hlo import exercise, mutant, seed_texts

SEED = 12
COUNT = 300


@pytest.fixture(scope="module")
def seeds() -> list[str]:
    return seed_texts()


def test_every_seed_module_is_valid_and_runs(seeds):
    # The mutants' parents must themselves get all the way through, or the fuzzer would
    # only ever test the parser.
    for text in seeds:
        outcome = exercise(text, np.random.default_rng(0))
        assert outcome.stage in ("ran", "skipped"), (outcome, text)


def test_mutants_raise_only_flowjit_errors(seeds):
    failures, stages = [], {}
    for index in range(COUNT):
        text = mutant(seeds, SEED, index)
        try:
            outcome = exercise(text, np.random.default_rng([SEED, index, 1]))
        except Exception as e:   # anything that is not a FlowjitError is a bug
            failures.append(f"mutant {index}: {type(e).__name__}: {e}\n{text}")
            continue
        stages[outcome.stage] = stages.get(outcome.stage, 0) + 1
    assert not failures, "\n\n".join(failures[:5])
    # The mutations are meant to reach every stage, not only the parser.
    assert stages.get("ran", 0) >= COUNT // 20, stages
    assert stages.get("parse", 0) >= COUNT // 2, stages
