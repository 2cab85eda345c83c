"""Pool sources: where unlabeled items come from, read a batch at a time.

Four kinds, chosen by `open_pool` from the path:

* a directory tree of images (`IMAGE_EXTENSIONS`: JPEG, PNG, BMP, GIF,
  TIFF, WebP; sorted walk; item id = the file path);
* a `.npy` array, memory-mapped (`mmap_mode="r"`), never loaded whole (a
  file shorter than its header says is refused when opened; headers are
  read by `kerasll_serving.array_files`);
* a `.npz` archive holding the pool array (`x`, else `x_train`, else its only
  array): an uncompressed member (`np.savez`) is memory-mapped in place, a
  compressed one (`np.savez_compressed`) is streamed forward in batches;
* a text file (`.txt`, `.lst`, `.list`) listing image paths, one per line
  (relative paths are relative to the list file).

Array items are identified by their index, image items by their path. Pools
hold no decoded data; memory stays flat however large the pool.
"""

import dataclasses
import hashlib
import os
import threading
import zipfile
import zlib

import numpy as np

from kerasll_serving.array_files import read_header
from kerasll_serving.errors import PoolError

# The image files pools (and kerasll's training folders) are made of: every
# format Pillow decodes without plugins. kerasll.data imports this tuple.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LIST_EXTENSIONS = (".txt", ".lst", ".list")


@dataclasses.dataclass
class Batch:
    """Items read for one batch.

    Attributes:
        indices: pool indices of the items that were read (int64).
        x: those items, prepared for the graph input (None when none was read).
        errors: `(index, reason)` of items that could not be read.
    """

    indices: np.ndarray
    x: np.ndarray
    errors: list


def open_pool(path, adapter):
    """Opens a pool and checks it against the model input before scoring.

    Args:
        path: a directory, `.npy`, `.npz` or image-list file.
        adapter: the model's `InputAdapter`.

    Returns:
        An `ArrayPool` or `ImagePool`.

    Raises:
        PoolError: the path is missing, of an unknown kind, empty, or its
            items do not fit the model input.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        pool = ImagePool.from_directory(path, adapter)
    elif not os.path.isfile(path):
        raise PoolError(f"Expected a pool file or directory. Received: {path!r}, "
                        "which does not exist.")
    elif path.lower().endswith((".npy", ".npz")):
        pool = ArrayPool(path, adapter)
    elif path.lower().endswith(LIST_EXTENSIONS):
        pool = ImagePool.from_list(path, adapter)
    else:
        raise PoolError(
            "Expected a pool that is a directory of images, a .npy or .npz array "
            f"or an image list ({', '.join(LIST_EXTENSIONS)}). Received: {path!r}"
        )
    if len(pool) == 0:
        raise PoolError(f"Expected a pool with at least one item. Received an "
                        f"empty pool: {path!r}")
    return pool


class ArrayPool:
    """A pool stored as one numpy array, read in row ranges.

    Args:
        path: the `.npy` or `.npz` file.
        adapter: the model's `InputAdapter`.

    Raises:
        PoolError: the file is unreadable, the `.npz` array is ambiguous, or
            the array does not fit the model input.
    """

    def __init__(self, path, adapter):
        self.path = os.fspath(path)
        self.adapter = adapter
        try:
            self._header = read_header(self.path)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise PoolError(
                f"Expected a readable numpy file. Received {self.path!r}: {error}"
            ) from error
        header = self._header
        if len(header.shape) == 0:
            raise PoolError(f"Expected an array of items. Received a scalar in "
                            f"{self.path!r}.")
        if header.available < header.data_bytes:
            raise PoolError(
                f"Expected {header.data_bytes} bytes of array data (shape "
                f"{header.shape}, {header.dtype}) in {self.path!r}. Received only "
                f"{max(header.available, 0)}: the file is truncated."
            )
        self.member = header.member
        self.item_shape = adapter.check_array(header.shape, header.dtype, self.path)
        self._reader = None
        self._lock = threading.Lock()

    @property
    def sequential(self):
        """True when batches must be read in order by one thread (a compressed
        `.npz` member can only be decompressed forward)."""
        return self._header.compressed

    def __len__(self):
        return int(self._header.shape[0])

    def item_id(self, index):
        """Returns the item's id: its index in the array."""
        return int(index)

    def identity(self):
        """Returns what identifies this pool for resume checkpoints."""
        stat = os.stat(self.path)
        return {
            "kind": "array",
            "path": os.path.abspath(self.path),
            "member": self.member,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "shape": list(self._header.shape),
            "dtype": str(self._header.dtype),
        }

    def read(self, indices):
        """Reads and prepares items.

        Args:
            indices: sorted pool indices (int64 array).

        Returns:
            A `Batch`; array items are never skipped.
        """
        low, high = int(indices[0]), int(indices[-1]) + 1
        with self._lock:
            if self._reader is None:
                self._reader = self._open_reader()
        rows = self._reader(low, high)
        if len(indices) != high - low:
            rows = rows[indices - low]
        rows = rows.reshape((len(indices),) + self.item_shape)
        source = f"rows {low}-{high - 1} of {self.path!r}"
        return Batch(indices, self.adapter.prepare(rows, source), [])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_reader"] = None  # File handles are reopened in each process.
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _open_reader(self):
        try:
            if self._header.compressed:
                return _CompressedRows(self.path, self._header)
            return _MappedRows(self.path, self._header)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            # The file changed since it was opened (e.g. truncated meanwhile).
            raise PoolError(
                f"Expected a readable numpy file. Received {self.path!r}: {error}"
            ) from error


class _MappedRows:
    """Reads row ranges of a memory-mapped `.npy` file or stored `.npz` member."""

    def __init__(self, path, header):
        self.array = np.memmap(
            path,
            dtype=header.dtype,
            mode="r",
            offset=header.offset,
            shape=header.shape,
            order="F" if header.fortran_order else "C",
        )

    def __call__(self, low, high):
        return np.array(self.array[low:high])


class _CompressedRows:
    """Reads row ranges of a compressed `.npz` member, moving forward only.

    Seeking backwards in a deflated member restarts decompression from the
    start, so the scorer reads such pools with a single reader thread.
    """

    def __init__(self, path, header):
        self._path, self._member = path, header.member
        self._lock = threading.Lock()
        self._archive = zipfile.ZipFile(path)
        self._stream = self._archive.open(header.member)
        self._dtype = header.dtype
        self._item_shape = header.shape[1:]
        self._row_bytes = self._dtype.itemsize * int(np.prod(self._item_shape))
        self._data_start = header.offset

    def __call__(self, low, high):
        wanted = (high - low) * self._row_bytes
        try:
            with self._lock:
                self._stream.seek(self._data_start + low * self._row_bytes)
                data = self._stream.read(wanted)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise PoolError(
                f"Expected a readable compressed array in {self._path!r}. Received "
                f"a corrupt member {self._member!r}: {error}"
            ) from error
        if len(data) != wanted:
            raise PoolError(
                f"Expected rows {low}-{high - 1} ({wanted} bytes) in member "
                f"{self._member!r} of {self._path!r}. Received {len(data)} bytes: "
                "the archive is truncated."
            )
        rows = np.frombuffer(data, dtype=self._dtype)
        return rows.reshape((high - low,) + self._item_shape)


class ImagePool:
    """A pool of image files, decoded a batch at a time.

    Args:
        paths: the files to read, in pool order.
        ids: the id of each item (the path as found or as listed).
        identity: what identifies the pool for resume checkpoints.
        adapter: the model's `InputAdapter`.

    Raises:
        PoolError: the model does not take images.
    """

    sequential = False

    def __init__(self, paths, ids, identity, adapter):
        adapter.check_images(identity["path"])
        self.paths = paths
        self.ids = ids
        self.adapter = adapter
        self._identity = identity

    @classmethod
    def from_directory(cls, root, adapter):
        """Collects the image files (`IMAGE_EXTENSIONS`) under `root`, sorted.

        Args:
            root: the directory.
            adapter: the model's `InputAdapter`.

        Returns:
            The `ImagePool`.
        """
        paths = []
        for directory, subdirectories, files in os.walk(root):
            subdirectories.sort()
            paths.extend(
                os.path.join(directory, name)
                for name in sorted(files)
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
            )
        if not paths:
            raise PoolError(
                f"Expected image files ({', '.join(IMAGE_EXTENSIONS)}) under "
                f"{root!r}. Received a directory with none."
            )
        identity = {"kind": "directory", "path": os.path.abspath(root)}
        return cls(paths, paths, _with_digest(identity, paths), adapter)

    @classmethod
    def from_list(cls, list_path, adapter):
        """Reads image paths from a text file, one per line.

        Args:
            list_path: the list file; blank lines are ignored, relative paths
                are relative to its directory.
            adapter: the model's `InputAdapter`.

        Returns:
            The `ImagePool`.

        Raises:
            PoolError: the file is unreadable or not UTF-8 text.
        """
        try:
            with open(list_path, encoding="utf-8") as stream:
                ids = [line.strip() for line in stream if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise PoolError(
                f"Expected a UTF-8 text file of image paths. Received {list_path!r}: "
                f"{error}"
            ) from error
        base = os.path.dirname(os.path.abspath(list_path))
        paths = [os.path.join(base, item) for item in ids]
        identity = {"kind": "list", "path": os.path.abspath(list_path)}
        return cls(paths, ids, _with_digest(identity, ids), adapter)

    def __len__(self):
        return len(self.paths)

    def item_id(self, index):
        """Returns the item's id: its path."""
        return self.ids[index]

    def identity(self):
        """Returns what identifies this pool for resume checkpoints."""
        return dict(self._identity)

    def read(self, indices):
        """Decodes and prepares images; unreadable ones are reported, not raised.

        Args:
            indices: pool indices (int64 array).

        Returns:
            A `Batch` of the images that decoded.
        """
        good, pixels, errors = [], [], []
        for index in indices:
            try:
                pixels.append(self.adapter.decode_image(self.paths[index]))
            except Exception as error:  # PIL raises many types for corrupt files.
                errors.append((int(index), f"{type(error).__name__}: {error}"))
            else:
                good.append(index)
        x = self.adapter.prepare(np.stack(pixels)) if pixels else None
        return Batch(np.asarray(good, dtype=np.int64), x, errors)


def _with_digest(identity, ids):
    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()
    return {**identity, "count": len(ids), "ids_sha256": digest}
