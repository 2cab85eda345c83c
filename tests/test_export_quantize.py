"""`kerasll.export.quantize` on a small hand-built ONNX graph: which nodes are
the loss head, which convolutions are depthwise, node ordering, and fp16
conversion with the device's input and output types kept."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from kerasll.export.errors import ExportError
from kerasll.export.quantize import (
    depthwise_nodes,
    head_nodes,
    to_fp16,
    topological_sort,
)

RNG = np.random.default_rng(0)
WEIGHTS = {
    "stem_w": RNG.normal(size=(2, 3, 1, 1)),
    "dw_w": RNG.normal(size=(2, 1, 3, 3)),
    "task_w": RNG.normal(size=(2, 4)),
    "head_w": RNG.normal(size=(2, 1)),
}


def _graph_model(nodes=None):
    """x -> stem (Conv) -> dw (depthwise Conv) -> relu; then a task branch
    (pool, flatten, MatMul -> "task") and a head branch (pool, flatten,
    MatMul -> "predicted_loss")."""
    nodes = nodes or [
        helper.make_node("Conv", ["x", "stem_w"], ["stem"], name="stem"),
        helper.make_node(
            "Conv", ["stem", "dw_w"], ["dw"], name="dw", group=2, pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["dw"], ["features"], name="relu"),
        helper.make_node("GlobalAveragePool", ["features"], ["tp"], name="task_pool"),
        helper.make_node("Flatten", ["tp"], ["tf"], name="task_flat"),
        helper.make_node("MatMul", ["tf", "task_w"], ["task"], name="task_matmul"),
        helper.make_node("GlobalAveragePool", ["features"], ["hp"], name="head_pool"),
        helper.make_node("Flatten", ["hp"], ["hf"], name="head_flat"),
        helper.make_node(
            "MatMul", ["hf", "head_w"], ["predicted_loss"], name="head_matmul"
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [
            helper.make_tensor_value_info("task", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info(
                "predicted_loss", TensorProto.FLOAT, ["batch", 1]
            ),
        ],
        [
            numpy_helper.from_array(value.astype(np.float32), name)
            for name, value in WEIGHTS.items()
        ],
    )
    # IR version 8: what tf2onnx writes at opset 17, and what onnxruntime reads.
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    )


def _run(model, x):
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})


def test_the_head_is_what_feeds_predicted_loss_and_no_task_output():
    model = _graph_model()
    assert head_nodes(model, "predicted_loss", ["task"]) == [
        "head_flat", "head_matmul", "head_pool",
    ]
    assert head_nodes(model, "predicted_loss", ["task"], pooling=False) == [
        "head_flat", "head_matmul",
    ]
    assert head_nodes(model, "task", ["predicted_loss"]) == [
        "task_flat", "task_matmul", "task_pool",
    ]


def test_depthwise_convolutions_are_those_with_groups():
    assert depthwise_nodes(_graph_model()) == ["dw"]


def test_nodes_are_sorted_after_their_inputs_producers():
    model = _graph_model()
    shuffled = list(model.graph.node)[::-1]
    del model.graph.node[:]
    model.graph.node.extend(shuffled)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    topological_sort(model.graph)
    onnx.checker.check_model(model)
    assert [node.name for node in model.graph.node][:3] == ["stem", "dw", "relu"]


def test_an_input_nothing_produces_is_refused_by_name():
    model = _graph_model()
    model.graph.node[2].input[0] = "ghost"
    with pytest.raises(ExportError, match=r"never produced: \[.*'ghost'"):
        topological_sort(model.graph)


def test_fp16_keeps_the_devices_float32_input_and_outputs():
    model = _graph_model()
    half = to_fp16(model)
    onnx.checker.check_model(half)
    float32 = TensorProto.FLOAT
    assert [v.type.tensor_type.elem_type for v in half.graph.input] == [float32]
    assert {v.type.tensor_type.elem_type for v in half.graph.output} == {float32}
    assert {t.data_type for t in half.graph.initializer} == {TensorProto.FLOAT16}
    x = RNG.normal(size=(5, 3, 4, 4)).astype(np.float32)
    for got, want in zip(_run(half, x), _run(model, x)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)
