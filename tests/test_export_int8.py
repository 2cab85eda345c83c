"""int8 export: candidate settings, the two-figure ranking bar, typed refusals,
and the MobileNetV2 device model."""

import math
import os

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner
from scipy import stats

from kerasll import LossLearner
from kerasll.export import (
    INT8_SETTINGS,
    ExportError,
    Int8Setting,
    RankingError,
    to_onnx,
)
from kerasll.export import quantize, verify
from kerasll.models import build_model
from kerasll.taps import auto_taps
from kerasll_cli import main

SHAPE = (16, 16, 3)


def depthwise_cnn():
    """Conv -> depthwise conv -> pointwise conv: the MobileNet pattern, tiny."""
    inputs = keras.Input(SHAPE, name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.ReLU(name="dw_relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu", name="pw")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs, name="depthwise_cnn")


@pytest.fixture(scope="module")
def learner():
    keras.utils.set_random_seed(0)
    return LossLearner(depthwise_cnn(), head_units=16)


@pytest.fixture(scope="module")
def data():
    """Noise of per-item strength, so predicted losses spread out."""
    rng = np.random.default_rng(5)
    strength = rng.uniform(0.2, 2.5, 200).astype("float32")
    x = rng.normal(size=(200, *SHAPE)).astype("float32")
    return x * strength[:, None, None, None]


def _predicted_loss(path, x):
    session = onnxruntime.InferenceSession(
        os.fspath(path), providers=["CPUExecutionProvider"]
    )
    return session.run(["predicted_loss"], {session.get_inputs()[0].name: x})[0]


def test_int8_report_names_the_setting_and_both_figures(learner, data, tmp_path):
    fp32 = to_onnx(learner, tmp_path / "fp32.onnx", verify_data=data)
    report = to_onnx(
        learner,
        tmp_path / "int8.onnx",
        precision="int8",
        calibration_data=data[:100],
        verify_data=data,
        min_top_overlap=0.5,
        min_kendall_tau=0.5,
    )
    names = [trial.setting for trial in report.int8_trials]
    assert names == [setting.name for setting in INT8_SETTINGS[: len(names)]]
    assert report.int8_setting == names[-1]
    assert report.int8_trials[-1].passes(0.5, 0.5)
    assert not any(trial.passes(0.5, 0.5) for trial in report.int8_trials[:-1])
    # The reported figures are those of the written file against fp32.
    reference = _predicted_loss(fp32.path, data)
    written = _predicted_loss(report.path, data)
    expected_tau = stats.kendalltau(reference, written).statistic
    assert report.kendall_tau == pytest.approx(expected_tau, abs=1e-12)
    assert report.top_overlap == verify.top_overlap(reference, written)
    assert report.int8_trials[-1].kendall_tau == pytest.approx(expected_tau, abs=1e-12)
    assert (report.min_top_overlap, report.min_kendall_tau) == (0.5, 0.5)
    text = str(report)
    assert f"int8 setting: {report.int8_setting}" in text
    assert f"Kendall tau {report.kendall_tau:.4f} (min 0.50)" in text
    # The default setting keeps the loss head's dense part in fp32.
    assert report.fp32_nodes


def test_an_impossible_bar_refuses_every_setting_and_writes_nothing(
    learner, data, tmp_path
):
    settings = [Int8Setting(calibration="minmax"), Int8Setting(calibration="percentile")]
    with pytest.raises(RankingError) as info:
        to_onnx(
            learner,
            tmp_path / "int8.onnx",
            precision="int8",
            calibration_data=data[:100],
            verify_data=data,
            int8_settings=settings,
            min_top_overlap=1.0,
            min_kendall_tau=1.0,
        )
    trials = info.value.trials
    assert [trial.setting for trial in trials] == [s.name for s in settings]
    message = str(info.value)
    assert "\n" not in message and "nothing written" in message
    assert "top-10% predicted-loss picks and a Kendall tau of at least 1.00" in message
    for trial in trials:
        assert trial.top_overlap < 1.0 or trial.kendall_tau < 1.0
        assert (
            f"{trial.setting}: overlap {trial.top_overlap:.3f}, "
            f"tau {trial.kendall_tau:.3f}"
        ) in message
    assert isinstance(info.value, ExportError)
    assert os.listdir(tmp_path) == []


def test_fp16_is_judged_on_both_figures(learner, data, tmp_path):
    report = to_onnx(learner, tmp_path / "fp16.onnx", precision="fp16", verify_data=data)
    assert report.kendall_tau >= 0.9 and report.top_overlap >= 0.9
    assert report.int8_trials == () and report.int8_setting is None
    if report.kendall_tau == 1.0:
        pytest.skip("fp16 ranked these items exactly like fp32")
    with pytest.raises(RankingError, match=r"Received fp16: overlap .*, tau "):
        to_onnx(
            learner,
            tmp_path / "fp16-strict.onnx",
            precision="fp16",
            verify_data=data,
            min_kendall_tau=1.0,
        )
    assert sorted(os.listdir(tmp_path)) == ["fp16.onnx"]


def test_cli_refusal_is_one_line_with_both_figures(learner, data, tmp_path):
    learner.save(tmp_path / "learner.keras")
    np.save(tmp_path / "calibration.npy", data[:100])
    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(
        main,
        [
            "export", str(tmp_path / "learner.keras"), "--out", str(out),
            "--precision", "int8", "--calibration", str(tmp_path / "calibration.npy"),
            "--min-top-overlap", "1.0", "--min-kendall-tau", "1.0",
        ],
    )
    assert result.exit_code == 1
    message = result.output.strip()
    assert "\n" not in message
    assert "a Kendall tau of at least 1.00" in message and ", tau " in message
    assert not out.exists()


def test_candidates_skip_settings_that_change_nothing_and_exclude_depthwise(
    learner, data, tmp_path
):
    to_onnx(learner, tmp_path / "fp32.onnx", verify_data=data)
    model = onnx.load(tmp_path / "fp32.onnx")
    depthwise = quantize.depthwise_nodes(model)
    assert len(depthwise) == 1
    settings = [
        Int8Setting(),
        Int8Setting(depthwise_in_fp32=True),
        Int8Setting(depthwise_in_fp32=True),  # a repeat: skipped
    ]
    tried = list(
        quantize.int8_candidates(
            model,
            input_name="pixels",
            calibration_data=data[:64],
            predicted_loss="predicted_loss",
            task_outputs=["logits"],
            settings=settings,
        )
    )
    assert [setting for setting, _, _ in tried] == settings[:2]
    plain, kept_depthwise = tried[0][2], tried[1][2]
    # The second keeps exactly one more node in fp32: the depthwise
    # convolution, whose weight then reaches it unquantized.
    (name,) = set(kept_depthwise) - set(plain)
    quantized = tried[1][1]
    node = next(node for node in quantized.graph.node if node.name == name)
    producers = {out: n.op_type for n in quantized.graph.node for out in n.output}
    assert node.op_type == "Conv"
    assert producers.get(node.input[1]) != "DequantizeLinear"
    node = next(node for node in tried[0][1].graph.node if node.name == name)
    producers = {out: n.op_type for n in tried[0][1].graph.node for out in n.output}
    assert producers[node.input[1]] == "DequantizeLinear"


def test_int8_setting_names_and_bad_values():
    assert Int8Setting().name == "minmax U8S8 per-channel, head fp32"
    assert (
        Int8Setting(
            calibration="percentile",
            activations="int8",
            reduce_range=True,
            per_channel=False,
            depthwise_in_fp32=True,
        ).name
        == "percentile S8S8 per-tensor reduce-range, head+depthwise fp32"
    )
    assert Int8Setting(head_in_fp32=False).name == "minmax U8S8 per-channel"
    with pytest.raises(ExportError, match=r"Expected Int8Setting.calibration in "):
        Int8Setting(calibration="entropy")
    with pytest.raises(ExportError, match=r"Expected Int8Setting.activations in "):
        Int8Setting(activations="uint4")
    with pytest.raises(ExportError, match="Expected Int8Setting.reduce_range to be a bool"):
        Int8Setting(reduce_range=1)


@pytest.mark.parametrize(
    "settings, match",
    [([], r"Received: \[\]"), (["minmax"], r"Received: \['str'\]")],
)
def test_bad_int8_settings_write_nothing(settings, match, learner, data, tmp_path):
    with pytest.raises(ExportError, match=f"Expected int8_settings.*{match}"):
        to_onnx(
            learner,
            tmp_path / "int8.onnx",
            precision="int8",
            calibration_data=data[:10],
            int8_settings=settings,
        )
    assert os.listdir(tmp_path) == []


def test_kendall_tau_known_answers():
    assert verify.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert verify.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # One discordant pair of six: (5 - 1) / 6.
    assert verify.kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert math.isnan(verify.kendall_tau([1, 2, 3], [5, 5, 5]))
    assert math.isnan(verify.kendall_tau([1], [1]))
    with pytest.raises(ValueError, match="of one length"):
        verify.kendall_tau([1, 2], [1, 2, 3])


def test_ranking_trial_bar_is_both_figures_and_nan_fails():
    trial = verify.RankingTrial("x", top_overlap=0.95, kendall_tau=0.85, spearman=0.9)
    assert trial.passes(0.9, 0.8) and not trial.passes(0.9, 0.9)
    assert not trial.passes(0.96, 0.8)
    undefined = verify.RankingTrial("x", 1.0, math.nan, math.nan)
    assert not undefined.passes(0.0, -1.0)


# MobileNetV2, the built-in device model ------------------------------------------


def test_mobilenet_v2_refuses_images_below_32_pixels():
    with pytest.raises(ValueError, match="at least 32x32 for mobilenet_v2"):
        build_model("mobilenet_v2", (16, 16, 3), 10, width=0.35)


@pytest.mark.slow
def test_mobilenet_v2_builds_with_taps_and_exports_with_parity(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("mobilenet_v2", (32, 32, 3), 10, width=0.35)
    assert model.name == "mobilenet_v2"
    assert model.get_layer("block_1_depthwise").depthwise_regularizer is not None
    assert model.get_layer("bn_Conv1").momentum == pytest.approx(0.9)
    assert auto_taps(model) == [
        "block_1_expand_relu",
        "block_3_expand_relu",
        "block_6_expand_relu",
        "block_13_expand_relu",
        "out_relu",
    ]
    pixels = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    model.save(tmp_path / "mobilenet.keras")
    loaded = keras.models.load_model(tmp_path / "mobilenet.keras")
    np.testing.assert_allclose(
        loaded.predict(pixels[:4].astype("float32"), verbose=0),
        model.predict(pixels[:4].astype("float32"), verbose=0),
        atol=1e-5,
    )
    learner = LossLearner(model)
    report = to_onnx(
        learner, tmp_path / "mobilenet.onnx", raw_input_dtype="uint8",
        verify_data=pixels,
    )
    for name, diff in report.max_abs_diff.items():
        assert diff <= report.allowed_diff[name], name
    # Its 17 depthwise convolutions are found in the graph, and an int8
    # setting can keep them in fp32.
    assert len(quantize.depthwise_nodes(onnx.load(report.path))) == 17
    int8 = to_onnx(
        learner,
        tmp_path / "mobilenet-int8.onnx",
        precision="int8",
        raw_input_dtype="uint8",
        calibration_data=pixels,
        int8_settings=[Int8Setting(depthwise_in_fp32=True)],
        min_top_overlap=0.0,
        min_kendall_tau=-1.0,
    )
    assert int8.int8_setting == "minmax U8S8 per-channel, head+depthwise fp32"
    quantized = onnx.load(int8.path)
    kept = set(quantize.depthwise_nodes(quantized)) & set(int8.fp32_nodes)
    assert len(kept) == 17
