"""fp32 ONNX -> fp16 or static int8 ONNX, keeping the device contract.

fp16: every float tensor inside the graph becomes float16; the input and the
outputs stay as they were (keep_io_types), so devices feed and read the same
types as for fp32.

int8: static quantization (onnxruntime.quantization.quantize_static) of the
pre-processed graph (onnxruntime's quant_pre_process: graph optimisation and
shape inference), QDQ format, per-channel int8 weights, uint8 activations
calibrated with MinMax on the caller's calibration data.

Two choices were measured (small CNN and ResNet-style learners on 32x32x3,
untrained and trained, 1000 held-out items, onnxruntime 1.31 on a 2-core x86
CPU):

* The loss head's dense part (the nodes after its global pooling that feed
  `predicted_loss` and no task output) stays fp32 by default
  (`HEAD_IN_FP32`): 0.98-1.00 of the fp32 top-10% predicted-loss picks were
  kept, against 0.96-0.98 with the head quantized (Spearman 0.9999 vs
  0.9997), for a few small MatMuls. The head's pooling stays quantized:
  dequantizing whole tap feature maps to pool them in fp32 made the int8
  graph slower than fp32.
* uint8 activations (U8S8) rather than int8 (S8S8): the same agreement, but
  S8S8 QDQ graphs ran about 2x slower, since onnxruntime's x86 CPU kernels
  fuse U8S8 convolutions into QLinearConv. With both choices the int8 graph
  ran 1.3-1.7x faster than fp32 at batch 256 (and no slower at batch 1).
"""

import contextlib
import logging
import os
import tempfile
import warnings

import numpy as np

from kerasll.export.errors import ExportError

HEAD_IN_FP32 = True
# Pooling ops of the head stay quantized (see the module docstring).
_POOLING_OPS = ("GlobalAveragePool", "ReduceMean", "GlobalMaxPool", "ReduceMax")
CALIBRATION_BATCH = 64


def to_fp16(model):
    """Converts an fp32 `ModelProto` to fp16, inputs and outputs kept fp32."""
    # onnxruntime (a dependency) ships onnxconverter-common's converter.
    from onnxruntime.transformers import float16

    try:
        converted = float16.convert_float_to_float16(model, keep_io_types=True)
    except Exception as error:
        raise ExportError(
            f"Expected a graph the float16 converter accepts. Conversion failed: "
            f"{type(error).__name__}: {error}"
        ) from error
    # keep_io_types appends the input casts at the end of the node list, which
    # onnxruntime accepts but onnx.checker (rightly) does not.
    topological_sort(converted.graph)
    return converted


def topological_sort(graph):
    """Reorders `graph.node` in place so every node follows its inputs' producers.

    Raises:
        ExportError: the graph has a cycle or an input nothing produces.
    """
    available = {""} | {value.name for value in graph.input}
    available |= {tensor.name for tensor in graph.initializer}
    pending = list(graph.node)
    ordered = []
    while pending:
        remaining = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                remaining.append(node)
        if len(remaining) == len(pending):
            missing = sorted(
                {name for node in remaining for name in node.input} - available
            )
            raise ExportError(
                "Expected an acyclic ONNX graph. Received nodes whose inputs are "
                f"never produced: {missing[:5]}"
            )
        pending = remaining
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def head_nodes(model, predicted_loss, task_outputs, pooling=True):
    """Names of the nodes that feed `predicted_loss` but no task output.

    That is the loss head (and any backbone branch that only feeds a tap).
    With `pooling=False`, its global pooling nodes are left out.
    """
    producer = {}
    for node in model.graph.node:
        for output in node.output:
            producer[output] = node

    def ancestors(names):
        seen, stack = set(), list(names)
        while stack:
            node = producer.get(stack.pop())
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            stack.extend(node.input)
        return seen

    names = ancestors([predicted_loss]) - ancestors(task_outputs)
    if not pooling:
        kinds = {node.name: node.op_type for node in model.graph.node}
        names = {name for name in names if kinds[name] not in _POOLING_OPS}
    return sorted(names)


class _BatchReader:
    """`CalibrationDataReader` over an array, `CALIBRATION_BATCH` items at a time."""

    def __init__(self, input_name, data, batch=CALIBRATION_BATCH):
        self.input_name = input_name
        self.data = data
        self.batch = batch
        self.start = 0

    def get_next(self):
        if self.start >= len(self.data):
            return None
        chunk = self.data[self.start:self.start + self.batch]
        self.start += self.batch
        return {self.input_name: np.ascontiguousarray(chunk)}

    def rewind(self):
        self.start = 0


@contextlib.contextmanager
def _quiet_onnxruntime():
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def to_int8(
    model,
    *,
    input_name,
    calibration_data,
    predicted_loss,
    task_outputs,
    head_in_fp32=HEAD_IN_FP32,
    preprocess=True,
):
    """Static int8 quantization of an fp32 `ModelProto`.

    Args:
        model: the fp32 model.
        input_name: its input.
        calibration_data: array of inputs as the graph takes them.
        predicted_loss, task_outputs: output names (to find the loss head).
        head_in_fp32: keep the loss head's nodes after its pooling unquantized.
        preprocess: run onnxruntime's quantization pre-processing (symbolic
            shape inference and graph optimisation) first.

    Returns:
        `(model, excluded)`: the quantized `ModelProto` and the node names
        that were kept in fp32.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_BatchReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="kerasll-int8-") as workdir, \
            _quiet_onnxruntime():
        source = os.path.join(workdir, "fp32.onnx")
        onnx.save(model, source)
        if preprocess:
            prepared = os.path.join(workdir, "prepared.onnx")
            try:
                # Symbolic shape inference (for dynamic shapes inside
                # transformers) needs sympy; onnx's shape inference covers
                # convnets.
                quant_pre_process(source, prepared, skip_symbolic_shape=True)
                source = prepared
            except Exception as error:  # Optional step: fall back to the raw graph.
                warnings.warn(
                    "int8 export: onnxruntime's quantization pre-processing "
                    f"failed and was skipped ({type(error).__name__}: {error})",
                    RuntimeWarning,
                    stacklevel=2,
                )
        prepared_model = onnx.load(source)
        excluded = (
            head_nodes(prepared_model, predicted_loss, task_outputs, pooling=False)
            if head_in_fp32
            else []
        )
        target = os.path.join(workdir, "int8.onnx")
        try:
            quantize_static(
                source,
                target,
                Reader(input_name, calibration_data),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded or None,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False},
            )
        except Exception as error:
            raise ExportError(
                f"Expected a graph onnxruntime can quantize statically. "
                f"Quantization failed: {type(error).__name__}: {error}"
            ) from error
        return onnx.load(target), excluded
