"""Everything `to_onnx` checks before any conversion runs, gathered in a `Plan`.

Plain arguments, and the types of the sequence ones, are declared once in
`parameter_constraints` and checked by `kerasll_serving.validation`; what
depends on the model or on the items of a sequence is checked here (the
learner, the output path, the data, the int8 settings' items) and in
`metadata` (the class names' count, the resize against the input size).
"""

import dataclasses
import os
from numbers import Integral, Real

import numpy as np
from kerasll_serving.contract import (  # The contract owns the list and defaults.
    DEFAULT_MIN_KENDALL_TAU,
    DEFAULT_MIN_TOP_OVERLAP,
    PRECISIONS,
)
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

from kerasll.export import convert, keras_internals, metadata, quantize
from kerasll.export.errors import ExportError, LearnerTypeError

DEFAULT_TOLERANCE = 1e-4
GENERATED_COUNT = 256
GENERATED_SEED = 0


def parameter_constraints():
    """`to_onnx`'s plain arguments and what each accepts.

    Returns:
        Parameter name -> constraints (see `kerasll_serving.validation`);
        opset's upper bound is the highest the installed tf2onnx targets.
    """
    finite = [Interval(Real, None, None, closed="neither")]
    return {
        "path": [str, os.PathLike],
        "opset": [
            Interval(Integral, convert.MIN_OPSET, convert.max_opset(), closed="both"),
            None,
        ],
        "precision": [StrOptions(PRECISIONS)],
        "input_scale": finite,
        "input_offset": finite,
        "input_name": [str, None],
        "class_names": [list, tuple, None],
        "from_logits": ["boolean", None],
        "resize": ["boolean", list, tuple, None],
        "min_top_overlap": [Interval(Real, 0, 1, closed="both")],
        "min_kendall_tau": [Interval(Real, -1, 1, closed="both")],
        "tolerance": [Interval(Real, 0, None, closed="neither")],
        "int8_settings": [tuple, list, None],
    }


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything `to_onnx` checked before any conversion ran."""

    learner: object
    path: str
    precision: str
    opset: int
    scale: float
    offset: float
    min_top_overlap: float
    min_kendall_tau: float
    tolerance: float
    int8_settings: tuple
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


def prepare(learner, path, **options):
    """Checks every argument of `to_onnx` and picks the verification data.

    Args:
        learner: the learner to export.
        path: the output path.
        **options: `to_onnx`'s keyword arguments.

    Returns:
        A `Plan`.

    Raises:
        LearnerTypeError: `learner` is not a built `LossLearner`.
        ExportError: any other bad argument or data, or a backend other than
            TensorFlow.
    """
    check_backend()
    check_learner(learner)
    checked = validate_arguments(
        parameter_constraints(),
        {"path": path, **options},
        ExportError,
    )
    path = check_path(checked["path"])
    name, shape, raw_dtype, model_dtype, layout = input_spec(
        learner, checked["raw_input_dtype"], checked["input_name"]
    )
    calibration_data = checked["calibration_data"]
    if checked["precision"] == "int8" and calibration_data is None:
        raise ExportError(
            "Expected calibration_data for precision='int8': static quantization "
            "calibrates activation ranges on representative inputs. Received none."
        )
    if calibration_data is not None:
        calibration_data = check_data(
            calibration_data, "calibration_data", shape, raw_dtype
        )
    if checked["verify_data"] is not None:
        x = check_data(checked["verify_data"], "verify_data", shape, raw_dtype)
        source = "verify_data"
    elif calibration_data is not None:
        x, source = calibration_data, "calibration_data"
    else:
        x = generated_data(shape, raw_dtype, checked["input_scale"] != 1.0)
        source = "generated"
    contract = metadata.build_contract(
        learner,
        input_name=name,
        input_shape=shape,
        input_dtype=raw_dtype,
        precision=checked["precision"],
        class_names=checked["class_names"],
        from_logits=checked["from_logits"],
        resize=checked["resize"],
    )
    opset = checked["opset"]
    return Plan(
        learner=learner,
        path=path,
        precision=checked["precision"],
        opset=convert.DEFAULT_OPSET if opset is None else opset,
        scale=checked["input_scale"],
        offset=checked["input_offset"],
        min_top_overlap=checked["min_top_overlap"],
        min_kendall_tau=checked["min_kendall_tau"],
        tolerance=checked["tolerance"],
        int8_settings=check_int8_settings(checked["int8_settings"]),
        input_name=name,
        shape=shape,
        raw_dtype=raw_dtype,
        model_dtype=model_dtype,
        layout=layout,
        calibration_data=calibration_data,
        x=x,
        source=source,
        contract=contract,
    )


def check_int8_settings(settings):
    """The int8 candidates as a tuple (`quantize.INT8_SETTINGS` for None).

    Raises:
        ExportError: an empty sequence, or an item that is not an
            `Int8Setting`.
    """
    if settings is None:
        return quantize.INT8_SETTINGS
    settings = tuple(settings)
    wrong = [item for item in settings if not isinstance(item, quantize.Int8Setting)]
    if not settings or wrong:
        raise ExportError(
            "Expected int8_settings to be a non-empty sequence of "
            "kerasll.export.Int8Setting, or None. Received: "
            f"{[type(item).__name__ for item in settings]}"
        )
    return settings


def check_backend():
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


def check_learner(learner):
    """Raises unless `learner` is a built single-input `LossLearner`.

    Raises:
        LearnerTypeError: not a built `LossLearner`.
        ExportError: a model with several inputs.
    """
    from kerasll.learner import LossLearner

    if not isinstance(learner, LossLearner):
        kind = f"{type(learner).__module__}.{type(learner).__qualname__}"
        hint = (
            " Wrap the model first: kerasll.LossLearner(model), then train it."
            if _is_keras_model(learner)
            else ""
        )
        raise LearnerTypeError(
            f"Expected learner to be a built kerasll.LossLearner. Received: "
            f"{kind}.{hint}"
        )
    if not getattr(learner, "built", False) or not learner.backbone.inputs:
        raise LearnerTypeError(
            f"Expected learner to be a built kerasll.LossLearner. Received an unbuilt "
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


def check_path(path):
    """The absolute output path, once its directory is known to take it.

    Args:
        path: a str or `os.PathLike` (see `parameter_constraints`).

    Returns:
        The absolute path.

    Raises:
        ExportError: a directory, a missing or unwritable directory, or a
            file that exists and cannot be replaced.
    """
    path = os.path.abspath(os.fspath(path))
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


def input_spec(learner, raw_input_dtype, input_name):
    """The graph input: (name, shape, raw dtype, model dtype, layout).

    Raises:
        ExportError: a `raw_input_dtype` the model cannot take.
    """
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
        operation = keras_internals.producing_operation(tensor)
        input_name = getattr(operation, "name", None) or "input"
    return convert.sanitize_name(input_name), shape, raw, model_dtype, layout


def check_data(data, what, shape, dtype):
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


def generated_data(shape, dtype, scaled):
    """`GENERATED_COUNT` seeded inputs: pixels in [0, 255], or normal floats.

    Raises:
        ExportError: an input with dynamic dimensions (no size to generate).
    """
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
