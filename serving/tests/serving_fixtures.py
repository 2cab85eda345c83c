"""Helpers for the kerasll-serving tests: tiny exported models and pools.

Models are tiny Keras functional models with dict outputs
`{task_output: ..., "predicted_loss": (B,)}`, exported with
`model.export(path, format="onnx")`, then given the kerasll metadata contract
with the `onnx` package (the serving package itself never imports either).
`import_blocker` is the one way a test proves a command imports no heavy
package (here and in kerasll's tests).
"""

import os

import numpy as np
import pytest
from PIL import Image

from kerasll_serving.contract import InputSpec, ModelContract, Preprocessing

IMAGE_SIZE = 8


def import_blocker(blocked):
    """Python source that makes a fresh interpreter refuse some packages.

    Put it before a script run with `python -c`: it installs a meta-path
    finder, first in `sys.meta_path`, that refuses every import of a
    `blocked` top-level name (exact names: blocking "onnx" leaves
    "onnxruntime" importable) with "blocked heavy import: <name>", and
    records each attempt in the list `attempts`, even one a library
    swallows.

    Args:
        blocked: top-level package names.

    Returns:
        The source, which also defines `BLOCKED`, the blocked names.
    """
    return f'''
import sys

BLOCKED = {sorted(blocked)!r}
attempts = []


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"blocked heavy import: {{name}}")
        return None


sys.meta_path.insert(0, Blocker())
'''


def export_model(path, *, channels=1, input_dtype="uint8", task="classification",
                 num_classes=3, from_logits=True, class_names=None, in_graph=True,
                 resize=None, color_mode=None, nan_when_black=False,
                 metadata=True, seed=0):
    """Builds, exports and annotates one tiny model.

    Args:
        path: where to write the `.onnx` file.
        channels: input channels (1 or 3) of an 8x8 NHWC input.
        input_dtype: "uint8" (raw pixels) or "float32".
        task: "classification" or "regression".
        num_classes: classifier width.
        from_logits: the classifier outputs logits (else softmax).
        class_names: class labels written to the metadata, or None.
        in_graph: rescaling to [0, 1] is inside the graph; when False the
            metadata tells the device to scale by 1/255.
        resize: `preprocessing.resize` for the metadata, or None.
        color_mode: `preprocessing.color_mode`, or None.
        nan_when_black: the predicted loss is NaN for all-black inputs.
        metadata: write the kerasll metadata (False exports a bare model).
        seed: weight initialisation seed.

    Returns:
        `path`.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, channels), dtype=input_dtype,
                         name="image")
    x = keras.ops.cast(inputs, "float32")
    if in_graph:
        x = keras.layers.Rescaling(1.0 / 255)(x)
    flat = keras.layers.Flatten()(x)
    hidden = keras.layers.Dense(16, activation="relu")(flat)
    if task == "classification":
        activation = None if from_logits else "softmax"
        task_output = keras.layers.Dense(num_classes, activation=activation)(hidden)
        task_name = "logits" if from_logits else "probabilities"
    else:
        task_output = keras.layers.Dense(1)(hidden)
        task_name = "value"
    loss = keras.layers.Reshape(())(keras.layers.Dense(1)(hidden))
    if nan_when_black:
        loss = loss + keras.ops.log(keras.ops.mean(flat, axis=1) - 0.05)
    model = keras.Model(inputs, {task_name: task_output, "predicted_loss": loss})
    model(np.zeros((2, IMAGE_SIZE, IMAGE_SIZE, channels), dtype=input_dtype))
    model.export(path, format="onnx", verbose=False)
    if metadata:
        contract = ModelContract(
            input=InputSpec(name="image",
                            shape=(None, IMAGE_SIZE, IMAGE_SIZE, channels),
                            dtype=input_dtype, layout="NHWC"),
            task_outputs=(task_name,),
            preprocessing=Preprocessing(
                in_graph=in_graph, scale=1.0 if in_graph else 1.0 / 255,
                offset=0.0, resize=resize, color_mode=color_mode,
            ),
            task_type=task,
            class_names=None if class_names is None else tuple(class_names),
            from_logits=from_logits,
            kerasll_version="test",
        )
        add_metadata(path, contract.to_metadata())
    return path


def add_metadata(path, metadata):
    """Adds key/value pairs to an ONNX file's `metadata_props`."""
    import onnx

    model = onnx.load(path)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)


def random_images(count, channels=1, size=IMAGE_SIZE, seed=0):
    """Returns `count` random uint8 images of shape (size, size, channels)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, size, size, channels), dtype=np.uint8)


def write_images(directory, images, extension=".png", nested=True):
    """Writes images as files; returns their paths in sorted (pool) order.

    Args:
        directory: the pool root (created).
        images: uint8 array (N, H, W, C) with C in (1, 3).
        extension: ".png" or ".jpg".
        nested: put every other image in a subdirectory.

    Returns:
        The paths, in the order a directory pool reads them.
    """
    os.makedirs(directory, exist_ok=True)
    paths = []
    for number, pixels in enumerate(images):
        folder = os.path.join(directory, "sub") if nested and number % 2 else directory
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"img_{number:04d}{extension}")
        squeezed = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        Image.fromarray(squeezed).save(path, quality=95)
        paths.append(path)
    return sorted(paths, key=_pool_order(directory))


def _pool_order(root):
    """Sort key matching `os.walk` with sorted subdirectories and files."""
    def key(path):
        relative = os.path.relpath(path, root)
        parts = relative.split(os.sep)
        return (parts[:-1], parts[-1]) if len(parts) > 1 else ([], parts[0])

    def walk_key(path):
        folders, name = key(path)
        # Files of a directory come before its subdirectories in os.walk order.
        return [(1, folder) for folder in folders] + [(0, name)]

    return walk_key


def reference_scores(model_path, x):
    """Runs the model with onnxruntime directly: `(predicted_loss, task_output)`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model_path,
                                           providers=["CPUExecutionProvider"])
    outputs = {node.name: node for node in session.get_outputs()}
    names = ["predicted_loss"] + [name for name in outputs if name != "predicted_loss"]
    loss, task = session.run(names, {"image": x})
    return loss.astype(np.float64), task


MODEL_SPECS = {
    # Grayscale classifier, logits, named classes, rescaling in the graph.
    "gray": {"channels": 1, "class_names": ("cat", "dog", "bird")},
    # RGB softmax classifier without names; images are resized to 8x8.
    "rgb": {"channels": 3, "num_classes": 4, "from_logits": False,
            "resize": (IMAGE_SIZE, IMAGE_SIZE), "color_mode": "rgb"},
    # float32 input scaled by the device (not in graph); NaN loss when black.
    "regression": {"channels": 1, "input_dtype": "float32", "task": "regression",
                   "in_graph": False, "nan_when_black": True},
    # The gray model without kerasll metadata.
    "bare": {"channels": 1, "metadata": False},
}


def exported_models(tmp_path_factory):
    """Paths of the `MODEL_SPECS` models, exported once per test session.

    Test modules each hold their own session fixture; the files are cached
    under the session's base temporary directory so they are built once.
    """
    directory = tmp_path_factory.getbasetemp() / "serving_models"
    directory.mkdir(exist_ok=True)
    paths = {}
    for name, spec in MODEL_SPECS.items():
        path = directory / f"{name}.onnx"
        if not path.exists():
            partial = directory / f"{name}.partial.onnx"
            export_model(str(partial), **spec)
            os.replace(partial, path)
        paths[name] = str(path)
    return paths


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Paths of the exported test models by name (see `MODEL_SPECS`)."""
    return exported_models(tmp_path_factory)
