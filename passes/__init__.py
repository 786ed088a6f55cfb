"""IR → IR rewrites and the pass manager that runs them."""
from flowjit.passes.analysis import cost_analysis, memory_analysis
from flowjit.passes.fusion import explain_fusion
from flowjit.passes.manager import PassManager, PassRecord, optimize, pipeline_for


def registered_passes() -> dict:
    """Name → one-line description of every pass."""
    from flowjit.passes.registry import PASSES
    return {name: (doc or "").strip().splitlines()[0] for name, (_, doc) in PASSES.items()}


__all__ = ["cost_analysis", "memory_analysis", "explain_fusion", "PassManager", "PassRecord", "optimize", "pipeline_for", "registered_passes"]
