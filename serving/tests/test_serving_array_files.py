"""`kerasll_serving.array_files`: where a pool array's bytes are."""

import zipfile

import numpy as np
import pytest

from kerasll_serving.array_files import ArrayHeader, read_header
from kerasll_serving.errors import PoolError

ARRAY = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)


def _bytes_at(path, header):
    with open(path, "rb") as stream:
        stream.seek(header.offset)
        return stream.read(header.data_bytes)


def test_npy_header_points_at_the_array_bytes(tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, ARRAY)
    header = read_header(path)
    assert header == ArrayHeader(
        (2, 3, 4), np.dtype("<i2"), False, header.offset, ARRAY.nbytes
    )
    assert header.data_bytes == 48
    assert _bytes_at(path, header) == ARRAY.tobytes()


def test_stored_npz_member_is_located_in_the_archive(tmp_path):
    path = tmp_path / "pool.npz"
    np.savez(path, y=np.zeros(2), x_train=ARRAY.T, x=ARRAY)
    header = read_header(path)
    assert (header.member, header.shape) == ("x.npy", (2, 3, 4))
    assert not header.compressed
    assert _bytes_at(path, header) == ARRAY.tobytes()
    np.savez(path, x_train=np.asfortranarray(ARRAY))
    header = read_header(path)
    assert header.member == "x_train.npy" and header.fortran_order
    assert _bytes_at(path, header) == np.asfortranarray(ARRAY).tobytes(order="F")


def test_compressed_npz_member_offset_is_in_the_member(tmp_path):
    path = tmp_path / "pool.npz"
    np.savez_compressed(path, images=ARRAY)
    header = read_header(path)
    assert header.compressed and header.member == "images.npy"
    with zipfile.ZipFile(path) as archive, archive.open(header.member) as stream:
        stream.seek(header.offset)
        assert stream.read() == ARRAY.tobytes()
    np.savez_compressed(path, x=np.asfortranarray(ARRAY))
    with pytest.raises(PoolError, match="Fortran-ordered"):
        read_header(path)


def test_refusals_name_the_problem(tmp_path):
    path = tmp_path / "pool.npz"
    np.savez(path, a=ARRAY, b=ARRAY)
    with pytest.raises(PoolError, match=r"Received arrays \['a', 'b'\]"):
        read_header(path)
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object))
    with pytest.raises(PoolError, match="object array"):
        read_header(tmp_path / "objects.npy")
    np.savez(path, x=ARRAY)
    raw = bytearray(path.read_bytes())
    raw[:4] = b"XXXX"  # The member's local header, at the archive's start.
    path.write_bytes(bytes(raw))
    with pytest.raises(zipfile.BadZipFile):
        read_header(path)
