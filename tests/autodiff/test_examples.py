"""The autodiff examples do what they say, checked against independent oracles."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))

import cnn  # noqa: E402
import linear_regression  # noqa: E402
import lstm  # noqa: E402
import mlp_classifier  # noqa: E402


def test_linear_regression_recovers_the_true_parameters():
    (w, b), (true_w, true_b) = linear_regression.fit()
    np.testing.assert_allclose(w, true_w, atol=0.01)
    np.testing.assert_allclose(b, true_b, atol=0.01)


def test_mlp_classifier_reaches_95_percent():
    accuracy, _ = mlp_classifier.train()
    assert accuracy > 0.95


def test_lstm_gradients_match_finite_differences(x64):
    params, x, h, c = lstm.make()
    (gw, gb), gh = lstm.grad_step(params, x, h, c)
    f = lambda w, b, h: float(lstm.loss((w, b), x, h, c))  # noqa: E731
    eps = 1e-6
    w, b = params
    for (array, grad, which) in ((w, gw, 0), (b, gb, 1), (h, gh, 2)):
        for index in [(0,) * array.ndim, tuple(s - 1 for s in array.shape)]:
            args = [w.copy(), b.copy(), h.copy()]
            args[which][index] += eps
            up = f(*args)
            args[which][index] -= 2 * eps
            down = f(*args)
            np.testing.assert_allclose(grad[index], (up - down) / (2 * eps), rtol=1e-5,
                                       atol=1e-7)


def test_lstm_sequence_gradients_match_finite_differences(x64):
    (w, b), x, h, c = lstm.make(batch=2, n_in=2, n_hidden=3)
    xs = np.random.default_rng(1).standard_normal((5,) + x.shape)
    gw, gb = lstm.sequence_grad((w, b), xs, h, c)
    eps = 1e-6
    for index in [(0, 0), (3, 7), (4, 11)]:
        up, down = w.copy(), w.copy()
        up[index] += eps
        down[index] -= eps
        expected = (float(lstm.sequence_loss((up, b), xs, h, c))
                    - float(lstm.sequence_loss((down, b), xs, h, c))) / (2 * eps)
        np.testing.assert_allclose(gw[index], expected, rtol=1e-5, atol=1e-8)


def test_cnn_reaches_95_percent():
    accuracy, _ = cnn.train()
    assert accuracy > 0.95


def test_one_cnn_step_is_jaxs():
    """The example's SGD step (convolutions, pooling, integer-label cross-entropy and their
    gradients) against the same step written in JAX."""
    import pytest
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    images, labels = cnn.stripes(16, seed=3)
    params = cnn.init(seed=3)

    def conv(x, kernel, bias):
        y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y + bias)

    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                     "VALID")

    def loss(p, x, y):
        x = pool(conv(x, p["conv1"], p["b1"]))
        x = pool(conv(x, p["conv2"], p["b2"]))
        z = x.reshape(x.shape[0], -1) @ p["dense"] + p["b3"]
        return -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=-1).mean()
    grads = jax.grad(loss)(params, images, labels)
    got = cnn.sgd_step(params, images, labels)
    for k in params:
        np.testing.assert_allclose(got[k], params[k] - 0.05 * np.asarray(grads[k]),
                                   rtol=1e-4, atol=1e-5)
