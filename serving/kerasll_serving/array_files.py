"""Headers of `.npy` files and of the arrays inside `.npz` archives.

An `ArrayHeader` says where an array's bytes are, so a pool can be
memory-mapped (a `.npy` file, or an `.npz` member stored uncompressed by
`np.savez`) or streamed forward (a member deflated by `np.savez_compressed`)
without reading the array. numpy parses the `.npy` header
(`np.lib.format`); the one thing read by hand is the length of a stored zip
member's local header, which `zipfile` does not expose.
"""

import dataclasses
import os
import struct
import zipfile

import numpy as np

from kerasll_serving.errors import PoolError

NPZ_KEYS = ("x", "x_train")
# A zip local file header: signature, 22 bytes of fields, then the name and
# extra-field lengths (APPNOTE.TXT 4.3.7); the name and extra field follow.
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


@dataclasses.dataclass(frozen=True)
class ArrayHeader:
    """Where and what a stored array is.

    Attributes:
        shape: the array's shape.
        dtype: its `numpy.dtype` (never an object dtype).
        fortran_order: whether it is stored column-major.
        offset: where its bytes start: in the file, for a `.npy` file or a
            stored `.npz` member; in the decompressed member otherwise.
        available: bytes of array data present after `offset`.
        compressed: whether the bytes are deflated (read forward only).
        member: the `.npz` member holding it (None for a `.npy` file).
    """

    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    offset: int
    available: int
    compressed: bool = False
    member: str = None

    @property
    def data_bytes(self):
        """Bytes the whole array takes."""
        return self.dtype.itemsize * int(np.prod(self.shape))


def read_header(path):
    """The header of the pool array of a `.npy` or `.npz` file.

    An `.npz` archive's pool array is `x`, else `x_train`, else its only
    array.

    Args:
        path: the `.npy` or `.npz` file.

    Returns:
        An `ArrayHeader`.

    Raises:
        PoolError: an object array, an ambiguous or empty `.npz`, or a
            compressed Fortran-ordered member.
        OSError, ValueError, zipfile.BadZipFile: an unreadable file.
    """
    path = os.fspath(path)
    if path.lower().endswith(".npz"):
        return _read_npz_header(path)
    with open(path, "rb") as stream:
        shape, dtype, fortran_order, offset = _parse_npy_header(stream, path)
    return ArrayHeader(
        shape, dtype, fortran_order, offset, os.path.getsize(path) - offset
    )


def _read_npz_header(path):
    with zipfile.ZipFile(path) as archive:
        names = {
            name[: -len(".npy")]: name
            for name in archive.namelist()
            if name.endswith(".npy")
        }
        member = names[_pick_npz_key(sorted(names), path)]
        info = archive.getinfo(member)
        with archive.open(info) as stream:
            shape, dtype, fortran_order, offset = _parse_npy_header(stream, path)
    compressed = info.compress_type != zipfile.ZIP_STORED
    if compressed and fortran_order:
        raise PoolError(
            f"Expected a C-ordered array in compressed {path!r}. Received a "
            "Fortran-ordered one; re-save it with np.ascontiguousarray."
        )
    available = info.file_size - offset
    if not compressed:
        offset += _member_data_offset(path, info)
    return ArrayHeader(
        shape, dtype, fortran_order, offset, available, compressed, member
    )


def _pick_npz_key(keys, path):
    if not keys:
        raise PoolError(f"Expected an .npz holding an array. Received an archive "
                        f"with none: {path!r}")
    for key in NPZ_KEYS:
        if key in keys:
            return key
    if len(keys) == 1:
        return keys[0]
    raise PoolError(
        f"Expected an .npz with an array named {' or '.join(map(repr, NPZ_KEYS))}, "
        f"or a single array. Received arrays {keys} in {path!r}."
    )


def _parse_npy_header(stream, path):
    """(shape, dtype, fortran_order, offset of the data) of a `.npy` stream."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise PoolError(f"Expected a numeric array. Received an object array in "
                        f"{path!r}.")
    return tuple(shape), dtype, fortran_order, stream.tell()


def _member_data_offset(path, info):
    """Where a stored zip member's bytes start in the archive.

    Raises:
        zipfile.BadZipFile: no local file header where the directory says.
    """
    with open(path, "rb") as stream:
        stream.seek(info.header_offset)
        raw = stream.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size:
        raise zipfile.BadZipFile(f"truncated local header of {info.filename!r}")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(raw)
    if signature != _LOCAL_SIGNATURE:
        raise zipfile.BadZipFile(f"no local header for {info.filename!r}")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
