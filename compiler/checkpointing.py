"""checkpoint / remat and checkpoint_policies — JAX's API for trading compute for memory.

A checkpointed call is one `custom-call` "flowjit.checkpoint.<policy>" around the traced
function: it runs as a plain call, and the VJP transformation (`passes.remat`) recomputes
in the backward pass the values of the function that the policy does not save.
"""
from __future__ import annotations

import functools
import inspect
from types import SimpleNamespace
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from flowjit import tree
from flowjit.core import Tracer, bind, shape_of, trace_subfunction
from flowjit.numpy._promote import wrap
from flowjit.passes.remat import POLICIES, Policy, target_for
from flowjit.source_info import at_user_line

# jax.checkpoint_policies' names (the ones that decide by op; name-based ones need
# checkpoint_name, which flowjit does not have).
checkpoint_policies = SimpleNamespace(**POLICIES, checkpoint_dots=POLICIES["dots_saveable"],
                                      checkpoint_dots_with_no_batch_dims=POLICIES[
                                          "dots_with_no_batch_dims_saveable"])


def checkpoint(fun: Callable, *, prevent_cse: bool = True, policy: Optional[Policy] = None,
               static_argnums: Union[int, Sequence[int]] = (),
               static_argnames: Union[str, Sequence[str]] = (), concrete: bool = False
               ) -> Callable:
    """`fun`, whose gradient recomputes the values `policy` does not save (default: none
    saved, only the arguments) in the backward pass instead of keeping them from the
    forward pass. Arguments at `static_argnums` (or named in `static_argnames`, when passed
    by position) are Python values, the others pytrees of arrays. prevent_cse=False lets
    CSE merge the recomputation back (saving nothing). `concrete` is JAX's deprecated flag,
    accepted and ignored."""
    policy = POLICIES["nothing_saveable"] if policy is None else policy
    if not isinstance(policy, Policy):
        raise TypeError(at_user_line(
            f"checkpoint policy {policy!r} is not supported: use one of "
            f"flowjit.checkpoint_policies.{{{', '.join(POLICIES)}}}"))
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    static += argument_positions(fun, static_argnames)
    target = target_for(policy, prevent_cse)

    @functools.wraps(fun)
    def checkpointed(*args: Any) -> Any:
        fixed = {i % len(args): args[i] for i in static if -len(args) <= i < len(args)}
        dynamic = [a for i, a in enumerate(args) if i not in fixed]
        leaves, in_tree = tree.flatten(tuple(dynamic))
        leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]

        def flat(*xs):
            rest = iter(tree.unflatten(in_tree, xs))
            return fun(*[fixed[i] if i in fixed else next(rest) for i in range(len(args))])
        body = trace_subfunction(flat, [shape_of(x) for x in leaves], f"{fun.__name__}_remat")
        operands = leaves + list(body.captured)
        out = bind("custom-call", operands, {"custom_call_target": target},
                   {"called_computations": [body.computation]})
        out = list(out) if isinstance(out, tuple) else [out]
        return tree.unflatten(body.out_tree, [wrap(o) for o in out])
    return checkpointed


def remat(fun: Callable, *, prevent_cse: bool = True, policy: Optional[Policy] = None,
          static_argnums: Union[int, Sequence[int]] = (), concrete: bool = False) -> Callable:
    """`checkpoint` under its older name."""
    return checkpoint(fun, prevent_cse=prevent_cse, policy=policy,
                      static_argnums=static_argnums)


def argument_positions(fun: Callable, names: Union[str, Sequence[str]]
                       ) -> tuple[int, ...]:
    """The positions of the parameters `names` of `fun` (for *_argnames options)."""
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        return ()
    params = list(inspect.signature(fun).parameters)
    missing = [n for n in names if n not in params]
    if missing:
        raise TypeError(at_user_line(f"{fun.__name__} has no parameter named "
                                     f"{', '.join(missing)}"))
    return tuple(params.index(n) for n in names)
