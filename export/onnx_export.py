"""`to_onnx`: a trained `LossLearner` -> one verified ONNX scoring graph.

The steps: check every argument (`kerasll.export.checks`), convert to an
fp32 graph and check its parity with Keras, lower the precision, attach the
contract, write next to the target and verify, rename into place, report
(`kerasll.export.report`).
"""

import contextlib
import dataclasses
import os

import numpy as np
from kerasll_serving.atomic import atomic_path
from kerasll_serving.contract import (
    DEFAULT_INPUT_OFFSET,
    DEFAULT_INPUT_SCALE,
    DEFAULT_PRECISION,
    LossQuantiles,
)
from kerasll_serving.errors import first_line

from kerasll.export import checks, convert, quantize, verify
from kerasll.export.errors import ExportError, RankingError, VerificationError
from kerasll.export.report import build_report

_PREDICT_BATCH = 256


def to_onnx(
    learner,
    path,
    *,
    opset=None,
    precision=DEFAULT_PRECISION,
    calibration_data=None,
    verify_data=None,
    class_names=None,
    raw_input_dtype=None,
    input_scale=DEFAULT_INPUT_SCALE,
    input_offset=DEFAULT_INPUT_OFFSET,
    input_name=None,
    from_logits=None,
    resize=None,
    min_top_overlap=checks.DEFAULT_MIN_TOP_OVERLAP,
    min_kendall_tau=checks.DEFAULT_MIN_KENDALL_TAU,
    tolerance=checks.DEFAULT_TOLERANCE,
    int8_settings=None,
):
    """Exports a trained learner's scoring graph to one verified ONNX file.

    The graph takes one input with a dynamic batch axis and returns the task
    output(s) under the wrapped model's output names plus `predicted_loss`
    (float32, shape (batch,)). Its metadata carries the
    `kerasll_serving.contract.ModelContract` a device needs.

    Verification runs onnxruntime (CPU) on `verify_data` and compares with
    `learner.scoring_model().predict`. The fp32 graph must match Keras within
    `tolerance * max(1, max|Keras output|)` on every output (fp16/int8 exports
    check this on their fp32 graph first). An fp16/int8 graph must keep the
    fp32 graph's `predicted_loss` ranking: at least `min_top_overlap` of its
    top-10% picks, and a Kendall's tau of at least `min_kendall_tau`. int8
    tries `int8_settings` in order and keeps the first that passes; the
    report says which, and what the ones before it scored.
    The file is written to a temporary file next to `path`, checked, verified,
    then renamed into place: on any error nothing is written.

    Args:
        learner: a trained `kerasll.LossLearner`.
        path: the .onnx file to write (its directory must exist).
        opset: ONNX opset (default `kerasll_serving.contract.DEFAULT_OPSET`; 13 to
            the highest tf2onnx supports).
        precision: "fp32", "fp16" (weights and compute in float16, input and
            outputs still float32) or "int8" (static QDQ quantization with
            calibrated activations, see `int8_settings`).
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
        min_kendall_tau: minimal Kendall's tau of fp16/int8 predicted losses
            against fp32's, in [-1, 1].
        tolerance: relative fp32 parity bound.
        int8_settings: int8 only; the `kerasll.export.Int8Setting`s to try,
            in order. Default `kerasll.export.quantize.INT8_SETTINGS` (the
            loss head's dense part in fp32; U8S8 MinMax, U8S8 Percentile,
            7-bit weights, depthwise convolutions in fp32, S8S8 last).

    Returns:
        An `ExportReport`.

    Raises:
        LearnerTypeError: `learner` is not a built `LossLearner`.
        ExportError: bad arguments or data (any argument outside
            `checks.parameter_constraints()`, NaN and infinities included;
            an unwritable path, data of the wrong shape, int8 without
            calibration data...),
            a Keras backend other than TensorFlow, or a graph that cannot be
            converted.
        VerificationError: the exported graph disagrees (see above); a
            `RankingError` (its `trials` hold every figure) when no fp16/int8
            graph kept the ranking.
    """
    plan = checks.prepare(
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
        min_kendall_tau=min_kendall_tau,
        tolerance=tolerance,
        int8_settings=int8_settings,
    )
    reference, fp32_model, fp32_outputs = _convert(plan)
    model, fp32_nodes, trials = _lower_precision(plan, fp32_model, fp32_outputs)
    _attach_metadata(model, _with_quantiles(plan, model).to_metadata())
    _check_model(model, plan.precision)
    numbers = _write_verified(
        model, plan.path, lambda path: _verify(plan, path, reference, fp32_outputs)
    )
    return build_report(plan, reference, fp32_outputs, fp32_nodes, numbers, trials)


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


def _lower_precision(plan, fp32_model, fp32_outputs):
    """The graph at `plan.precision`, the nodes it keeps in fp32, and the trials.

    Returns:
        `(model, fp32_nodes, trials)`: trials are the `RankingTrial`s of the
        int8 settings tried, the kept one last (empty for fp32 and fp16).

    Raises:
        RankingError: no int8 setting kept the ranking.
    """
    if plan.precision == "fp16":
        return quantize.to_fp16(fp32_model), (), ()
    if plan.precision == "fp32":
        return fp32_model, (), ()
    trials = []
    candidates = quantize.int8_candidates(
        fp32_model,
        input_name=plan.input_name,
        calibration_data=plan.calibration_data,
        predicted_loss=plan.contract.predicted_loss_output,
        task_outputs=list(plan.contract.task_outputs),
        settings=plan.int8_settings,
    )
    with contextlib.closing(candidates):
        for setting, model, excluded in candidates:
            trials.append(_ranking(plan, setting.name, fp32_outputs, model))
            if trials[-1].passes(plan.min_top_overlap, plan.min_kendall_tau):
                return model, tuple(excluded), tuple(trials)
    raise _refusal(plan, trials)


# Levels of the export-time predicted-loss quantiles a device starts from.
QUANTILE_LEVELS = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def _with_quantiles(plan, model):
    """The contract with the exported graph's predicted-loss quantiles on the
    verification or calibration data, so that a device knows what a "top 1%"
    score was at export time (none for generated data, which says nothing
    about the pool)."""
    if plan.source == "generated":
        return plan.contract
    loss = plan.contract.predicted_loss_output
    values = verify.run_onnx(
        model.SerializeToString(), plan.input_name, plan.x, [loss]
    )[loss]
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return plan.contract
    quantiles = LossQuantiles(
        QUANTILE_LEVELS,
        tuple(float(v) for v in np.quantile(values, QUANTILE_LEVELS)),
        int(len(values)),
    )
    return dataclasses.replace(plan.contract, predicted_loss_quantiles=quantiles)


def _ranking(plan, setting, fp32_outputs, model):
    """The `RankingTrial` of a `ModelProto`'s predicted losses on `plan.x`."""
    loss = plan.contract.predicted_loss_output
    outputs = verify.run_onnx(
        model.SerializeToString(), plan.input_name, plan.x, [loss]
    )
    return verify.ranking_trial(setting, fp32_outputs[loss], outputs[loss])


def _refusal(plan, trials):
    """The `RankingError` of lower-precision graphs that all fell short."""
    figures = "; ".join(trial.describe() for trial in trials)
    return RankingError(
        f"Expected the {plan.precision} graph to keep at least "
        f"{plan.min_top_overlap:.2f} of the fp32 top-10% predicted-loss picks and "
        f"a Kendall tau of at least {plan.min_kendall_tau:.2f} on {len(plan.x)} "
        f"items ({plan.source}). Received {figures}; nothing written. Use more "
        "representative calibration data, a higher precision, or lower bars.",
        trials,
    )


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
    ranking = verify.ranking_trial(plan.precision, baseline[loss], final[loss])
    if plan.precision != "fp32" and not ranking.passes(
        plan.min_top_overlap, plan.min_kendall_tau
    ):
        raise _refusal(plan, [ranking])
    return {
        "max_abs_diff": verify.max_abs_diffs(reference, final),
        "spearman": ranking.spearman,
        "top_overlap": ranking.top_overlap,
        "kendall_tau": ranking.kendall_tau,
        "argmax_agreement": {
            key: value for key, value in agreement.items() if value is not None
        },
    }


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
