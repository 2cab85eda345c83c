"""Arithmetic of an ONNX graph and this machine's practical matmul peak.

Counts multiply-adds of Conv, Gemm and MatMul nodes (2 FLOPs each) after
shape inference with a fixed batch size; element-wise ops are ignored, so the
achieved GFLOP/s reported from it is a slight underestimate.
"""

import time

import numpy as np
import onnx
from onnx import shape_inference


def _fixed_batch(model, batch_size):
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch_size
    return shape_inference.infer_shapes(model)


def _shapes(model):
    shapes = {}
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def graph_flops(path, batch_size=1):
    """FLOPs of one forward pass of an ONNX model.

    Args:
        path: the .onnx file.
        batch_size: batch size substituted for a dynamic batch axis.

    Returns:
        Float FLOPs (2 per multiply-add) of Conv, Gemm and MatMul nodes.

    Raises:
        ValueError: a counted node has shapes that shape inference left unknown.
    """
    model = _fixed_batch(onnx.load(path), batch_size)
    shapes = _shapes(model)
    total = 0.0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        out = shapes.get(node.output[0])
        weight = shapes.get(node.input[1])
        if not out or not weight or None in out or None in weight:
            raise ValueError(
                f"Expected known shapes for {node.op_type} node {node.name!r}. "
                f"Received output {out}, weight {weight}."
            )
        if node.op_type == "Conv":
            # out: N, Cout, H, W ...; weight: Cout, Cin/groups, kH, kW ...
            total += 2.0 * np.prod(out) * np.prod(weight[1:])
        else:
            total += 2.0 * np.prod(out) * shapes[node.input[0]][-1]
    return total


def _best_seconds(run, repeats):
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_gflops(size=2048, repeats=5):
    """Best float32 matmul rate here, in GFLOP/s: numpy's BLAS and onnxruntime's.

    The practical limit of the scorer is onnxruntime's own GEMM (MLAS), which
    can beat the BLAS numpy ships; both are measured and the higher counts.

    Args:
        size: square matrix size.
        repeats: timed repetitions; the fastest counts.

    Returns:
        Dict with "numpy", "onnxruntime" and "peak" GFLOP/s.
    """
    import onnxruntime
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    flops = 2.0 * size**3
    numpy_rate = flops / _best_seconds(lambda: a @ b, repeats) / 1e9
    spec = [size, size]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, spec),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, spec)],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, spec)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_rate = flops / _best_seconds(
        lambda: session.run(None, {"a": a, "b": b}), repeats) / 1e9
    return {"numpy": numpy_rate, "onnxruntime": ort_rate,
            "peak": max(numpy_rate, ort_rate)}
