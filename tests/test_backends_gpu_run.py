"""The GPU run's pieces that need no GPU: its data file and its presets."""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu"))
import compact  # noqa: E402
import regime  # noqa: E402


def test_compact_coding_is_lossless():
    images = np.random.default_rng(0).integers(0, 256, (6, 5, 7, 3), dtype=np.uint8)
    codes = compact.encode(images)
    assert codes.shape == (6, 3, 5, 7) and codes.dtype == np.uint8
    np.testing.assert_array_equal(compact.decode(codes), images)


def test_subset_round_trips_as_an_image_dataset(tmp_path):
    rng = np.random.default_rng(1)
    source = tmp_path / "cifar.npz"
    np.savez(
        source,
        x_train=rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8),
        y_train=np.arange(40, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (20, 4, 4, 3), dtype=np.uint8),
        y_test=np.arange(20, dtype=np.uint8) % 10,
        class_names=np.array([f"c{i}" for i in range(10)]),
    )
    written = compact.write_subset(source, tmp_path / "subset.npz", 16, 8, seed=3)
    assert written["raw_bytes"] == 24 * 4 * 4 * 3
    data = compact.load_subset(tmp_path / "subset.npz")
    with np.load(source) as full:
        rows = [np.flatnonzero((full["x_train"] == image).all(axis=(1, 2, 3)))[0]
                for image in data.x_train]
        np.testing.assert_array_equal(data.y_train, full["y_train"][rows])
    assert data.x_train.shape == (16, 4, 4, 3) and len(data.x_test) == 8
    assert data.augmentation.pad == 4 and data.augmentation.flip
    with pytest.raises(ValueError, match="Expected 1 to 40 train images"):
        compact.write_subset(source, tmp_path / "big.npz", 41, 8)


@pytest.mark.parametrize("name", sorted(regime.PRESETS))
def test_presets_give_every_batch_one_shape(name):
    preset = regime.PRESETS[name]
    for labeled in range(preset.initial, preset.initial + preset.cycles * preset.budget,
                         preset.budget):
        assert labeled % preset.batch_size == 0
    assert preset.subset % preset.eval_batch_size == 0
