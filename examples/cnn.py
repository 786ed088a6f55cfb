"""A small CNN (two conv + max-pool layers, a dense layer) trained with SGD on images made
here: stripes in one of four orientations, under noise. It reaches > 95% test accuracy.

    python examples/cnn.py

Written as a JAX user writes it: `lax.conv_general_dilated` with NHWC images and HWIO
kernels, `nn.max_pool` (flax's name), integer labels through `take_along_axis`, `grad`.
"""

import time

import numpy as np

import flowjit
import flowjit.nn as nn
import flowjit.numpy as fnp
from flowjit import lax

SIZE, CLASSES = 16, 4


def stripes(n: int, seed: int):
    """n noisy 16x16 images of stripes (horizontal, vertical, or either diagonal) with a
    random period and phase; the label is the orientation."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    labels = rng.integers(0, CLASSES, n).astype(np.int32)
    images = np.empty((n, SIZE, SIZE, 1), np.float32)
    for k, label in enumerate(labels):
        coordinate = (i, j, i + j, i - j)[label]
        period, phase = rng.uniform(3, 6), rng.uniform(0, 2 * np.pi)
        images[k, :, :, 0] = np.sin(2 * np.pi * coordinate / period + phase)
    images += 0.5 * rng.standard_normal(images.shape).astype(np.float32)
    return images, labels


def init(seed: int = 0):
    rng = np.random.default_rng(seed)

    def he(*shape):
        fan_in = int(np.prod(shape[:-1]))
        return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
    return {"conv1": he(3, 3, 1, 8), "b1": np.zeros(8, np.float32),
            "conv2": he(3, 3, 8, 16), "b2": np.zeros(16, np.float32),
            "dense": he(4 * 4 * 16, CLASSES), "b3": np.zeros(CLASSES, np.float32)}


def conv(x, kernel, bias):
    y = lax.conv_general_dilated(x, kernel, window_strides=(1, 1), padding="SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return nn.relu(y + bias)


def logits(params, images):
    x = nn.max_pool(conv(images, params["conv1"], params["b1"]), (2, 2), strides=(2, 2))
    x = nn.max_pool(conv(x, params["conv2"], params["b2"]), (2, 2), strides=(2, 2))
    return x.reshape(x.shape[0], -1) @ params["dense"] + params["b3"]


def loss(params, images, labels):
    log_probs = nn.log_softmax(logits(params, images))
    return -fnp.take_along_axis(log_probs, labels[:, None], axis=-1).mean()


@flowjit.jit
def sgd_step(params, images, labels, lr=0.05):
    grads = flowjit.grad(loss)(params, images, labels)
    return {k: params[k] - lr * grads[k] for k in params}


@flowjit.jit
def accuracy(params, images, labels):
    return (fnp.argmax(logits(params, images), axis=-1) == labels).mean()


def train(steps: int = 300, batch: int = 32, seed: int = 0):
    """(test accuracy, seconds per step after the first)."""
    images, labels = stripes(2048, seed)
    test_images, test_labels = stripes(512, seed + 1)
    params = init(seed)
    rng = np.random.default_rng(seed)
    sgd_step(params, images[:batch], labels[:batch])   # compile
    start = time.perf_counter()
    for _ in range(steps):
        pick = rng.integers(0, len(images), batch)
        params = sgd_step(params, images[pick], labels[pick])
    per_step = (time.perf_counter() - start) / steps
    return float(accuracy(params, test_images, test_labels)), per_step


if __name__ == "__main__":
    acc, per_step = train()
    print(f"test accuracy {acc:.3f} after 300 steps of batch 32 "
          f"({per_step * 1e3:.1f} ms per step)")
