"""Every pass by its name (slug = module name): the function and its one-line doc."""
from flowjit.passes import (assign_buffers, cse, dce, flatten_call_graph, fold_constants, fusion,
                            inline_calls, lower_custom_calls, simplify)
from flowjit.passes import lower_convolution

PASSES = {
    "dce": (dce.run, dce.run.__doc__),
    "cse": (cse.run, cse.run.__doc__),
    "fold-constants": (fold_constants.run, fold_constants.run.__doc__),
    "inline-calls": (inline_calls.run, inline_calls.run.__doc__),
    "fusion": (fusion.run, fusion.run.__doc__),
    "simplify": (simplify.run, simplify.run.__doc__),
    "assign-buffers": (assign_buffers.run, assign_buffers.run.__doc__),
    "lower-custom-calls": (lower_custom_calls.run, lower_custom_calls.run.__doc__),
    "flatten-call-graph": (flatten_call_graph.run, flatten_call_graph.run.__doc__),
    "lower-convolution": (lower_convolution.run, lower_convolution.run.__doc__),
}
