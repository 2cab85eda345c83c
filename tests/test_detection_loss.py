"""SSD's MultiBox loss per image: hard negatives, a hand-made case, Keras use."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasll.detection.loss import MultiBoxLoss, hard_negative_mask
from kerasll.task_loss import PerSampleLoss


def _softplus(a):
    return float(np.log1p(np.exp(a)))


def test_hard_negative_count_is_three_per_positive_capped_by_negatives():
    rng = np.random.default_rng(0)
    loss = rng.uniform(0.0, 5.0, (3, 20)).astype("float32")
    positive = np.zeros((3, 20), bool)
    positive[1, :2] = True  # 2 positives -> 6 negatives
    positive[2, :7] = True  # 7 positives -> 21 wanted, 13 negatives exist
    mask = ops.convert_to_numpy(hard_negative_mask(loss, positive, neg_pos_ratio=3))
    assert mask.sum(axis=1).tolist() == [0, 6, 13]
    assert not np.any(mask & positive)
    # The chosen negatives are the highest-loss ones.
    negatives = np.where(positive[1], -np.inf, loss[1])
    assert set(np.flatnonzero(mask[1])) == set(np.argsort(-negatives)[:6])


def test_per_image_loss_on_a_hand_made_case():
    # Five default boxes, background + one class. Image 0: box 0 holds the
    # object, predicted with offsets off by (0.5, -2, 0, 0) and logits (0, 0);
    # the negatives' logits are (0, a) with a = 2, -1, 1, 0, so their
    # confidence losses are softplus(a) and the 3 hardest are a = 2, 1, 0.
    y_true = np.zeros((2, 5, 5), "float32")
    y_true[0, 0] = [0.5, -2.0, 0.0, 0.0, 1.0]
    y_pred = np.zeros((2, 5, 6), "float32")
    y_pred[0, 1:, 5] = [2.0, -1.0, 1.0, 0.0]
    y_pred[1, :, 5] = 3.0  # image 1 has no object: loss 0, as in SSD
    localization = 0.5 * 0.5**2 + (2.0 - 0.5)
    confidence = np.log(2.0) + _softplus(2.0) + _softplus(1.0) + _softplus(0.0)
    values = ops.convert_to_numpy(MultiBoxLoss().call(y_true, y_pred))
    np.testing.assert_allclose(values, [localization + confidence, 0.0], rtol=1e-5)
    halved = ops.convert_to_numpy(MultiBoxLoss(alpha=0.5).call(y_true, y_pred))
    np.testing.assert_allclose(halved[0], 0.5 * localization + confidence, rtol=1e-5)


def test_loss_is_per_sample_for_the_learner_and_serializable():
    rng = np.random.default_rng(1)
    y_true = np.zeros((4, 6, 5), "float32")
    y_true[:, 0, 4] = [1, 2, 1, 2]
    y_pred = rng.normal(size=(4, 6, 7)).astype("float32")
    loss = MultiBoxLoss(neg_pos_ratio=2.0)
    unweighted, _ = PerSampleLoss(loss, ["detections"])(y_true, y_pred)
    assert tuple(unweighted.shape) == (4,)
    np.testing.assert_allclose(
        float(loss(y_true, y_pred)), ops.convert_to_numpy(unweighted).mean(), rtol=1e-5
    )
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MultiBoxLoss) and restored.neg_pos_ratio == 2.0


def test_rejects_negative_hyper_parameters():
    with pytest.raises(
        ValueError, match=r"neg_pos_ratio >= 0. Received: neg_pos_ratio=-1"
    ):
        MultiBoxLoss(neg_pos_ratio=-1)
