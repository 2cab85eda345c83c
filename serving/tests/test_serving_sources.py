"""Pool sources: kinds, order, ids, streaming memory and bad input."""

import os
import tracemalloc

import numpy as np
import pytest

from serving_fixtures import models, random_images, write_images  # noqa: F401

from kerasll_serving import ContractError, PoolError, PoolScorer
from kerasll_serving.contract import InputSpec, ModelContract, Preprocessing
from kerasll_serving.preprocess import InputAdapter
from kerasll_serving.sources import ArrayPool, ImagePool, open_pool


def adapter(shape=(8, 8, 1), dtype="uint8", layout="NHWC", **preprocessing):
    return InputAdapter(ModelContract(
        input=InputSpec("image", (None,) + shape, dtype, layout),
        task_outputs=("logits",),
        preprocessing=Preprocessing(**preprocessing),
    ))


def read_all(pool, batch_size=7):
    rows, ids = [], []
    for start in range(0, len(pool), batch_size):
        batch = pool.read(np.arange(start, min(len(pool), start + batch_size)))
        rows.append(batch.x)
        ids.extend(pool.item_id(index) for index in batch.indices)
    return np.concatenate(rows), ids


def test_npy_is_memory_mapped_and_read_in_order(tmp_path):
    images = random_images(50)
    np.save(tmp_path / "pool.npy", images)
    pool = open_pool(tmp_path / "pool.npy", adapter())
    assert isinstance(pool, ArrayPool) and len(pool) == 50
    x, ids = read_all(pool)
    np.testing.assert_array_equal(x, images)
    assert ids == list(range(50))
    pool.read(np.arange(3))
    assert isinstance(pool._reader.array, np.memmap)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("key", ["x", "x_train", "only"])
def test_npz_picks_x_then_x_train_then_the_only_array(tmp_path, save, key):
    images = random_images(30)
    arrays = {key: images}
    if key != "only":
        arrays["y"] = np.zeros(30)  # A second array that must be ignored.
    save(tmp_path / "pool.npz", **arrays)
    pool = open_pool(tmp_path / "pool.npz", adapter())
    assert pool.sequential == (save is np.savez_compressed)
    x, _ = read_all(pool, batch_size=4)
    np.testing.assert_array_equal(x, images)


def test_npz_with_several_arrays_and_no_known_name_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "pool.npz", a=random_images(3), b=random_images(3))
    with pytest.raises(PoolError, match=r"named 'x' or 'x_train'.*\['a', 'b'\]"):
        open_pool(tmp_path / "pool.npz", adapter())


def test_fortran_ordered_npy_reads_correctly(tmp_path):
    images = np.asfortranarray(random_images(10))
    np.save(tmp_path / "pool.npy", images)
    x, _ = read_all(open_pool(tmp_path / "pool.npy", adapter()))
    np.testing.assert_array_equal(x, images)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".npz-compressed"])
def test_array_pools_stream_with_flat_memory(tmp_path, suffix):
    images = random_images(20_000)  # 1.28 MB of pixels.
    path = tmp_path / ("pool" + suffix.split("-")[0])
    if suffix == ".npy":
        np.save(path, images)
    elif suffix == ".npz":
        np.savez(path, x=images)
    else:
        np.savez_compressed(path, x=images)
    del images
    pool = open_pool(path, adapter())
    tracemalloc.start()
    try:
        for start in range(0, len(pool), 500):
            pool.read(np.arange(start, start + 500))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 400_000  # A few batches of 32 kB, never the 1.28 MB pool.


def test_directory_tree_sorted_recursive_and_filtered(tmp_path):
    images = random_images(6, channels=3)
    paths = write_images(tmp_path / "pool", images, extension=".png")
    (tmp_path / "pool" / "notes.txt").write_text("not an image")
    (tmp_path / "pool" / ".hidden.png").write_bytes(b"")
    pool = open_pool(tmp_path / "pool", adapter(shape=(8, 8, 3)))
    assert isinstance(pool, ImagePool)
    assert [pool.item_id(i) for i in range(len(pool))] == [str(p) for p in paths]
    x, _ = read_all(pool, batch_size=4)
    order = [int(os.path.basename(p)[4:8]) for p in paths]
    np.testing.assert_array_equal(x, images[order])


def test_list_file_resolves_relative_paths_and_keeps_ids_as_written(tmp_path):
    images = random_images(4)
    paths = write_images(tmp_path / "imgs", images, nested=False)
    listing = tmp_path / "pool.txt"
    listing.write_text("\n".join(os.path.relpath(p, tmp_path) for p in paths) + "\n\n")
    pool = open_pool(listing, adapter())
    assert pool.item_id(0) == os.path.join("imgs", "img_0000.png")
    x, _ = read_all(pool)
    np.testing.assert_array_equal(x, images)


def test_jpeg_images_decode(tmp_path):
    images = np.full((3, 8, 8, 3), 128, dtype=np.uint8)
    write_images(tmp_path / "pool", images, extension=".jpg", nested=False)
    x, _ = read_all(open_pool(tmp_path / "pool", adapter(shape=(8, 8, 3))))
    assert np.abs(x.astype(int) - 128).max() <= 2


def test_images_are_resized_and_converted_only_as_the_metadata_says(tmp_path):
    big = random_images(2, channels=3, size=16)
    write_images(tmp_path / "pool", big, nested=False)
    gray = adapter(shape=(8, 8, 1), resize=(8, 8), color_mode="grayscale")
    x, _ = read_all(open_pool(tmp_path / "pool", gray))
    assert x.shape == (2, 8, 8, 1)
    no_resize = open_pool(tmp_path / "pool", adapter(shape=(8, 8, 3)))
    batch = no_resize.read(np.arange(2))
    assert batch.x is None and len(batch.errors) == 2
    assert "expects 8x8 and its metadata sets no resize" in batch.errors[0][1]


def test_corrupt_and_missing_images_are_reported_not_raised(tmp_path):
    write_images(tmp_path / "pool", random_images(3), nested=False)
    (tmp_path / "pool" / "img_0001.png").write_bytes(b"\x89PNG truncated")
    listing = tmp_path / "list.txt"
    listing.write_text("pool/img_0000.png\npool/img_0001.png\nmissing.png\n")
    batch = open_pool(listing, adapter()).read(np.arange(3))
    assert batch.indices.tolist() == [0]
    assert [index for index, _ in batch.errors] == [1, 2]
    assert "FileNotFoundError" in batch.errors[1][1]


def test_device_side_scaling_and_dtype(tmp_path):
    np.save(tmp_path / "pool.npy", np.full((2, 8, 8), 255, dtype=np.uint8))
    scaled = adapter(dtype="float32", in_graph=False, scale=1 / 255, offset=-0.5)
    x, _ = read_all(open_pool(tmp_path / "pool.npy", scaled))
    assert x.dtype == np.float32 and x.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(x, 0.5)


@pytest.mark.parametrize("shape", [(5, 8, 8, 3), (5, 9, 8, 1), (5, 64)])
def test_array_pool_of_wrong_shape_fails_before_scoring(tmp_path, shape):
    np.save(tmp_path / "pool.npy", np.zeros(shape, dtype=np.uint8))
    with pytest.raises(PoolError, match=r"Expected pool items of shape \(8, 8, 1\)"):
        open_pool(tmp_path / "pool.npy", adapter())


def test_float_pool_for_uint8_model_is_refused(tmp_path):
    np.save(tmp_path / "pool.npy", np.zeros((2, 8, 8, 1), dtype=np.float32))
    with pytest.raises(PoolError, match="casting would lose values"):
        open_pool(tmp_path / "pool.npy", adapter())


@pytest.mark.parametrize("kind", ["npy", "dir", "list"])
def test_empty_pools_are_clear_errors(tmp_path, kind):
    if kind == "npy":
        path = tmp_path / "pool.npy"
        np.save(path, np.zeros((0, 8, 8, 1), dtype=np.uint8))
        pattern = "at least one item"
    elif kind == "dir":
        path = tmp_path / "empty"
        path.mkdir()
        pattern = "Received a directory with none"
    else:
        path = tmp_path / "pool.txt"
        path.write_text("\n")
        pattern = "at least one item"
    with pytest.raises(PoolError, match=pattern):
        open_pool(path, adapter())


def test_unknown_pool_kind_and_missing_path(tmp_path):
    (tmp_path / "pool.csv").write_text("a,b\n")
    with pytest.raises(PoolError, match="directory of images, a .npy or .npz"):
        open_pool(tmp_path / "pool.csv", adapter())
    with pytest.raises(PoolError, match="does not exist"):
        open_pool(tmp_path / "nothing.npy", adapter())


def test_binary_list_file_is_a_clear_error(tmp_path):
    (tmp_path / "pool.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(PoolError, match="UTF-8 text file of image paths"):
        open_pool(tmp_path / "pool.txt", adapter())


def test_image_pool_needs_an_image_model(tmp_path):
    write_images(tmp_path / "pool", random_images(1), nested=False)
    with pytest.raises(PoolError, match="NHWC image input"):
        open_pool(tmp_path / "pool", adapter(shape=(64,), layout="NC"))


def test_contradictory_color_mode_is_a_contract_error():
    with pytest.raises(ContractError, match="color_mode 'rgb'"):
        adapter(shape=(8, 8, 1), color_mode="rgb")


def test_scorer_refuses_wrong_array_before_running_any_batch(models, tmp_path,
                                                             monkeypatch):
    np.save(tmp_path / "pool.npy", np.zeros((4, 8, 8, 3), dtype=np.uint8))
    scorer = PoolScorer(models["gray"])
    monkeypatch.setattr(scorer.model, "run", lambda x: pytest.fail("scored"))
    with pytest.raises(PoolError, match="wrong size or channels"):
        scorer.score(tmp_path / "pool.npy", k=1)


def test_truncated_npy_is_refused_when_opened_naming_the_file(tmp_path):
    np.save(tmp_path / "pool.npy", random_images(10))
    data = (tmp_path / "pool.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-100])
    with pytest.raises(PoolError, match=r"Expected 640 bytes of array data .*"
                       r"cut\.npy'\. Received only 540: the file is truncated"):
        open_pool(tmp_path / "cut.npy", adapter())


def test_file_truncated_after_opening_is_a_pool_error(tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, random_images(10))
    pool = open_pool(path, adapter())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PoolError, match=r"readable numpy file.*pool\.npy"):
        pool.read(np.arange(2))


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.int32])
def test_wide_integer_pool_in_uint8_range_is_fed_unchanged(tmp_path, dtype):
    images = random_images(9)
    np.save(tmp_path / "pool.npy", images.astype(dtype))
    x, _ = read_all(open_pool(tmp_path / "pool.npy", adapter()), batch_size=4)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, images)


@pytest.mark.parametrize("dtype, value", [(np.uint16, 256), (np.int64, 70_000),
                                          (np.int8, -1)])
def test_integer_values_a_uint8_input_cannot_hold_are_refused_not_wrapped(
        tmp_path, dtype, value):
    images = (random_images(9) // 2).astype(dtype)  # Fits every dtype here.
    images[6, 2, 3, 0] = value  # In the second batch of 4.
    np.save(tmp_path / "pool.npy", images)
    pool = open_pool(tmp_path / "pool.npy", adapter())
    assert pool.read(np.arange(4)).x.dtype == np.uint8  # First batch is fine.
    with pytest.raises(PoolError, match=(
            rf"values in \[0, 255\] for the uint8 model input 'image'\. Received "
            rf"values in \[.*{value}.*\] \({np.dtype(dtype)}\) in rows 4-7 of "
            r"'.*pool\.npy'; casting would wrap them around \(e\.g\. 256 -> 0\)")):
        pool.read(np.arange(4, 8))


@pytest.mark.parametrize("extension", [".bmp", ".gif", ".tif", ".tiff", ".webp"])
def test_directory_pools_read_every_format_kerasll_trains_on(tmp_path, extension):
    images = random_images(3)
    write_images(tmp_path / "pool", images, extension=extension, nested=False)
    x, ids = read_all(open_pool(tmp_path / "pool", adapter()))
    assert all(item.endswith(extension) for item in ids)
    if extension != ".webp":  # WebP is lossy by default.
        np.testing.assert_array_equal(x, images)


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped(tmp_path, channels):
    from PIL import Image

    (tmp_path / "pool").mkdir()
    levels = np.array([0, 257 * 64, 32768, 65535], dtype=np.uint16)
    Image.fromarray(np.tile(levels, (8, 2))).save(tmp_path / "pool" / "deep.png")
    assert Image.open(tmp_path / "pool" / "deep.png").mode == "I;16"
    x, _ = read_all(open_pool(tmp_path / "pool", adapter(shape=(8, 8, channels))))
    assert x.shape == (1, 8, 8, channels)
    assert x[0, 0, :4].tolist() == [[value] * channels for value in (0, 64, 128, 255)]


def test_thirty_two_bit_images_are_skipped_with_the_reason(tmp_path):
    from PIL import Image

    (tmp_path / "pool").mkdir()
    Image.fromarray(np.full((8, 8), 3.5, dtype=np.float32)).save(
        tmp_path / "pool" / "float.tif")
    batch = open_pool(tmp_path / "pool", adapter()).read(np.arange(1))
    assert batch.x is None
    assert "32-bit pixels" in batch.errors[0][1]
