"""fp32 ONNX -> fp16 or static int8 ONNX, keeping the device contract.

fp16: every float tensor inside the graph becomes float16; the input and the
outputs stay as they were (keep_io_types), so devices feed and read the same
types as for fp32.

int8: static quantization (onnxruntime.quantization.quantize_static) of the
pre-processed graph (onnxruntime's quant_pre_process: graph optimisation and
shape inference), QDQ format, per-channel int8 weights, activations
calibrated on the caller's calibration data. How to quantize is an
`Int8Setting` (calibration method, activation type, `reduce_range`, which
nodes stay fp32); `INT8_SETTINGS` are the candidates `to_onnx` tries in
order, keeping the first whose predicted-loss ranking passes its bar.

Measured before (small CNN and ResNet-style learners on 32x32x3, onnxruntime
1.31 on a 2-core x86 CPU with VNNI):

* The loss head's dense part (the nodes after its global pooling that feed
  `predicted_loss` and no task output) in fp32 kept 0.98-1.00 of the fp32
  top-10% picks, against 0.96-0.98 with the head quantized, for a few small
  MatMuls. The head's pooling stays quantized: dequantizing whole tap
  feature maps to pool them in fp32 made the int8 graph slower than fp32.
* uint8 activations (U8S8) agree as well as int8 ones (S8S8), but S8S8 QDQ
  graphs ran about 2x slower: onnxruntime's x86 kernels fuse U8S8
  convolutions into QLinearConv. S8S8 comes last (ARM devices prefer it).

MobileNetV2 (alpha 0.35, 96x96, trained 1 epoch on 2,000 CIFAR-10 images,
2,000-item pool, one timed pass on a loaded machine): every setting kept
0.965-0.98 of the pool's fp32 top-10% picks at Kendall tau 0.960-0.966;
MinMax U8S8 ran 2.5x fp32, S8S8 1.1x, and depthwise convolutions in fp32
0.86x. Entropy calibration is not offered: `quantize_static` does not pass
a histogram size to its calibrator, whose 128 bins then equal its 128
quantized bins, so the KL search has one candidate, the full range: it gave
MinMax's scale and zero point on every one of the 52 quantized tensors.
"""

import contextlib
import dataclasses
import io
import logging
import os
import tempfile
import warnings

import numpy as np

from kerasll.export.errors import ExportError

# Pooling ops of the head stay quantized (see the module docstring).
_POOLING_OPS = ("GlobalAveragePool", "ReduceMean", "GlobalMaxPool", "ReduceMax")
CALIBRATIONS = ("minmax", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
CALIBRATION_BATCH = 64


@dataclasses.dataclass(frozen=True)
class Int8Setting:
    """How to quantize a graph to int8 (one candidate of `to_onnx`).

    Attributes:
        calibration: how activation ranges are calibrated: "minmax" (the
            observed range) or "percentile" (the 99.999th percentile of |x|).
            No "entropy": see the module docstring.
        activations: "uint8" (U8S8: uint8 activations, int8 weights; fused
            into QLinearConv on x86) or "int8" (S8S8).
        reduce_range: 7-bit weights, which cannot saturate the 16-bit
            intermediate sums of x86 CPUs without VNNI.
        per_channel: one weight scale per output channel.
        head_in_fp32: keep the loss head's dense part (after its pooling) in
            fp32.
        depthwise_in_fp32: keep depthwise convolutions (Conv with one group
            per input channel) in fp32.
    """

    calibration: str = "minmax"
    activations: str = "uint8"
    reduce_range: bool = False
    per_channel: bool = True
    head_in_fp32: bool = True
    depthwise_in_fp32: bool = False

    def __post_init__(self):
        for name, allowed in (
            ("calibration", CALIBRATIONS),
            ("activations", ACTIVATION_TYPES),
        ):
            if getattr(self, name) not in allowed:
                raise ExportError(
                    f"Expected Int8Setting.{name} in {list(allowed)}. Received: "
                    f"{name}={getattr(self, name)!r}"
                )
        for name in ("reduce_range", "per_channel", "head_in_fp32",
                     "depthwise_in_fp32"):
            if not isinstance(getattr(self, name), bool):
                raise ExportError(
                    f"Expected Int8Setting.{name} to be a bool. Received: "
                    f"{name}={getattr(self, name)!r}"
                )

    @property
    def name(self):
        """A short label, e.g. "minmax U8S8 per-channel, head fp32"."""
        kinds = {"uint8": "U8S8", "int8": "S8S8"}
        parts = [self.calibration, kinds[self.activations]]
        parts.append("per-channel" if self.per_channel else "per-tensor")
        if self.reduce_range:
            parts.append("reduce-range")
        kept = [
            what
            for what, flag in (("head", self.head_in_fp32),
                               ("depthwise", self.depthwise_in_fp32))
            if flag
        ]
        return " ".join(parts) + (f", {'+'.join(kept)} fp32" if kept else "")


# Tried in this order; the first that keeps the ranking is kept. Fastest
# first on x86 (see the module docstring): U8S8 with every convolution
# quantized, MinMax then Percentile, then 7-bit weights, then depthwise
# convolutions left in fp32 (a Q/DQ pair around each one: slower than fp32
# on MobileNetV2), and S8S8 last.
INT8_SETTINGS = (
    Int8Setting(calibration="minmax"),
    Int8Setting(calibration="percentile"),
    Int8Setting(calibration="minmax", reduce_range=True),
    Int8Setting(calibration="minmax", depthwise_in_fp32=True),
    Int8Setting(calibration="minmax", activations="int8"),
)


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
    """`CalibrationDataReader` over an array, in batches of one size.

    onnxruntime's histogram calibrators (Percentile) stack the batches of
    each tensor, which fails on a shorter last batch: the batch
    size is the largest divisor of the item count up to `batch`.
    """

    def __init__(self, input_name, data, batch=CALIBRATION_BATCH):
        self.input_name = input_name
        self.data = data
        self.batch = max(
            size for size in range(1, min(batch, len(data)) + 1)
            if len(data) % size == 0
        )
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
    """onnxruntime's quantization tools log warnings and print progress."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def depthwise_nodes(model):
    """Names of the Conv nodes with one group per input channel (depthwise)."""
    import onnx

    names = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        group = next(
            (onnx.helper.get_attribute_value(a) for a in node.attribute
             if a.name == "group"),
            1,
        )
        if group > 1:
            names.append(node.name)
    return sorted(names)


def int8_candidates(
    model,
    *,
    input_name,
    calibration_data,
    predicted_loss,
    task_outputs,
    settings=INT8_SETTINGS,
    preprocess=True,
):
    """Static int8 quantizations of an fp32 `ModelProto`, one per setting.

    A generator: each quantization runs only when the next item is asked
    for, so a caller that stops at the first good one pays for no more.
    Settings that would produce the same graph as an earlier one (e.g.
    depthwise convolutions kept in fp32 in a graph that has none) are
    skipped.

    Args:
        model: the fp32 model.
        input_name: its input.
        calibration_data: array of inputs as the graph takes them.
        predicted_loss, task_outputs: output names (to find the loss head).
        settings: `Int8Setting`s, in the order to try them.
        preprocess: run onnxruntime's quantization pre-processing (symbolic
            shape inference and graph optimisation) first.

    Yields:
        `(setting, model, excluded)`: the setting, the quantized `ModelProto`
        and the names of the nodes kept in fp32.

    Raises:
        ExportError: onnxruntime could not quantize the graph.
    """
    import onnx

    with tempfile.TemporaryDirectory(prefix="kerasll-int8-") as workdir:
        source = os.path.join(workdir, "fp32.onnx")
        onnx.save(model, source)
        if preprocess:
            source = _preprocessed(source, os.path.join(workdir, "prepared.onnx"))
        prepared = onnx.load(source)
        head = head_nodes(prepared, predicted_loss, task_outputs, pooling=False)
        depthwise = depthwise_nodes(prepared)
        seen = set()
        for setting in settings:
            excluded = sorted(
                (set(head) if setting.head_in_fp32 else set())
                | (set(depthwise) if setting.depthwise_in_fp32 else set())
            )
            key = dataclasses.replace(
                setting,
                head_in_fp32=bool(head) and setting.head_in_fp32,
                depthwise_in_fp32=bool(depthwise) and setting.depthwise_in_fp32,
            )
            if key in seen:
                continue
            seen.add(key)
            target = os.path.join(workdir, "int8.onnx")
            _quantize(source, target, input_name, calibration_data, setting, excluded)
            yield setting, onnx.load(target), excluded


def _preprocessed(source, target):
    """onnxruntime's quantization pre-processing, or `source` when it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        # Symbolic shape inference (for dynamic shapes inside transformers)
        # needs sympy; onnx's shape inference covers convnets.
        with _quiet_onnxruntime():
            quant_pre_process(source, target, skip_symbolic_shape=True)
    except Exception as error:  # Optional step: fall back to the raw graph.
        warnings.warn(
            "int8 export: onnxruntime's quantization pre-processing "
            f"failed and was skipped ({type(error).__name__}: {error})",
            RuntimeWarning,
            stacklevel=3,
        )
        return source
    return target


def _quantize(source, target, input_name, calibration_data, setting, excluded):
    """`quantize_static` of the file `source` into `target` with `setting`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(_BatchReader, CalibrationDataReader):
        pass

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
    }
    activations = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    try:
        with _quiet_onnxruntime():
            quantize_static(
                source,
                target,
                Reader(input_name, calibration_data),
                quant_format=QuantFormat.QDQ,
                per_channel=setting.per_channel,
                reduce_range=setting.reduce_range,
                activation_type=activations[setting.activations],
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded or None,
                calibrate_method=methods[setting.calibration],
                extra_options={"ActivationSymmetric": False},
            )
    except Exception as error:
        raise ExportError(
            f"Expected a graph onnxruntime can quantize statically "
            f"({setting.name}). Quantization failed: {type(error).__name__}: "
            f"{error}"
        ) from error
