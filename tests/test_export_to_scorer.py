"""From a trained learner to device picks: `to_onnx` -> `PoolScorer` -> top-K."""

import keras
import numpy as np
import pytest
from kerasll_serving import PoolScorer
from kerasll_serving.topk import top_indices

from kerasll import LossLearner
from kerasll.export import to_onnx
from models_for_tests import small_cnn

K = 25


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A briefly trained learner on raw 0-255 pixels, and a uint8 pool."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (300, 8, 8, 1), dtype=np.uint8)
    learner = LossLearner(small_cnn(input_shape=(8, 8, 1), classes=3), head_units=8)
    learner.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    learner.fit(pixels[:200].astype("float32"), rng.integers(0, 3, 200), epochs=2,
                verbose=0)
    directory = tmp_path_factory.mktemp("device")
    np.save(directory / "pool.npy", pixels[200:])
    return learner, pixels[200:], directory


def test_device_picks_are_keras_top_k_of_the_same_pool(trained):
    learner, pool, directory = trained
    to_onnx(learner, directory / "model.onnx", raw_input_dtype="uint8",
            verify_data=pool)
    result = PoolScorer(directory / "model.onnx", providers="cpu").score(
        directory / "pool.npy", k=K, out=directory / "picks.csv")
    keras_loss = learner.predict_loss(pool.astype("float32"))
    expected = top_indices(keras_loss, K)
    assert [pick.index for pick in result.picks] == expected.tolist()
    np.testing.assert_allclose([pick.predicted_loss for pick in result.picks],
                               keras_loss[expected], rtol=1e-4, atol=1e-5)
    assert (directory / "picks.csv").read_text().count("\n") == K + 1
