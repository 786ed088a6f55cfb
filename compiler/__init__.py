"""flowjit: compile numpy-style Python to fast machine code.

    import flowjit
    import flowjit.numpy as fnp

    @flowjit.jit
    def predict(w, b, x):
        return fnp.tanh(x @ w + b).sum(axis=-1)

The names below load on first use (PEP 562), so that a process that needs one small part,
such as a compile worker (`python -m flowjit.codegen.llvm_worker`), does not import it all.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module that defines it, its name there); None: the name is the module.
_EXPORTS = {
    "Array": ("flowjit.core", "Array"),
    "FlowjitError": ("flowjit.errors", "FlowjitError"),
    "ShapeError": ("flowjit.errors", "ShapeError"),
    "TracerArrayConversionError": ("flowjit.errors", "TracerArrayConversionError"),
    "TracerBoolConversionError": ("flowjit.errors", "TracerBoolConversionError"),
    "custom_vjp": ("flowjit.ad", "custom_vjp"),
    "custom_jvp": ("flowjit.custom_derivatives", "custom_jvp"),
    "checkpoint": ("flowjit.checkpointing", "checkpoint"),
    "remat": ("flowjit.checkpointing", "remat"),
    "checkpoint_policies": ("flowjit.checkpointing", "checkpoint_policies"),
    "grad": ("flowjit.ad", "grad"),
    "jvp": ("flowjit.forward", "jvp"),
    "linearize": ("flowjit.forward", "linearize"),
    "stop_gradient": ("flowjit.ad", "stop_gradient"),
    "value_and_grad": ("flowjit.ad", "value_and_grad"),
    "vjp": ("flowjit.ad", "vjp"),
    "cond": ("flowjit.control_flow", "cond"),
    "fori_loop": ("flowjit.control_flow", "fori_loop"),
    "scan": ("flowjit.control_flow", "scan"),
    "switch": ("flowjit.control_flow", "switch"),
    "while_loop": ("flowjit.control_flow", "while_loop"),
    "jit": ("flowjit.jitted", "jit"),
    "tree_map": ("flowjit.tree", "tree_map"),
    "vmap": ("flowjit.batching", "vmap"),
    "jacfwd": ("flowjit.jacobians", "jacfwd"),
    "jacrev": ("flowjit.jacobians", "jacrev"),
    "hessian": ("flowjit.jacobians", "hessian"),
    "ShapeDtypeStruct": ("flowjit.shape_eval", "ShapeDtypeStruct"),
    "eval_shape": ("flowjit.shape_eval", "eval_shape"),
    "block_until_ready": ("flowjit.shape_eval", "block_until_ready"),
    "devices": ("flowjit.runtime.cuda", "available_devices"),
    "device_put": ("flowjit.runtime.cuda", "device_put"),
    "config": ("flowjit.config", None),
    "lax": ("flowjit.lax", None),
    "nn": ("flowjit.nn", None),
    "numpy": ("flowjit.numpy", None),
    "random": ("flowjit.random", None),
    "tree": ("flowjit.tree", None),
    "tree_util": ("flowjit.tree_util", None),
}

__all__ = sorted(name for name, (_, attr) in _EXPORTS.items() if attr is not None)


def __getattr__(name: str):
    try:
        module_name, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'flowjit' has no attribute '{name}'") from None
    # flowjit.numpy first: it loads the API's modules in an order without import cycles
    # (flowjit.ad, control_flow and linalg need each other's names at load time).
    importlib.import_module("flowjit.numpy")
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
