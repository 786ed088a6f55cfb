"""dce: remove instructions nothing uses and computations nothing calls."""
from flowjit.ir.module import Module


def run(module: Module) -> bool:
    """Drop unreachable instructions (keeping parameters) and dead computations."""
    changed = False
    for comp in module.computations:
        changed |= comp.remove_unreachable()
    changed |= module.remove_dead_computations()
    return changed
