"""A small MLP forward pass: the function `flowjit dump` and the demo use."""
import flowjit
import flowjit.numpy as fnp


def predict(w, b, x):
    """ReLU(x W + b) reduced per row: the seed talks' `ReLU(Wx+b)`, then a tanh readout."""
    hidden = fnp.maximum(x @ w + b, 0.0)
    return fnp.tanh(hidden).sum(axis=-1)


def mlp(params, x):
    """A multi-layer perceptron: params is a list of (w, b) pairs."""
    for w, b in params[:-1]:
        x = fnp.maximum(x @ w + b, 0.0)
    w, b = params[-1]
    return x @ w + b


predict_jit = flowjit.jit(predict)
