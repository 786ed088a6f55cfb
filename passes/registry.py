"""Every pass by its name (slug = module name): the function and its one-line doc."""
from passes import cse, dce, fold_constants, inline_calls

PASSES = {
    "dce": (dce.run, dce.run.__doc__),
    "cse": (cse.run, cse.run.__doc__),
    "fold-constants": (fold_constants.run, fold_constants.run.__doc__),
    "inline-calls": (inline_calls.run, inline_calls.run.__doc__),
}
