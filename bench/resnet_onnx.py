"""The ResNet-18 of `bench.resnet` as an ONNX graph, run by onnxruntime: the anchor issue 14
names (an inference engine with hand-tuned convolution kernels, on the same threads).

onnxruntime and onnx are optional (`pip install onnxruntime onnx`); without them
`bench.resnet` leaves the column out. The graph takes the same NHWC input and weights: one
transpose to NCHW at the input (onnxruntime's CPU kernels choose their own internal layout),
batch-norm scale folded into the convolution weights and the shift into its bias, which is
what onnxruntime's own graph optimizer does to an unfolded graph.
"""
from __future__ import annotations

import numpy as np

from bench.resnet import STAGES


def available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def build_model(p: dict):
    """An onnx.ModelProto computing `bench.resnet.forward` on NHWC float32 input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights = [], []

    def constant(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def conv_bn(x: str, c: dict, stride: int, name: str, relu: bool = True) -> str:
        w = (c["w"] * c["scale"]).transpose(3, 2, 0, 1)  # HWIO -> OIHW, scale folded
        k = w.shape[-1]
        out = f"{name}_conv"
        nodes.append(helper.make_node(
            "Conv", [x, constant(f"{name}_w", w), constant(f"{name}_b", c["shift"])], [out],
            strides=[stride, stride], kernel_shape=[k, k], auto_pad="SAME_UPPER"))
        if not relu:
            return out
        nodes.append(helper.make_node("Relu", [out], [f"{name}_relu"]))
        return f"{name}_relu"

    nodes.append(helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2]))
    x = conv_bn("x_nchw", p["stem"], 2, "stem")
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3],
                                  strides=[2, 2], auto_pad="SAME_UPPER"))
    x = "pool"
    strides = [stride if b == 0 else 1 for _, stride in STAGES for b in range(2)]
    for i, (block, stride) in enumerate(zip(p["blocks"], strides)):
        y = conv_bn(conv_bn(x, block["a"], stride, f"b{i}a"), block["b"], 1, f"b{i}b",
                    relu=False)
        shortcut = (conv_bn(x, block["down"], stride, f"b{i}d", relu=False)
                    if "down" in block else x)
        nodes.append(helper.make_node("Add", [y, shortcut], [f"b{i}_sum"]))
        nodes.append(helper.make_node("Relu", [f"b{i}_sum"], [f"b{i}_out"]))
        x = f"b{i}_out"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["features"]))
    nodes.append(helper.make_node("MatMul", ["features", constant("fc", p["fc"])], ["y"]))
    graph = helper.make_graph(
        nodes, "resnet18",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1000])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def session(p: dict, threads: int):
    """An onnxruntime session of the model, all graph optimizations on, `threads` intra-op
    threads (the same number flowjit's runtime uses) and no inter-op pool."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(build_model(p).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
