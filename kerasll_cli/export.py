"""`kerasll export`: a saved LossLearner (.keras) -> a verified ONNX file.

A thin layer over `kerasll.export.to_onnx`: click checks the option types,
`to_onnx` their values (its message, one line, exit code 1); the thresholds
are checked by `to_onnx`'s own constraints before any data or model loads.
The defaults are the library's (`kerasll_serving.contract`, beside
`PRECISIONS`).
"""

import pathlib

import click
from kerasll_serving.contract import (
    DEFAULT_INPUT_OFFSET,
    DEFAULT_INPUT_SCALE,
    DEFAULT_MIN_KENDALL_TAU,
    DEFAULT_MIN_TOP_OVERLAP,
    DEFAULT_OPSET,
    DEFAULT_PRECISION,
    PRECISIONS,
)
from kerasll_serving.errors import first_line
from kerasll_serving.output import same_file

from kerasll_cli.notices import start_tensorflow


def load_array(path, what):
    """Reads an array from a .npy file or a .npz file.

    A .npz file must hold a single array, or one named "x".

    Raises:
        click.ClickException: unreadable file or unknown layout.
    """
    import numpy as np

    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise click.ClickException(
            f"Expected {what} as a .npy or .npz file. Received: {path}"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise click.ClickException(
            f"Could not read {what} {path}: {first_line(error)}"
        ) from error
    if suffix == ".npy":
        return loaded
    with loaded:
        names = list(loaded.files)
        if len(names) == 1:
            return loaded[names[0]]
        if "x" in names:
            return loaded["x"]
    raise click.ClickException(
        f"Expected {what} {path} to hold one array or an array named 'x'. "
        f"Received arrays {names}."
    )


def _class_names(value):
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise click.BadParameter(
            f"expected comma-separated non-empty names, received {value!r}"
        )
    return names


def check_output_is_not_an_input(out, inputs):
    """Refuses an output path that resolves to one of the input files.

    Args:
        out: the --out path.
        inputs: dict of option name to input path (or None when not given).

    Raises:
        click.ClickException: `out` is one of the inputs.
    """
    for option, path in inputs.items():
        if path is not None and same_file(out, path):
            raise click.ClickException(
                f"Expected --out to be a different file from every input. "
                f"Received --out {out}, which is the {option} file {path}; "
                "writing it would destroy that input."
            )


def _load_learner(path):
    import keras

    import kerasll.learner  # noqa: F401 - registers LossLearner for loading

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for bad files.
        raise click.ClickException(
            f"Could not load {path} as a Keras model: {type(error).__name__}: "
            f"{first_line(error)}"
        ) from error


def _check_thresholds(min_top_overlap, min_kendall_tau):
    """Refuses a bad threshold by `to_onnx`'s own rule, before any data loads.

    Raises:
        click.ClickException: a value outside `checks.parameter_constraints`,
            with its message (one line).
    """
    from kerasll_serving.validation import validate_arguments

    from kerasll.export import checks
    from kerasll.export.errors import ExportError

    thresholds = {
        "min_top_overlap": min_top_overlap,
        "min_kendall_tau": min_kendall_tau,
    }
    constraints = checks.parameter_constraints()
    try:
        validate_arguments(
            {name: constraints[name] for name in thresholds}, thresholds, ExportError
        )
    except ExportError as error:
        raise click.ClickException(first_line(error)) from error


@click.command(name="export")
@click.argument(
    "model",
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="The .onnx file to write (written only once verified).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=DEFAULT_PRECISION,
    show_default=True,
    help="fp16 and int8 must keep --min-top-overlap of fp32's top-10% picks and "
    "a Kendall tau of --min-kendall-tau with its predicted losses; int8 tries "
    "its quantization settings in order and keeps the first that does.",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="Representative raw inputs (.npy/.npz) to calibrate int8 (required for int8).",
)
@click.option(
    "--verify",
    "verify_path",
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="Raw inputs (.npy/.npz) to verify on. Default: the calibration data, "
    "else seeded random inputs.",
)
@click.option("--opset", type=int, default=None,
              help=f"ONNX opset (default {DEFAULT_OPSET}).")
@click.option(
    "--class-names",
    callback=lambda ctx, param, value: _class_names(value),
    help="Comma-separated class labels of a classifier (or a detector's object "
    "classes, no background), e.g. cat,dog,bird.",
)
@click.option(
    "--input-dtype",
    type=click.Choice(["uint8", "float32"]),
    default=None,
    help="dtype the graph takes. uint8: the device feeds raw pixels of an image "
    "model trained on 0-255 floats (cast in the graph). Default: the model's.",
)
@click.option(
    "--input-scale",
    type=float,
    default=DEFAULT_INPUT_SCALE,
    show_default=True,
    help="In-graph x * scale after the cast (e.g. 0.00392156862745098 for 1/255).",
)
@click.option(
    "--input-offset",
    type=float,
    default=DEFAULT_INPUT_OFFSET,
    show_default=True,
    help="In-graph offset added after scaling.",
)
@click.option(
    "--resize/--no-resize",
    default=False,
    show_default=True,
    help="Tell devices to resize images to the input size.",
)
@click.option(
    "--min-top-overlap",
    type=float,
    default=DEFAULT_MIN_TOP_OVERLAP,
    show_default=True,
    help="fp16/int8: least share of fp32's top-10% predicted-loss picks to keep.",
)
@click.option(
    "--min-kendall-tau",
    type=float,
    default=DEFAULT_MIN_KENDALL_TAU,
    show_default=True,
    help="fp16/int8: least Kendall tau of predicted losses against fp32's.",
)
def export_command(
    model,
    out,
    precision,
    calibration,
    verify_path,
    opset,
    class_names,
    input_dtype,
    input_scale,
    input_offset,
    resize,
    min_top_overlap,
    min_kendall_tau,
):
    """Export a trained LossLearner (MODEL.keras) to one verified ONNX graph.

    The graph returns the task output(s) and predicted_loss; its metadata tells
    devices how to feed it. Nothing is written unless verification passes.
    """
    start_tensorflow()
    from kerasll.export.errors import ExportError, LearnerTypeError

    _check_thresholds(min_top_overlap, min_kendall_tau)
    check_output_is_not_an_input(
        out, {"MODEL": model, "--calibration": calibration, "--verify": verify_path}
    )
    calibration_data = load_array(calibration, "--calibration") if calibration else None
    verify_data = load_array(verify_path, "--verify") if verify_path else None
    if precision == "int8" and calibration_data is None:
        raise click.ClickException(
            "Expected --calibration for --precision int8: static quantization "
            "calibrates on representative inputs. Received none."
        )
    learner = _load_learner(model)
    from kerasll.export import to_onnx

    try:
        report = to_onnx(
            learner,
            out,
            opset=opset,
            precision=precision,
            calibration_data=calibration_data,
            verify_data=verify_data,
            class_names=class_names,
            raw_input_dtype=input_dtype,
            input_scale=input_scale,
            input_offset=input_offset,
            resize=True if resize else None,
            min_top_overlap=min_top_overlap,
            min_kendall_tau=min_kendall_tau,
        )
    except (ExportError, LearnerTypeError) as error:
        raise click.ClickException(first_line(error)) from error
    for line in report.lines():
        click.echo(line)
