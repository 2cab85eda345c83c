"""`to_onnx`: a trained `LossLearner` -> one verified ONNX scoring graph.

The pipeline: check every argument (`kerasll.export.checks`), convert to an
fp32 graph and check its parity with Keras, lower the precision, attach the
contract, write next to the target and verify, rename into place, report
(`kerasll.export.report`).
"""

import os

import numpy as np
from kerasll_serving.atomic import atomic_path
from kerasll_serving.errors import first_line

from kerasll.export import checks, convert, quantize, verify
from kerasll.export.errors import ExportError, VerificationError
from kerasll.export.report import build_report

_PREDICT_BATCH = 256


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
    min_top_overlap=checks.DEFAULT_MIN_TOP_OVERLAP,
    tolerance=checks.DEFAULT_TOLERANCE,
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
        ExportError: bad arguments or data (any argument outside
            `checks.parameter_constraints()`, NaN and infinities included;
            an unwritable path, data of the wrong shape, int8 without
            calibration data...),
            a Keras backend other than TensorFlow, or a graph that cannot be
            converted.
        VerificationError: the exported graph disagrees (see above).
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
    return build_report(plan, reference, fp32_outputs, fp32_nodes, numbers)


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
