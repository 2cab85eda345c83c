"""`to_onnx`: a trained `LossLearner` -> one verified ONNX scoring graph."""

import dataclasses
import math
import os

import numpy as np
from kerasll_serving.atomic import atomic_path
from kerasll_serving.contract import PRECISIONS  # The contract owns the list.
from kerasll_serving.errors import first_line

from kerasll.export import convert, metadata, quantize, verify
from kerasll.export.errors import ExportError, LearnerTypeError, VerificationError

DEFAULT_TOLERANCE = 1e-4
DEFAULT_MIN_TOP_OVERLAP = 0.9
GENERATED_COUNT = 256
GENERATED_SEED = 0
_PREDICT_BATCH = 256


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What was exported and how well it agrees with Keras.

    Attributes:
        path: the written file.
        precision: "fp32", "fp16" or "int8".
        opset: ONNX opset of the graph.
        file_size: bytes on disk.
        input_name, input_shape, input_dtype, layout: the graph input (shape
            with None for the batch axis).
        outputs: graph output names (task outputs, then "predicted_loss").
        verify_count: items verification ran on (one onnxruntime batch).
        verify_source: "verify_data", "calibration_data" or "generated".
        max_abs_diff: per output, max |exported graph - Keras|.
        allowed_diff: per output, the fp32 bound tolerance * max(1, max|Keras|).
        fp32_max_abs_diff: per output, max |fp32 graph - Keras| (the parity
            check every export passes; equal to `max_abs_diff` for fp32).
        spearman: Spearman correlation of `predicted_loss` with the reference
            (Keras for fp32, the fp32 graph for fp16/int8); NaN if undefined.
        top_overlap: share of the reference's top-`top_fraction` predicted-loss
            picks the exported graph also picks.
        top_fraction: the share of items picked (0.1).
        min_top_overlap: the bound fp16/int8 exports had to meet.
        argmax_agreement: per (B, C>1) task output, the share of rows whose
            argmax matches Keras.
        fp32_nodes: int8 only: nodes kept in fp32 (the loss head's dense part).
    """

    path: str
    precision: str
    opset: int
    file_size: int
    input_name: str
    input_shape: tuple
    input_dtype: str
    layout: str
    outputs: tuple
    verify_count: int
    verify_source: str
    max_abs_diff: dict
    allowed_diff: dict
    fp32_max_abs_diff: dict
    spearman: float
    top_overlap: float
    top_fraction: float
    min_top_overlap: float
    argmax_agreement: dict
    fp32_nodes: tuple = ()

    def lines(self):
        """The report as printable lines."""
        shape = ", ".join(
            "batch" if size is None else str(size) for size in self.input_shape
        )
        reference = "Keras" if self.precision == "fp32" else "the fp32 graph"
        rows = [
            f"Exported {self.path} ({self.precision}, opset {self.opset}, "
            f"{_size(self.file_size)})",
            f"Input {self.input_name!r} {self.input_dtype} ({shape}) {self.layout}; "
            f"outputs: {', '.join(self.outputs)}",
            f"Verified with onnxruntime (CPU) against Keras on {self.verify_count} "
            f"items ({self.verify_source}):",
        ]
        width = max(len(name) for name in self.outputs)
        for name in self.outputs:
            row = f"  {name:<{width}}  max |diff| {self.max_abs_diff[name]:.3g}"
            if self.precision == "fp32":
                row += f" (allowed {self.allowed_diff[name]:.3g})"
            else:
                row += f" (fp32 graph: {self.fp32_max_abs_diff[name]:.3g})"
            if self.argmax_agreement.get(name) is not None:
                row += f", argmax agreement {self.argmax_agreement[name]:.4f}"
            rows.append(row)
        overlap = (
            f"predicted_loss vs {reference}: Spearman {self.spearman:.4f}, "
            f"top-{self.top_fraction:.0%} overlap {self.top_overlap:.3f}"
        )
        if self.precision != "fp32":
            overlap += f" (min {self.min_top_overlap:.2f})"
        rows.append(overlap)
        if self.fp32_nodes:
            rows.append(
                f"Kept in fp32: {len(self.fp32_nodes)} loss-head nodes (dense part)"
            )
        return rows

    def __str__(self):
        return "\n".join(self.lines())


def _size(count):
    for unit in ("B", "KB", "MB"):
        if count < 1024 or unit == "MB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024.0
    return f"{count:.1f} GB"  # pragma: no cover


# Argument checks ----------------------------------------------------------


def _check_backend():
    """tf2onnx converts TensorFlow graphs: other backends export via a .keras file."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ExportError(
            "Expected the TensorFlow Keras backend: ONNX export converts a "
            f"TensorFlow graph with tf2onnx. Received: backend={backend!r}. Save "
            "the learner with learner.save('learner.keras'), then load and export "
            "it under TensorFlow, e.g. KERAS_BACKEND=tensorflow kerasll export "
            "learner.keras --out learner.onnx"
        )


def _check_learner(learner):
    from kerasll.learner import LossLearner

    if not isinstance(learner, LossLearner):
        kind = f"{type(learner).__module__}.{type(learner).__qualname__}"
        hint = (
            " Wrap the model first: kerasll.LossLearner(model), then train it."
            if _is_keras_model(learner)
            else ""
        )
        raise LearnerTypeError(
            f"Expected a built kerasll.LossLearner. Received: {kind}.{hint}"
        )
    if not getattr(learner, "built", False) or not learner.backbone.inputs:
        raise LearnerTypeError(
            f"Expected a built kerasll.LossLearner. Received an unbuilt "
            f"LossLearner {learner.name!r}."
        )
    if len(learner.backbone.inputs) != 1:
        raise ExportError(
            "Expected a model with a single input (the device contract has one). "
            f"Received {len(learner.backbone.inputs)} inputs."
        )


def _is_keras_model(value):
    import keras

    return isinstance(value, keras.Model)


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ExportError(
            f"Expected precision in {list(PRECISIONS)}. "
            f"Received: precision={precision!r}."
        )
    return precision


def _check_path(path):
    try:
        path = os.path.abspath(os.fspath(path))
    except TypeError:
        raise ExportError(
            f"Expected an output path (str or os.PathLike). Received: {path!r}."
        ) from None
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise ExportError(
            f"Expected a file path to write. Received a directory: {path}."
        )
    if not os.path.isdir(parent):
        raise ExportError(
            f"Expected the output's directory to exist. Received: {path} "
            f"({parent} does not exist)."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(
            f"Expected a writable output directory. Received: {path} "
            f"({parent} is not writable)."
        )
    replaceable = os.path.isfile(path) and os.access(path, os.W_OK)
    if os.path.lexists(path) and not replaceable:
        raise ExportError(
            f"Expected a writable output file. Received: {path} (exists and "
            "cannot be replaced)."
        )
    return path


def _check_number(name, value, low=None, high=None, low_open=False):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = math.isfinite(number) and not isinstance(value, bool)
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number <= high
    if not ok:
        bounds = ""
        if low is not None or high is not None:
            left = "(" if low_open else "["
            low_text = "-inf" if low is None else f"{low:g}"
            high_text = "inf" if high is None else f"{high:g}"
            bounds = f" in {left}{low_text}, {high_text}]"
        raise ExportError(
            f"Expected {name} a finite number{bounds}. Received: {name}={value!r}."
        )
    return number


def _input_spec(learner, raw_input_dtype, input_name):
    import keras

    tensor = learner.backbone.inputs[0]
    shape = tuple(tensor.shape)
    model_dtype = np.dtype(keras.backend.standardize_dtype(tensor.dtype)).name
    layout = metadata.input_layout(shape)
    raw = model_dtype if raw_input_dtype is None else raw_input_dtype
    try:
        raw = np.dtype(raw).name
    except TypeError:
        raw = None
    if raw == "uint8" and raw != model_dtype:
        if layout != "NHWC" or np.dtype(model_dtype).kind != "f":
            raise ExportError(
                "Expected raw_input_dtype='uint8' only for a float NHWC image "
                f"input. Received an input of shape {shape}, dtype {model_dtype} "
                f"({layout})."
            )
    elif raw != model_dtype:
        allowed = sorted({model_dtype, "uint8"} if layout == "NHWC" else {model_dtype})
        raise ExportError(
            f"Expected raw_input_dtype in {allowed} "
            f"for this model (input dtype {model_dtype}, {layout}). Received: "
            f"raw_input_dtype={raw_input_dtype!r}."
        )
    if input_name is None:
        history = getattr(tensor, "_keras_history", None)
        operation = getattr(history, "operation", None)
        input_name = getattr(operation, "name", None) or "input"
    return convert.sanitize_name(input_name), shape, raw, model_dtype, layout


def _check_data(data, what, shape, dtype):
    """Validates inputs as the device feeds them; returns an array of `dtype`."""
    try:
        array = np.asarray(data)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        array = None
    if array is None or array.dtype.kind not in "biuf":
        kind = "" if array is None else f" of dtype {array.dtype}"
        raise ExportError(
            f"Expected {what} as a numeric array. Received: "
            f"{type(data).__name__}{kind}."
        )
    sizes = ["N"] + ["?" if size is None else str(size) for size in shape[1:]]
    expected = "(" + ", ".join(sizes) + ")"
    fits = array.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape[1:], array.shape[1:])
    )
    if not fits or len(array) == 0:
        raise ExportError(
            f"Expected {what} of shape {expected} with at least one item. "
            f"Received shape {array.shape}."
        )
    target = np.dtype(dtype)
    if target.kind in "iu":
        info = np.iinfo(target)
        values = array.astype(np.float64, copy=False)
        if (
            not np.all(np.isfinite(values))
            or np.any(values != np.round(values))
            or values.min() < info.min
            or values.max() > info.max
        ):
            raise ExportError(
                f"Expected {what} as raw {target.name} values (integers in "
                f"[{info.min}, {info.max}]), as the device feeds them. Received "
                f"values in [{values.min():.4g}, {values.max():.4g}] of dtype "
                f"{array.dtype}."
            )
    elif not np.all(np.isfinite(array)):
        raise ExportError(
            f"Expected {what} to hold finite values. Received NaN or inf."
        )
    return np.ascontiguousarray(array.astype(target, copy=False))


def _generated(shape, dtype, scaled):
    if any(size is None for size in shape[1:]):
        raise ExportError(
            f"Expected verify_data for an input with dynamic dimensions {shape}: "
            "no batch of the right size can be generated."
        )
    rng = np.random.default_rng(GENERATED_SEED)
    size = (GENERATED_COUNT, *shape[1:])
    if np.dtype(dtype).kind in "iu" or scaled:
        values = rng.integers(0, 256, size=size)
    else:
        values = rng.standard_normal(size=size)
    return values.astype(dtype)


# Export: prepare, convert, lower the precision, verify and write, report. --


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything `to_onnx` checked before any conversion ran."""

    learner: object
    path: str
    precision: str
    opset: int
    scale: float
    offset: float
    min_top_overlap: float
    tolerance: float
    head_in_fp32: bool
    input_name: str
    shape: tuple
    raw_dtype: str
    model_dtype: str
    layout: str
    calibration_data: object
    x: np.ndarray
    source: str
    contract: object

    @property
    def outputs(self):
        """Graph output names: the task outputs, then the predicted loss."""
        return [*self.contract.task_outputs, self.contract.predicted_loss_output]


def to_onnx(
    learner,
    path,
    *,
    opset=None,
    precision="fp32",
    calibration_data=None,
    verify_data=None,
    class_names=None,
    raw_input_dtype=None,
    input_scale=1.0,
    input_offset=0.0,
    input_name=None,
    from_logits=None,
    resize=None,
    min_top_overlap=DEFAULT_MIN_TOP_OVERLAP,
    tolerance=DEFAULT_TOLERANCE,
    head_in_fp32=quantize.HEAD_IN_FP32,
):
    """Exports a trained learner's scoring graph to one verified ONNX file.

    The graph takes one input with a dynamic batch axis and returns the task
    output(s) under the wrapped model's output names plus `predicted_loss`
    (float32, shape (batch,)). Its metadata carries the
    `kerasll_serving.contract.ModelContract` a device needs.

    Verification runs onnxruntime (CPU) on `verify_data` and compares with
    `learner.scoring_model().predict`. The fp32 graph must match Keras within
    `tolerance * max(1, max|Keras output|)` on every output (fp16/int8 exports
    check this on their fp32 graph first). An fp16/int8 graph must keep at
    least `min_top_overlap` of the fp32 graph's top-10% `predicted_loss` picks.
    The file is written to a temporary file next to `path`, checked, verified,
    then renamed into place: on any error nothing is written.

    Args:
        learner: a trained `kerasll.LossLearner`.
        path: the .onnx file to write (its directory must exist).
        opset: ONNX opset (default 17; 13 to the highest tf2onnx supports).
        precision: "fp32", "fp16" (weights and compute in float16, input and
            outputs still float32) or "int8" (static QDQ quantization with
            per-channel weights and calibrated activations; the loss head's
            dense layers stay fp32 unless `head_in_fp32=False`, see
            `kerasll.export.quantize`).
        calibration_data: inputs as the device feeds them (raw dtype), used to
            calibrate int8 activation ranges; required for "int8". A few
            hundred representative pool items are enough.
        verify_data: inputs as the device feeds them, for verification.
            Default: `calibration_data` when given, else 256 seeded random
            inputs (uint8 pixels, or standard normal floats); pass real data
            for meaningful fp16/int8 agreement numbers.
        class_names: labels of a classifier's units or a detector's object
            classes (background excluded), stored in the metadata.
        raw_input_dtype: dtype the graph takes. None: the model's input dtype.
            "uint8" (float NHWC image models only): the device feeds raw
            pixels and the graph casts them (then applies scale/offset).
        input_scale, input_offset: in-graph `x * scale + offset` after the cast,
            for models trained on scaled inputs (e.g. 1/255); the device still
            feeds raw values. Default identity.
        input_name: ONNX input name (default: the model's input layer name).
        from_logits: whether a classifier's output is logits; None guesses it
            from the final activation (linear: logits, softmax/sigmoid: not).
        resize: None (device images must already have the input size), True
            (the device resizes images to the input size), or (height, width).
        min_top_overlap: minimal top-10% overlap for fp16/int8, in [0, 1].
        tolerance: relative fp32 parity bound.
        head_in_fp32: int8 only; keep the loss head's dense layers in fp32.

    Returns:
        An `ExportReport`.

    Raises:
        LearnerTypeError: `learner` is not a built `LossLearner`.
        ExportError: bad arguments or data (unknown precision, unwritable
            path, data of the wrong shape, int8 without calibration data...),
            a Keras backend other than TensorFlow, or a graph that cannot be
            converted.
        VerificationError: the exported graph disagrees (see above).
    """
    plan = _prepare(
        learner,
        path,
        opset=opset,
        precision=precision,
        calibration_data=calibration_data,
        verify_data=verify_data,
        class_names=class_names,
        raw_input_dtype=raw_input_dtype,
        input_scale=input_scale,
        input_offset=input_offset,
        input_name=input_name,
        from_logits=from_logits,
        resize=resize,
        min_top_overlap=min_top_overlap,
        tolerance=tolerance,
        head_in_fp32=head_in_fp32,
    )
    reference, fp32_model, fp32_outputs = _convert(plan)
    model, fp32_nodes = _lower_precision(plan, fp32_model)
    _attach_metadata(model, plan.contract.to_metadata())
    _check_model(model, plan.precision)
    numbers = _write_verified(
        model, plan.path, lambda path: _verify(plan, path, reference, fp32_outputs)
    )
    return _report(plan, reference, fp32_outputs, fp32_nodes, numbers)


def _prepare(learner, path, **options):
    """Checks every argument and picks the verification data: a `_Plan`."""
    _check_backend()
    _check_learner(learner)
    checked = {
        "precision": _check_precision(options["precision"]),
        "opset": convert.check_opset(options["opset"]),
        "path": _check_path(path),
        "scale": _check_number("input_scale", options["input_scale"]),
        "offset": _check_number("input_offset", options["input_offset"]),
        "min_top_overlap": _check_number(
            "min_top_overlap", options["min_top_overlap"], 0.0, 1.0
        ),
        "tolerance": _check_number(
            "tolerance", options["tolerance"], 0.0, low_open=True
        ),
        "head_in_fp32": bool(options["head_in_fp32"]),
    }
    name, shape, raw_dtype, model_dtype, layout = _input_spec(
        learner, options["raw_input_dtype"], options["input_name"]
    )
    calibration_data = options["calibration_data"]
    if checked["precision"] == "int8" and calibration_data is None:
        raise ExportError(
            "Expected calibration_data for precision='int8': static quantization "
            "calibrates activation ranges on representative inputs. Received none."
        )
    if calibration_data is not None:
        calibration_data = _check_data(
            calibration_data, "calibration_data", shape, raw_dtype
        )
    if options["verify_data"] is not None:
        x = _check_data(options["verify_data"], "verify_data", shape, raw_dtype)
        source = "verify_data"
    elif calibration_data is not None:
        x, source = calibration_data, "calibration_data"
    else:
        x = _generated(shape, raw_dtype, checked["scale"] != 1.0)
        source = "generated"
    contract = metadata.build_contract(
        learner,
        input_name=name,
        input_shape=shape,
        input_dtype=raw_dtype,
        precision=checked["precision"],
        class_names=options["class_names"],
        from_logits=options["from_logits"],
        resize=options["resize"],
    )
    return _Plan(
        learner=learner,
        input_name=name,
        shape=shape,
        raw_dtype=raw_dtype,
        model_dtype=model_dtype,
        layout=layout,
        calibration_data=calibration_data,
        x=x,
        source=source,
        contract=contract,
        **checked,
    )


def _convert(plan):
    """Keras' outputs, the fp32 graph, and its outputs (within tolerance)."""
    reference = _keras_outputs(
        plan.learner, plan.x, plan.model_dtype, plan.scale, plan.offset
    )
    fp32_model = convert.to_onnx_proto(
        plan.learner,
        input_name=plan.input_name,
        input_shape=plan.shape,
        raw_dtype=plan.raw_dtype,
        model_dtype=plan.model_dtype,
        scale=plan.scale,
        offset=plan.offset,
        opset=plan.opset,
    )
    _check_model(fp32_model, "fp32")
    fp32_outputs = verify.run_onnx(
        fp32_model.SerializeToString(), plan.input_name, plan.x, plan.outputs
    )
    _check_parity(reference, fp32_outputs, plan.tolerance, "fp32 graph")
    return reference, fp32_model, fp32_outputs


def _lower_precision(plan, fp32_model):
    """The graph at `plan.precision`, and the nodes int8 keeps in fp32."""
    if plan.precision == "fp16":
        return quantize.to_fp16(fp32_model), ()
    if plan.precision == "int8":
        model, excluded = quantize.to_int8(
            fp32_model,
            input_name=plan.input_name,
            calibration_data=plan.calibration_data,
            predicted_loss=plan.contract.predicted_loss_output,
            task_outputs=list(plan.contract.task_outputs),
            head_in_fp32=plan.head_in_fp32,
        )
        return model, tuple(excluded)
    return fp32_model, ()


def _verify(plan, candidate_path, reference, fp32_outputs):
    """Agreement numbers of the written graph; raises when they fall short."""
    final = verify.run_onnx(candidate_path, plan.input_name, plan.x, plan.outputs)
    if plan.precision == "fp32":
        _check_parity(reference, final, plan.tolerance, "written graph")
        baseline = reference
    else:
        baseline = fp32_outputs
    loss = plan.contract.predicted_loss_output
    agreement = {
        key: verify.argmax_agreement(reference[key], final[key])
        for key in plan.contract.task_outputs
    }
    numbers = {
        "max_abs_diff": verify.max_abs_diffs(reference, final),
        "spearman": verify.spearman(baseline[loss], final[loss]),
        "top_overlap": verify.top_overlap(baseline[loss], final[loss]),
        "argmax_agreement": {
            key: value for key, value in agreement.items() if value is not None
        },
    }
    if plan.precision != "fp32" and not numbers["top_overlap"] >= plan.min_top_overlap:
        raise VerificationError(
            f"Expected the {plan.precision} graph to keep at least "
            f"{plan.min_top_overlap:.2f} of the fp32 top-10% predicted-loss picks on "
            f"{len(plan.x)} items ({plan.source}). Received overlap "
            f"{numbers['top_overlap']:.3f} (Spearman {numbers['spearman']:.4f}); "
            "nothing written. Use more representative calibration data, a "
            "higher precision, or lower min_top_overlap."
        )
    return numbers


def _report(plan, reference, fp32_outputs, fp32_nodes, numbers):
    return ExportReport(
        path=plan.path,
        precision=plan.precision,
        opset=plan.opset,
        file_size=os.path.getsize(plan.path),
        input_name=plan.input_name,
        input_shape=plan.contract.input.shape,
        input_dtype=plan.raw_dtype,
        layout=plan.layout,
        outputs=tuple(plan.outputs),
        verify_count=len(plan.x),
        verify_source=plan.source,
        allowed_diff={
            key: plan.tolerance * verify.output_scale(value)
            for key, value in reference.items()
        },
        fp32_max_abs_diff=verify.max_abs_diffs(reference, fp32_outputs),
        top_fraction=verify.TOP_FRACTION,
        min_top_overlap=plan.min_top_overlap,
        fp32_nodes=fp32_nodes,
        **numbers,
    )


def _keras_outputs(learner, x, model_dtype, scale, offset):
    """What Keras gives for the raw batch `x`, preprocessed as the graph does."""
    x = x.astype(model_dtype)
    if scale != 1.0:
        x = x * np.asarray(scale, dtype=model_dtype)
    if offset != 0.0:
        x = x + np.asarray(offset, dtype=model_dtype)
    predictions = learner.scoring_model().predict(
        x, batch_size=min(len(x), _PREDICT_BATCH), verbose=0
    )
    return {key: np.asarray(value) for key, value in predictions.items()}


def _check_parity(reference, candidate, tolerance, what):
    failures = verify.parity_failures(reference, candidate, tolerance)
    if failures:
        details = "; ".join(
            f"{key}: max |diff| {diff:.3g} > allowed {allowed:.3g}"
            for key, (diff, allowed) in failures.items()
        )
        raise VerificationError(
            f"Expected the {what} to match Keras within {tolerance:g} relative "
            f"to each output's scale. Received {details}; nothing written."
        )


def _check_model(model, what):
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise ExportError(
            f"Expected a valid ONNX model from the {what} conversion. "
            f"onnx.checker failed: {first_line(error)}"
        ) from error


def _attach_metadata(model, props):
    keep = [entry for entry in model.metadata_props if entry.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _write_verified(model, path, check):
    """Writes `model` next to `path`, runs `check` on it, then renames it in."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(model.SerializeToString())
        return check(os.fspath(temporary))
