"""ONNX export: parity with Keras, metadata contract, fp16/int8 agreement, errors."""

import math
import os

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
from kerasll_serving.contract import ModelContract

import kerasll
from kerasll import LossLearner
from kerasll.export import (
    ExportError,
    ExportReport,
    Int8Setting,
    LearnerTypeError,
    VerificationError,
    to_onnx,
)
from kerasll.export import metadata, onnx_export, verify

SHAPE = (16, 16, 3)
CLASSES = 4
SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# Models and data ------------------------------------------------------------


def small_cnn(shape=SHAPE, classes=CLASSES, activation=None):
    inputs = keras.Input(shape, name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.MaxPooling2D(name="p2")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def _residual(x, filters, strides, name):
    shortcut = x
    y = keras.layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False,
        name=f"{name}_conv1",
    )(x)
    y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(
        filters, 3, padding="same", use_bias=False, name=f"{name}_conv2"
    )(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=strides, use_bias=False, name=f"{name}_proj"
        )(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def small_resnet(shape=SHAPE, classes=CLASSES):
    """Stem conv + two residual stages with Add, BatchNorm everywhere."""
    inputs = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = _residual(x, 8, 1, "stage1")
    x = _residual(x, 16, 2, "stage2")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_resnet")


def two_output_model():
    inputs = keras.Input(SHAPE, name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(
        16, 3, strides=2, padding="same", activation="relu", name="c2"
    )(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    # Names sort the other way round than the model's order, on purpose.
    scores = keras.layers.Dense(3, activation="softmax", name="scores")(x)
    box = keras.layers.Dense(4, name="a_box")(x)
    return keras.Model(inputs, [scores, box], name="two_heads")


def _learner(model, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return LossLearner(model, head_units=16, **kwargs)


def _randomize_batchnorm(model, seed):
    """Non-trivial BN statistics, so parity covers the folded normalisation."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.2, mean.shape).astype("float32"),
                    rng.uniform(0.5, 2.0, variance.shape).astype("float32"),
                ]
            )


def quadrant_data(count, seed):
    """Images whose class is a bright patch in one quadrant, under noise of
    per-item strength: noisy items are harder, so their loss is higher."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, count)
    noise = rng.uniform(0.2, 2.5, count).astype("float32")
    x = rng.normal(size=(count, *SHAPE)).astype("float32") * noise[:, None, None, None]
    half = SHAPE[0] // 2
    for i, label in enumerate(y):
        row, col = divmod(int(label), 2)
        x[i, row * half:(row + 1) * half, col * half:(col + 1) * half, label % 3] += 1.0
    return x, y.astype("int32")


def _session(path):
    return onnxruntime.InferenceSession(
        os.fspath(path), providers=["CPUExecutionProvider"]
    )


def _contract(path):
    meta = _session(path).get_modelmeta().custom_metadata_map
    return ModelContract.from_metadata(meta)


def _keras(learner, x):
    outputs = learner.scoring_model().predict(x, verbose=0)
    return {name: np.asarray(value) for name, value in outputs.items()}


def _run(path, x):
    session = _session(path)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))


def _assert_parity(keras_outputs, onnx_outputs, tolerance=1e-4):
    assert set(onnx_outputs) == set(keras_outputs)
    for name, expected in keras_outputs.items():
        got = onnx_outputs[name]
        assert got.shape == expected.shape, name
        assert got.dtype == np.float32, name
        allowed = tolerance * max(1.0, float(np.abs(expected).max()))
        assert float(np.abs(got - expected).max()) <= allowed, name


def _listing(directory):
    return sorted(os.listdir(directory))


@pytest.fixture(scope="module")
def learners():
    cnn = _learner(small_cnn())
    resnet = _learner(small_resnet(), seed=1)
    _randomize_batchnorm(resnet.backbone, seed=1)
    return {"cnn": cnn, "resnet": resnet}


@pytest.fixture(scope="module")
def pool():
    return quadrant_data(300, seed=7)[0]


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained until its loss head ranks held-out losses."""
    x, y = quadrant_data(1500, seed=0)
    learner = _learner(small_cnn(), seed=3, detach_epoch=None)
    learner.compile(optimizer=keras.optimizers.Adam(2e-3), loss=SPARSE_CE)
    learner.fit(x, y, epochs=6, batch_size=64, verbose=0)
    x_test, y_test = quadrant_data(500, seed=1)
    return learner, x[:400], x_test, y_test


# fp32 parity ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cnn", "resnet"])
def test_fp32_graph_matches_keras_at_batch_1_and_300(kind, learners, pool, tmp_path):
    learner = learners[kind]
    path = tmp_path / f"{kind}.onnx"
    report = to_onnx(learner, path, verify_data=pool)

    assert isinstance(report, ExportReport)
    assert report.precision == "fp32" and report.opset == 17
    assert report.verify_count == 300 and report.verify_source == "verify_data"
    assert report.file_size == path.stat().st_size > 0
    for name, diff in report.max_abs_diff.items():
        assert diff <= report.allowed_diff[name]
    print(f"\n{kind} fp32 parity: {report.max_abs_diff}")
    onnx.checker.check_model(onnx.load(path))

    session = _session(path)
    assert [node.name for node in session.get_outputs()] == ["logits", "predicted_loss"]
    (graph_input,) = session.get_inputs()
    assert graph_input.shape[0] == "batch" and graph_input.shape[1:] == list(SHAPE)
    assert graph_input.type == "tensor(float)"
    for batch in (pool[:1], pool):
        expected = _keras(learner, batch)
        got = _run(path, batch)
        assert got["predicted_loss"].shape == (len(batch),)
        assert got["logits"].shape == (len(batch), CLASSES)
        _assert_parity(expected, got)


def test_export_verifies_a_single_item(learners, pool, tmp_path):
    report = to_onnx(learners["cnn"], tmp_path / "one.onnx", verify_data=pool[:1])
    assert report.verify_count == 1
    assert report.top_overlap == 1.0


def test_generated_verification_batch_is_seeded(learners, tmp_path):
    first = to_onnx(learners["cnn"], tmp_path / "a.onnx")
    second = to_onnx(learners["cnn"], tmp_path / "b.onnx", opset=13)
    assert first.verify_source == "generated" and first.verify_count == 256
    assert second.opset == 13
    assert onnx.load(tmp_path / "b.onnx").opset_import[0].version == 13
    # Same generated batch, same graph: the Keras comparisons agree exactly.
    assert first.max_abs_diff == pytest.approx(second.max_abs_diff, abs=1e-6)


def test_two_output_learner_keeps_names_and_order(pool, tmp_path):
    learner = _learner(two_output_model())
    path = tmp_path / "two.onnx"
    report = to_onnx(learner, path, verify_data=pool[:50])
    session = _session(path)
    names = [node.name for node in session.get_outputs()]
    assert names == ["scores", "a_box", "predicted_loss"] == list(report.outputs)
    expected = _keras(learner, pool)
    _assert_parity(expected, _run(path, pool))
    contract = _contract(path)
    assert contract.task_outputs == ("scores", "a_box")
    assert contract.task_type == "other"


# Metadata -----------------------------------------------------------------------


def test_metadata_round_trips_through_onnxruntime(learners, pool, tmp_path):
    learner = learners["resnet"]
    path = tmp_path / "meta.onnx"
    to_onnx(learner, path, verify_data=pool[:20], class_names=["a", "b", "c", "d"])
    meta = _session(path).get_modelmeta().custom_metadata_map
    expected_keys = {
        "format_version", "kerasll_version", "input", "preprocessing",
        "task_outputs", "predicted_loss_output", "task_type", "class_names",
        "from_logits", "taps", "training", "precision",
    }
    assert {"kerasll." + key for key in expected_keys} <= set(meta)

    contract = ModelContract.from_metadata(meta)
    assert contract.input.name == "image"
    assert contract.input.shape == (None, *SHAPE)
    assert contract.input.dtype == "float32"
    assert contract.input.layout == "NHWC"
    assert contract.task_outputs == ("logits",)
    assert contract.predicted_loss_output == "predicted_loss"
    assert contract.task_type == "classification"
    assert contract.class_names == ("a", "b", "c", "d")
    assert contract.from_logits is True  # linear final Dense
    assert contract.taps == tuple(learner.taps) and contract.taps
    assert contract.training == {
        "objective": learner.objective,
        "margin": learner.margin,
        "weight": learner.weight,
        "head_units": learner.head_units,
        "detach_epoch": learner.detach_epoch,
    }
    assert contract.precision == "fp32"
    assert contract.kerasll_version == kerasll.__version__
    assert contract.format_version == 1
    pre = contract.preprocessing
    assert (pre.in_graph, pre.scale, pre.offset, pre.resize, pre.color_mode) == (
        True, 1.0, 0.0, None, "rgb"
    )
    # The export-time predicted-loss quantiles of the verification data.
    quantiles = contract.predicted_loss_quantiles
    predicted = learner.predict_loss(pool[:20])
    assert quantiles.count == 20 and quantiles.levels[-2] == 0.99
    np.testing.assert_allclose(
        quantiles.values, np.quantile(predicted, quantiles.levels), rtol=1e-4, atol=1e-5
    )
    # Generated data says nothing about a pool: no quantiles.
    to_onnx(learner, tmp_path / "bare.onnx")
    bare = _session(tmp_path / "bare.onnx").get_modelmeta().custom_metadata_map
    assert ModelContract.from_metadata(bare).predicted_loss_quantiles is None


@pytest.mark.parametrize(
    "activation, classes, task_type, from_logits",
    [
        (None, 4, "classification", True),
        ("softmax", 4, "classification", False),
        ("sigmoid", 3, "classification", False),
        (None, 1, "regression", False),
    ],
)
def test_task_type_and_logits_are_read_from_the_model(
    activation, classes, task_type, from_logits
):
    learner = _learner(small_cnn(classes=classes, activation=activation))
    contract = metadata.build_contract(
        learner,
        input_name="pixels",
        input_shape=(None, *SHAPE),
        input_dtype="float32",
        precision="fp32",
        resize=True,
    )
    assert contract.task_type == task_type
    assert contract.from_logits is from_logits
    assert contract.preprocessing.resize == SHAPE[:2]


def test_vector_input_metadata(tmp_path):
    inputs = keras.Input((6,), name="features")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="value")(hidden)
    learner = _learner(keras.Model(inputs, outputs), taps=["hidden"])
    path = tmp_path / "vector.onnx"
    to_onnx(learner, path)
    contract = _contract(path)
    assert contract.input.layout == "NC" and contract.input.shape == (None, 6)
    assert contract.task_type == "regression"
    assert contract.preprocessing.color_mode is None


# Raw uint8 pixels ------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1 / 255.0])
def test_uint8_input_matches_keras_fed_the_same_pixels(learners, tmp_path, scale):
    learner = learners["cnn"]
    pixels = np.random.default_rng(3).integers(0, 256, (64, *SHAPE)).astype("uint8")
    path = tmp_path / "u8.onnx"
    report = to_onnx(
        learner, path, raw_input_dtype="uint8", input_scale=scale, verify_data=pixels
    )
    assert report.input_dtype == "uint8"
    session = _session(path)
    assert session.get_inputs()[0].type == "tensor(uint8)"
    as_float = pixels.astype("float32")
    if scale != 1.0:
        as_float = as_float * np.float32(scale)
    expected = _keras(learner, as_float)
    _assert_parity(expected, _run(path, pixels))
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert contract.input.dtype == "uint8"
    assert contract.preprocessing.in_graph is True
    assert (contract.preprocessing.scale, contract.preprocessing.offset) == (1.0, 0.0)


# fp16 / int8 -------------------------------------------------------------------------


@pytest.mark.slow
def test_fp16_and_int8_keep_the_fp32_picks_of_a_trained_model(trained, tmp_path):
    learner, calibration, x_test, y_test = trained
    # The head has learned something, so agreement is about meaningful scores.
    logits = learner.predict(x_test, verbose=0)
    per_sample = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=None
    )
    true_loss = per_sample(y_test, logits)
    quality = verify.spearman(np.asarray(true_loss), learner.predict_loss(x_test))
    print(f"\ntrained head: Spearman(predicted, true loss) = {quality:.3f}")
    assert quality > 0.3

    reports = {}
    for precision in ("fp32", "fp16", "int8"):
        reports[precision] = to_onnx(
            learner,
            tmp_path / f"{precision}.onnx",
            precision=precision,
            calibration_data=calibration if precision == "int8" else None,
            verify_data=x_test,
        )
    quantized_head = to_onnx(
        learner,
        tmp_path / "int8_head.onnx",
        precision="int8",
        calibration_data=calibration,
        verify_data=x_test,
        int8_settings=[Int8Setting(head_in_fp32=False)],
        min_top_overlap=0.0,
        min_kendall_tau=-1.0,
    )
    for name, report in [*reports.items(), ("int8, head quantized", quantized_head)]:
        print(
            f"{name:>21}: {report.file_size:>6} bytes, Spearman {report.spearman:.5f}, "
            f"top-10% overlap {report.top_overlap:.3f}, "
            f"argmax agreement {report.argmax_agreement['logits']:.4f}"
        )
    for precision in ("fp16", "int8"):
        report = reports[precision]
        assert report.top_overlap >= 0.9
        assert report.spearman > 0.98
        assert report.file_size < reports["fp32"].file_size
        contract = ModelContract.from_metadata(
            _session(report.path).get_modelmeta().custom_metadata_map
        )
        assert contract.precision == precision
        session = _session(report.path)
        # The device contract does not change: fp32 input and outputs.
        assert session.get_inputs()[0].type == "tensor(float)"
        assert {o.type for o in session.get_outputs()} == {"tensor(float)"}
    assert reports["int8"].fp32_nodes and not quantized_head.fp32_nodes
    int8_model = onnx.load(reports["int8"].path)
    assert any(node.op_type == "QuantizeLinear" for node in int8_model.graph.node)


@pytest.mark.slow
def test_int8_refuses_poor_agreement_and_writes_nothing(trained, tmp_path):
    learner, _, x_test, _ = trained
    with pytest.raises(VerificationError, match="top-10% predicted-loss picks"):
        # All-zero calibration collapses every activation range.
        to_onnx(
            learner,
            tmp_path / "bad.onnx",
            precision="int8",
            calibration_data=np.zeros((8, *SHAPE), "float32"),
            verify_data=x_test,
        )
    assert _listing(tmp_path) == []


def test_fp32_parity_failure_writes_nothing(learners, pool, tmp_path, monkeypatch):
    real = onnx_export._keras_outputs

    def shifted(*args):
        return {k: v + 0.01 for k, v in real(*args).items()}

    monkeypatch.setattr(onnx_export, "_keras_outputs", shifted)
    with pytest.raises(VerificationError, match="match Keras"):
        to_onnx(learners["cnn"], tmp_path / "m.onnx", verify_data=pool[:10])
    assert _listing(tmp_path) == []


def test_existing_file_is_replaced(learners, pool, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    to_onnx(learners["cnn"], path, verify_data=pool[:10])
    assert _listing(tmp_path) == ["m.onnx"]
    onnx.checker.check_model(onnx.load(path))


# Bad input -------------------------------------------------------------------------


def _plain_model():
    return small_cnn()


class _Subclassed(keras.Model):
    def call(self, x):
        return x


@pytest.mark.parametrize(
    "make, match",
    [
        (_plain_model, "Received: keras.src.models.functional.Functional. Wrap"),
        (_Subclassed, "Received: .*_Subclassed"),
        (lambda: "model.keras", "Received: builtins.str"),
    ],
)
def test_not_a_learner_is_a_type_error(make, match, tmp_path):
    with pytest.raises(LearnerTypeError, match=match) as info:
        to_onnx(make(), tmp_path / "m.onnx")
    assert isinstance(info.value, TypeError)
    assert str(info.value).startswith("Expected learner to be a built")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"precision": "int4"}, r"precision to be one of \['fp32', 'fp16', 'int8'\]"),
        ({"precision": "int8"}, "Expected calibration_data for precision='int8'"),
        ({"opset": 9}, r"opset to be an integer in \[13, "),
        ({"verify_data": np.zeros((4, 8, 8, 3), "float32")}, r"shape \(N, 16, 16, 3\)"),
        (
            {"verify_data": np.zeros((16, 16, 3), "float32")},
            r"Received shape \(16, 16, 3\)",
        ),
        ({"verify_data": np.zeros((0, *SHAPE), "float32")}, "at least one item"),
        ({"verify_data": [["a"]]}, "numeric array"),
        (
            {"precision": "int8", "calibration_data": np.zeros((4, 15, 16, 3))},
            "calibration_data of shape",
        ),
        (
            {"raw_input_dtype": "uint8", "verify_data": np.full((2, *SHAPE), 0.5)},
            r"raw uint8 values \(integers in \[0, 255\]\)",
        ),
        ({"raw_input_dtype": "int16"}, "raw_input_dtype in"),
        ({"class_names": ["a", "b"]}, "Expected 4 class names"),
        ({"class_names": "abcd"}, "class_names to be a list, a tuple or None"),
        ({"min_top_overlap": 1.5}, "min_top_overlap to be a finite number"),
        ({"resize": (8, 8)}, "resize to positive sizes matching"),
        ({"resize": (16.5, 16)}, r"resize as True or \(height, width\) integers"),
        ({"resize": (True, 16)}, r"resize as True or \(height, width\) integers"),
    ],
)
def test_bad_arguments_raise_and_write_nothing(kwargs, match, learners, tmp_path):
    with pytest.raises(ExportError, match=match) as info:
        to_onnx(learners["cnn"], tmp_path / "m.onnx", **kwargs)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    assert _listing(tmp_path) == []


# One bad value per parameter of to_onnx: refused by name, nothing written.
EVERY_PARAMETER = {
    "path": 123,
    "opset": 2.5,
    "precision": None,
    "calibration_data": [["a"]],
    "verify_data": np.full((2, *SHAPE), np.nan, "float32"),
    "class_names": "abcd",
    "raw_input_dtype": "complex64",
    "input_scale": float("inf"),
    "input_offset": float("nan"),
    "input_name": 7,
    "from_logits": "yes",
    "resize": "big",
    "min_top_overlap": True,
    "min_kendall_tau": 1.5,
    "tolerance": 0,
    "int8_settings": "minmax",
}


def test_every_parameter_has_a_bad_value_here():
    import inspect

    names = set(inspect.signature(to_onnx).parameters) - {"learner"}
    assert names == set(EVERY_PARAMETER)


@pytest.mark.parametrize("name", sorted(EVERY_PARAMETER))
def test_each_bad_argument_is_refused_by_name(name, learners, tmp_path):
    arguments = {"path": tmp_path / "m.onnx", name: EVERY_PARAMETER[name]}
    with pytest.raises(ExportError, match=f"Expected {name}") as info:
        to_onnx(learners["cnn"], **arguments)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    assert _listing(tmp_path) == []


def test_unwritable_paths(learners, tmp_path):
    with pytest.raises(ExportError, match="directory to exist"):
        to_onnx(learners["cnn"], tmp_path / "missing" / "m.onnx")
    with pytest.raises(ExportError, match="Received a directory"):
        to_onnx(learners["cnn"], tmp_path)
    assert _listing(tmp_path) == []
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(ExportError, match="writable output directory"):
                to_onnx(learners["cnn"], locked / "m.onnx")
            assert _listing(locked) == []
        finally:
            locked.chmod(0o700)


def test_uint8_needs_an_image_input(tmp_path):
    inputs = keras.Input((6,), name="features")
    outputs = keras.layers.Dense(2, name="out")(
        keras.layers.Dense(4, name="hidden")(inputs)
    )
    learner = _learner(keras.Model(inputs, outputs), taps=["hidden"])
    with pytest.raises(ExportError, match="only for a float NHWC image input"):
        to_onnx(learner, tmp_path / "m.onnx", raw_input_dtype="uint8")
    assert _listing(tmp_path) == []


# Agreement numbers -----------------------------------------------------------------


def test_rank_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = a + rng.normal(scale=0.5, size=200)
    ties = np.round(b, 1)
    np.testing.assert_allclose(verify.rank(ties), stats.rankdata(ties))
    assert verify.spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
    expected = stats.spearmanr(a, ties)[0]
    assert verify.spearman(a, ties) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(verify.spearman(a, np.ones(200)))


def test_top_overlap_counts_shared_picks():
    reference = np.arange(100.0)
    assert verify.top_overlap(reference, reference) == 1.0
    assert verify.top_overlap(reference, -reference) == 0.0
    swapped = reference.copy()
    swapped[[89, 90]] = swapped[[90, 89]]  # one of the top 10 drops out
    assert verify.top_overlap(reference, swapped) == pytest.approx(0.9)
    assert verify.top_count(5) == 1 and verify.top_count(300) == 30
