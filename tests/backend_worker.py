"""Work that tests/test_backends.py runs under another Keras backend.

Run as `KERAS_BACKEND=jax python tests/backend_worker.py COMMAND DIR`:

- `step DIR`: loads DIR/initial.weights.h5 and the batch DIR/batch.npz into
  `recipe_learner()`, trains one epoch of `STEP_BATCHES` SGD steps, and writes
  the weights and logs to DIR/after.npz.
- `train-save DIR`: trains a learner briefly, saves DIR/learner.keras and its
  predicted losses on DIR/probe.npy to DIR/predicted.npy.
- `imports DIR`: imports the library and the engine and writes to
  DIR/modules.json whether TensorFlow got imported.
"""

import json
import pathlib
import sys

import keras
import numpy as np

from kerasll import LossLearner
from models_for_tests import marked_noise_data, small_cnn

STEP_BATCHES = 2


def recipe_learner(initial_weights):
    """The learner and optimizer every backend runs the step with.

    Args:
        initial_weights: a `.weights.h5` file of `small_cnn()` learner weights.
    """
    learner = LossLearner(small_cnn(), head_units=8, weight=2.0, detach_epoch=None)
    learner.load_weights(initial_weights)
    learner.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return learner


def run_step(learner, x, y):
    """One epoch of `STEP_BATCHES` steps, in order; returns the logs."""
    history = learner.fit(
        x, y, batch_size=len(x) // STEP_BATCHES, epochs=1, shuffle=False, verbose=0
    )
    return {key: float(values[0]) for key, values in history.history.items()}


def _step(folder):
    learner = recipe_learner(folder / "initial.weights.h5")
    batch = np.load(folder / "batch.npz")
    logs = run_step(learner, batch["x"], batch["y"])
    weights = {f"w{i}": np.asarray(w) for i, w in enumerate(learner.get_weights())}
    np.savez(folder / "after.npz", logs=json.dumps(logs), **weights)


def _train_save(folder):
    keras.utils.set_random_seed(0)
    x, y, _ = marked_noise_data(256, seed=1)
    learner = LossLearner(small_cnn(), head_units=8, detach_epoch=2)
    learner.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    learner.fit(x, y, epochs=3, batch_size=32, verbose=0)
    learner.save(folder / "learner.keras")
    probe = np.load(folder / "probe.npy")
    np.save(folder / "predicted.npy", learner.predict_loss(probe))


def _imports(folder):
    import kerasll_cli.demo  # noqa: F401
    import kerasll.active.experiment  # noqa: F401
    import kerasll.data  # noqa: F401
    import kerasll.export  # noqa: F401

    (folder / "modules.json").write_text(
        json.dumps({"tensorflow": "tensorflow" in sys.modules})
    )


COMMANDS = {"step": _step, "train-save": _train_save, "imports": _imports}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](pathlib.Path(sys.argv[2]))
