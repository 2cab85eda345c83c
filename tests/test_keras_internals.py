"""The one adapter of private Keras API (`kerasll.export.keras_internals`).

These tests fail loudly when a Keras release moves what the adapter reads,
and keep every other module off private Keras API.
"""

import re
from pathlib import Path

import keras
import numpy as np

from kerasll.export.keras_internals import patch_tf2onnx, producing_operation
from kerasll.export.metadata import final_activation

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = re.compile(r"keras\.src\b|_keras_history")


def test_producing_operation_finds_input_layers_layers_and_ops():
    image = keras.Input((4,), name="image")
    probabilities = keras.layers.Dense(3, activation="softmax", name="probs")(image)
    scores = keras.ops.softmax(keras.layers.Dense(2, name="logits")(probabilities))
    model = keras.Model(image, [probabilities, scores])
    source = producing_operation(model.inputs[0])
    assert isinstance(source, keras.layers.InputLayer) and source.name == "image"
    assert producing_operation(model.outputs[0]) is model.get_layer("probs")
    assert isinstance(producing_operation(model.outputs[1]), keras.Operation)
    assert final_activation(model.outputs[0]) == "softmax"
    assert final_activation(model.outputs[1]) == "softmax"  # keras.ops.softmax
    assert producing_operation(np.zeros(3)) is None


def test_producing_operation_reads_sequential_models():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2, activation="sigmoid", name="out")]
    )
    assert producing_operation(model.outputs[0]) is model.get_layer("out")
    assert isinstance(producing_operation(model.inputs[0]), keras.layers.InputLayer)
    assert final_activation(model.outputs[0]) == "sigmoid"


def test_keras_still_ships_the_tf2onnx_patch():
    assert patch_tf2onnx() is True
    assert patch_tf2onnx() is True  # Idempotent.


def test_no_other_module_reads_private_keras_api():
    sources = [
        path
        for folder in ("kerasll", "export", "kerasll_cli", "serving/kerasll_serving")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "keras_internals.py"
    ]
    assert len(sources) > 50
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if PRIVATE.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
