"""flowjit: compile numpy-style Python to fast machine code.

    import compiler
    import compiler.numpy as fnp

    @compiler.jit
    def predict(w, b, x):
        return fnp.tanh(x @ w + b).sum(axis=-1)
"""
from compiler.core import Array
from compiler.errors import (FlowjitError, ShapeError, TracerArrayConversionError,
                             TracerBoolConversionError)
from compiler.ad import custom_vjp, grad, jvp, stop_gradient, value_and_grad, vjp
from compiler.control_flow import cond, fori_loop, scan, switch, while_loop
from compiler.jit import jit
from compiler.tree import tree_map
from runtime.cuda import available_devices as devices, device_put

from compiler import random  # noqa: E402  (compiler.random, as jax.random)

__version__ = "0.1.0"

__all__ = ["Array", "FlowjitError", "ShapeError", "TracerArrayConversionError",
           "TracerBoolConversionError", "cond", "custom_vjp", "device_put", "devices",
           "fori_loop", "grad", "jit", "jvp", "scan", "stop_gradient", "switch", "tree_map",
           "value_and_grad", "vjp", "while_loop"]
