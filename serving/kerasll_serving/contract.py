"""The metadata contract between `kerasll.export` and the pool scorer.

An exported scoring model carries these keys in its ONNX `metadata_props`.
The serving distribution owns the contract; the exporter imports it, never the
other way round, so a device can read a model without TensorFlow installed.
Every value is a string; structured values are JSON. Optional keys (absent
in models exported before them) are read as None.
"""

import dataclasses
import json
import math

from kerasll_serving.errors import ServingError

FORMAT_VERSION = 1
PREFIX = "kerasll."
PREDICTED_LOSS_OUTPUT = "predicted_loss"
PRECISIONS = ("fp32", "fp16", "int8")
# kerasll's export defaults (`kerasll.export.to_onnx`), here beside PRECISIONS so
# that `kerasll export --help` reads them without importing TensorFlow.
DEFAULT_PRECISION = "fp32"
DEFAULT_OPSET = 17
DEFAULT_INPUT_SCALE = 1.0
DEFAULT_INPUT_OFFSET = 0.0
DEFAULT_MIN_TOP_OVERLAP = 0.9
DEFAULT_MIN_KENDALL_TAU = 0.9
TASK_TYPES = ("classification", "regression", "detection", "keypoints", "other")
# A detector's task outputs: (B, N, 4) normalized corner boxes (xmin, ymin,
# xmax, ymax) and (B, N, K) class probabilities, background first.
BOXES_OUTPUT = "boxes"
SCORES_OUTPUT = "scores"
# A pose network's task outputs: (B, J, 2) (x, y) input pixel coordinates
# (integers at pixel centers) and (B, J) heatmap peaks.
KEYPOINTS_OUTPUT = "keypoints"
CONFIDENCES_OUTPUT = "confidences"
# The task outputs a task type must name; others read their first output.
REQUIRED_OUTPUTS = {
    "detection": (BOXES_OUTPUT, SCORES_OUTPUT),
    "keypoints": (KEYPOINTS_OUTPUT, CONFIDENCES_OUTPUT),
}
# Optional: the predicted-loss distribution at export time (`LossQuantiles`).
QUANTILES_KEY = "predicted_loss_quantiles"


class ContractError(ServingError):
    """The model's metadata is missing, malformed or of an unknown version."""


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the graph's single input expects.

    Attributes:
        name: the ONNX input name.
        shape: per-axis sizes, `None` for the dynamic batch axis.
        dtype: numpy dtype name of the input ("uint8" or "float32").
        layout: "NHWC" for images, "NC" for feature vectors, or "other".
    """

    name: str
    shape: tuple
    dtype: str
    layout: str


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a device must do to raw data before feeding the graph.

    Attributes:
        in_graph: True when scaling/normalisation is inside the graph, so the
            device feeds raw values (e.g. uint8 pixels) as they were captured.
        scale: multiply raw values by this before feeding (1.0 when in graph).
        offset: then add this (0.0 when in graph).
        resize: `[height, width]` the device resizes images to, or None when
            inputs must already have the graph's spatial size.
        color_mode: "rgb" or "grayscale" for image inputs, None otherwise.
    """

    in_graph: bool = True
    scale: float = 1.0
    offset: float = 0.0
    resize: tuple = None
    color_mode: str = None


@dataclasses.dataclass(frozen=True)
class LossQuantiles:
    """What the predicted loss looked like at export time: its quantiles on
    the calibration or verification data, so that a device can tell what a
    "top 1%" score is (metadata key `kerasll.predicted_loss_quantiles`,
    JSON `{"levels": [...], "values": [...], "count": N}`).

    Attributes:
        levels: quantile levels, strictly increasing in [0, 1] (at least two).
        values: the predicted loss at each level, finite and non-decreasing.
        count: how many items they were computed on (0 when unknown).

    Raises:
        ContractError: levels or values break the rules above.
    """

    levels: tuple
    values: tuple
    count: int = 0

    def __post_init__(self):
        levels, values = tuple(self.levels), tuple(self.values)
        try:
            good = (
                len(levels) == len(values) >= 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                        and math.isfinite(x) for x in levels + values)
                and 0 <= levels[0] and levels[-1] <= 1
                and all(a < b for a, b in zip(levels, levels[1:]))
                and all(a <= b for a, b in zip(values, values[1:]))
            )
        except TypeError:
            good = False
        if not good or not isinstance(self.count, int) or self.count < 0:
            raise ContractError(
                "Expected predicted-loss quantiles with at least two strictly "
                "increasing levels in [0, 1], as many finite non-decreasing values "
                f"and a count >= 0. Received: levels={self.levels!r}, "
                f"values={self.values!r}, count={self.count!r}"
            )
        object.__setattr__(self, "levels", tuple(float(x) for x in levels))
        object.__setattr__(self, "values", tuple(float(x) for x in values))

    def value_at(self, level):
        """The predicted loss at a quantile level (linear between levels,
        clamped to the first and last value).

        Args:
            level: a level in [0, 1].

        Returns:
            A float.
        """
        return _interpolate(level, self.levels, self.values)

    def percentile(self, value):
        """Where a predicted loss falls in the export-time distribution.

        Args:
            value: a predicted loss.

        Returns:
            A percentile in [0, 100] (linear between the stored quantiles,
            0 or 100 beyond them; a value tied over a range of levels gets
            the range's top), or NaN for a NaN value.
        """
        if math.isnan(value):
            return math.nan
        return 100.0 * _interpolate(value, self.values, self.levels)


def _interpolate(x, xs, ys):
    """Piecewise-linear y(x) through (xs, ys), xs non-decreasing, clamped."""
    if x < xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x < x1:  # Ties (x0 == x1) are passed over: the top one wins.
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


@dataclasses.dataclass(frozen=True)
class ModelContract:
    """Everything the scorer needs to know about an exported model.

    Attributes:
        input: the `InputSpec` of the graph input.
        task_outputs: names of the task output(s), in model order (for
            detection, `BOXES_OUTPUT` and `SCORES_OUTPUT`; for keypoints,
            `KEYPOINTS_OUTPUT` and `CONFIDENCES_OUTPUT`).
        predicted_loss_output: name of the 1-D predicted-loss output.
        preprocessing: the `Preprocessing` a device applies before feeding.
        task_type: one of `TASK_TYPES`; older metadata without it reads as
            "other".
        class_names: class labels of a classifier, or of a detector's object
            classes (background excluded), or None.
        from_logits: whether a classifier's output is logits (not probabilities).
        taps: names of the tapped layers feeding the loss head.
        training: training settings that matter for reading the scores
            (objective, margin, weight, head_units, detach_epoch).
        precision: one of `PRECISIONS`.
        kerasll_version: version of kerasll that exported the model.
        format_version: version of this contract.
        predicted_loss_quantiles: the export-time `LossQuantiles`, or None
            (optional key; stream selection then warms up on the stream).
    """

    input: InputSpec
    task_outputs: tuple
    predicted_loss_output: str = PREDICTED_LOSS_OUTPUT
    preprocessing: Preprocessing = Preprocessing()
    task_type: str = "other"
    class_names: tuple = None
    from_logits: bool = False
    taps: tuple = ()
    training: dict = dataclasses.field(default_factory=dict)
    precision: str = "fp32"
    kerasll_version: str = ""
    format_version: int = FORMAT_VERSION
    predicted_loss_quantiles: LossQuantiles = None

    def to_metadata(self):
        """Returns the contract as ONNX `metadata_props` (str -> str).

        Raises:
            ContractError: an unknown precision or task type, or a task type
                without the task outputs it needs.
        """
        if self.precision not in PRECISIONS:
            raise ContractError(
                f"Expected precision in {list(PRECISIONS)}. "
                f"Received: precision={self.precision!r}"
            )
        self._check_task()
        fields = {
            "format_version": self.format_version,
            "kerasll_version": self.kerasll_version,
            "input": dataclasses.asdict(self.input),
            "preprocessing": dataclasses.asdict(self.preprocessing),
            "task_outputs": list(self.task_outputs),
            "predicted_loss_output": self.predicted_loss_output,
            "task_type": self.task_type,
            "class_names": (
                None if self.class_names is None else list(self.class_names)
            ),
            "from_logits": self.from_logits,
            "taps": list(self.taps),
            "training": self.training,
            "precision": self.precision,
        }
        if self.predicted_loss_quantiles is not None:
            fields[QUANTILES_KEY] = dataclasses.asdict(self.predicted_loss_quantiles)
        return {PREFIX + key: json.dumps(value) for key, value in fields.items()}

    @property
    def read_outputs(self):
        """The task outputs a scorer reads, in this order.

        Returns:
            A tuple: the task type's `REQUIRED_OUTPUTS`, else the first task
            output; empty for "other".
        """
        if self.task_type == "other" or not self.task_outputs:
            return ()
        return REQUIRED_OUTPUTS.get(self.task_type, self.task_outputs[:1])

    def _check_task(self):
        """Refuses an unknown task type, or one missing its required outputs."""
        if self.task_type not in TASK_TYPES:
            raise ContractError(
                f"Expected task_type in {list(TASK_TYPES)}. "
                f"Received: task_type={self.task_type!r}; a newer kerasll may "
                "have exported it: upgrade kerasll-serving."
            )
        missing = [name for name in REQUIRED_OUTPUTS.get(self.task_type, ())
                   if name not in self.task_outputs]
        if missing:
            raise ContractError(
                f"Expected a {self.task_type} model to name task outputs "
                f"{list(REQUIRED_OUTPUTS[self.task_type])}. Received: "
                f"task_outputs={list(self.task_outputs)}."
            )

    @classmethod
    def from_metadata(cls, metadata):
        """Reads a contract from ONNX metadata.

        Args:
            metadata: mapping of str -> str, e.g.
                `onnxruntime.InferenceSession.get_modelmeta().custom_metadata_map`.

        Returns:
            The `ModelContract`.

        Raises:
            ContractError: keys are missing or malformed, the format version
                or task type is newer than this scorer understands, or the
                task type's outputs are not named.
        """
        ours = {
            key[len(PREFIX):]: value
            for key, value in metadata.items()
            if key.startswith(PREFIX)
        }
        if not ours:
            raise ContractError(
                "Expected an ONNX model exported by kerasll (metadata keys "
                f"starting with {PREFIX!r}). Received a model with metadata "
                f"keys {sorted(metadata)}. Export it with `kerasll export`."
            )
        try:
            values = {key: json.loads(value) for key, value in ours.items()}
            version = int(values["format_version"])
            if version > FORMAT_VERSION:
                raise ContractError(
                    f"Expected metadata format version <= {FORMAT_VERSION}. "
                    f"Received: {version}. Upgrade kerasll-serving."
                )
            input_spec = values["input"]
            preprocessing = values.get("preprocessing") or {}
            contract = cls(
                input=InputSpec(
                    name=input_spec["name"],
                    shape=tuple(input_spec["shape"]),
                    dtype=input_spec["dtype"],
                    layout=input_spec["layout"],
                ),
                task_outputs=tuple(values["task_outputs"]),
                predicted_loss_output=values["predicted_loss_output"],
                preprocessing=Preprocessing(
                    in_graph=bool(preprocessing.get("in_graph", True)),
                    scale=float(preprocessing.get("scale", 1.0)),
                    offset=float(preprocessing.get("offset", 0.0)),
                    resize=(
                        tuple(preprocessing["resize"])
                        if preprocessing.get("resize")
                        else None
                    ),
                    color_mode=preprocessing.get("color_mode"),
                ),
                task_type=values.get("task_type", "other"),
                class_names=(
                    tuple(values["class_names"])
                    if values.get("class_names") is not None
                    else None
                ),
                from_logits=bool(values.get("from_logits", False)),
                taps=tuple(values.get("taps", ())),
                training=dict(values.get("training") or {}),
                precision=values.get("precision", "fp32"),
                kerasll_version=str(values.get("kerasll_version", "")),
                format_version=version,
                predicted_loss_quantiles=_quantiles(values.get(QUANTILES_KEY)),
            )
        except ContractError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise ContractError(
                f"Malformed kerasll metadata ({type(error).__name__}: {error}). "
                f"Received keys: {sorted(ours)}"
            ) from error
        contract._check_task()
        return contract


def _quantiles(value):
    """The optional quantiles key as `LossQuantiles` (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ContractError(
            f"Expected {PREFIX}{QUANTILES_KEY} to be a JSON object with levels, "
            f"values and count. Received: {value!r}"
        )
    return LossQuantiles(levels=tuple(value.get("levels") or ()),
                         values=tuple(value.get("values") or ()),
                         count=value.get("count", 0))
