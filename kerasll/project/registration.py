"""`add`: registering the items of a folder, a list file or an `.npy` array.

Each item gets an `origin`, the name a device's `kerasll-score` picks give it
(the path inside the folder, the line of the list, the array row), so device
picks can be matched back to items. Array rows become PNG files inside the
project (`items/<hash>.png`, written atomically); folder and list items stay
where they are and are stored by absolute path.
"""

import dataclasses
import functools
import os
import typing
from pathlib import Path

import numpy as np
from kerasll_serving.atomic import atomic_path
from kerasll_serving.sources import IMAGE_EXTENSIONS, LIST_EXTENSIONS

from kerasll.project import images
from kerasll.project.errors import SourceError
from kerasll.project.manifest import now

ITEMS_FOLDER = "items"


@dataclasses.dataclass(frozen=True)
class SourceItem:
    """One item found in a source; its bytes are read only when asked for.

    Attributes:
        path: its image file (absolute), or None for an array row, which
            the project writes to `items/` when it is new.
        origin: its name inside the source (relative path, list line, row).
        read: returns the encoded image bytes (the file, or a PNG of the row).
    """

    path: Path
    origin: str
    read: typing.Callable[[], bytes]


@dataclasses.dataclass(frozen=True)
class AddResult:
    """What `add_source` did.

    Attributes:
        found: items in the source.
        added: new items.
        duplicates: items whose content the project already had (or that
            appeared twice in the source).
        device: the device name they were recorded under.
    """

    found: int
    added: int
    duplicates: int
    device: str

    def summary(self):
        """One line for the CLI."""
        return (
            f"Added {self.added} item(s) from device {self.device!r} "
            f"({self.found} found, {self.duplicates} duplicate(s) skipped)"
        )


def read_source(source):
    """Lists the items of a source.

    Args:
        source: a folder of images (walked, sorted), a list file
            (`LIST_EXTENSIONS`, one image path per line, relative to the
            file) or an `.npy` array of uint8 images (N, H, W[, C]).

    Returns:
        A list of `SourceItem`.

    Raises:
        SourceError: the source is missing, of an unknown kind, or empty.
    """
    source = Path(source)
    if source.is_dir():
        found = _folder(source)
    elif not source.is_file():
        raise SourceError(
            f"Expected a folder, a list file or an .npy file. Received: "
            f"{str(source)!r}, which does not exist"
        )
    elif source.suffix.lower() == ".npy":
        found = _array(source)
    elif source.suffix.lower() in LIST_EXTENSIONS:
        found = _list(source)
    else:
        raise SourceError(
            "Expected a folder of images, a list file "
            f"({', '.join(LIST_EXTENSIONS)}) or an .npy array. Received: "
            f"{str(source)!r}"
        )
    if not found:
        raise SourceError(
            f"Expected at least one image ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"{str(source)!r}. Received none"
        )
    return found


def _read(path):
    """The bytes of a source file (a `SourceError` when unreadable)."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise SourceError(
            f"Expected a readable file. Received {str(path)!r}: {error}"
        ) from error


def _folder(root):
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                path = Path(directory, name).resolve()
                origin = Path(directory, name).relative_to(root).as_posix()
                found.append(SourceItem(path, origin, functools.partial(_read, path)))
    return found


def _list(list_path):
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(
            f"Expected a UTF-8 list of image paths. Received {str(list_path)!r}: "
            f"{error}"
        ) from error
    base = list_path.resolve().parent
    entries = [line.strip() for line in lines if line.strip()]
    found = []
    for entry in entries:
        path = (base / entry).resolve()
        found.append(SourceItem(path, entry, functools.partial(_read, path)))
    return found


def _array(path):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SourceError(
            f"Expected a readable .npy array. Received {str(path)!r}: {error}"
        ) from error
    fits = array.ndim == 3 or (array.ndim == 4 and array.shape[-1] in (1, 3))
    if not fits or array.dtype != np.uint8:
        raise SourceError(
            "Expected an .npy array of uint8 images, shape (N, H, W), (N, H, W, 1) "
            f"or (N, H, W, 3). Received shape {array.shape}, dtype {array.dtype} "
            f"in {str(path)!r}"
        )

    def encode(row):
        return images.encode_png(np.asarray(array[row]))

    return [
        SourceItem(None, str(row), functools.partial(encode, row))
        for row in range(len(array))
    ]


def add_source(manifest, source, device=None):
    """Adds a source's new items to the project in one transaction.

    Every (device, origin) is recorded, duplicates included, so the device's
    picks find their items. Every image is decoded first; the first `add` of
    a project fixes its image size and color mode from the first image unless
    `init` set them (then all images must share that size). New array rows
    are written to `items/` before the transaction; a crash leaves at most
    unreferenced files there, which the next `add` of the same rows reuses.

    Args:
        manifest: the open `Manifest`.
        source: see `read_source`.
        device: the device name; default the source's name (folder name or
            file name without suffix).

    Returns:
        An `AddResult`.

    Raises:
        SourceError: unreadable source or image, mixed image sizes with no
            image size set, or an empty device name.
    """
    found = read_source(source)
    device = Path(source).resolve().stem if device is None else str(device).strip()
    if not device:
        raise SourceError(f"Expected a non-empty device name. Received: {device!r}")
    shapes, hashes = {}, []
    for item in found:  # One item's bytes in memory at a time.
        data = item.read()
        size, mode = images.inspect(data, item.origin)
        shapes.setdefault((size, mode), item.origin)
        hashes.append(images.content_hash(data))
    config = _settled(manifest.config, shapes)
    known = {sha for (sha,) in manifest.query("SELECT sha256 FROM items")}
    new, seen = [], set()
    for item, sha in zip(found, hashes):
        if sha in known or sha in seen:
            continue
        seen.add(sha)
        new.append((_stored_path(manifest.root, item, sha), sha, item.origin))
    added_at = now()
    with manifest.transaction() as connection:
        if config != manifest.config:
            manifest.set_meta(connection, config)
        connection.executemany(
            "INSERT INTO items (path, sha256, device, origin, added_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(path, sha, device, origin, added_at) for path, sha, origin in new],
        )
        connection.executemany(
            "INSERT OR REPLACE INTO origins (device, origin, item_id) "
            "SELECT ?, ?, id FROM items WHERE sha256 = ?",
            [(device, item.origin, sha) for item, sha in zip(found, hashes)],
        )
    return AddResult(len(found), len(new), len(found) - len(new), device)


def _settled(config, shapes):
    """The project settings, with image size and color mode fixed by the
    first images when `init` left them open.

    Args:
        config: the `ProjectConfig`.
        shapes: {((height, width), color mode): an origin having it}.

    Returns:
        The (possibly unchanged) `ProjectConfig`.

    Raises:
        SourceError: images of several sizes and no size set at init.
    """
    if config.image_size is not None and config.color_mode is not None:
        return config
    sizes = {size for size, _ in shapes}
    if config.image_size is None and len(sizes) > 1:
        examples = [f"{w}x{h} ({name})" for ((h, w), _), name in shapes.items()]
        raise SourceError(
            "Expected images of one size, or an image size set at init "
            f"(--image-size HEIGHT WIDTH). Received: {examples[:3]}"
        )
    modes = {mode for _, mode in shapes}
    return dataclasses.replace(
        config,
        image_size=config.image_size or next(iter(sizes)),
        color_mode=config.color_mode or (
            "grayscale" if modes == {"grayscale"} else "rgb"),
    )


def _stored_path(root, item, sha):
    """The path the manifest stores; array rows are written to `items/`."""
    if item.path is not None:
        return os.fspath(item.path)
    relative = Path(ITEMS_FOLDER, f"{sha}.png")
    target = Path(root, relative)
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        with atomic_path(target) as temporary:
            temporary.write_bytes(item.read())
    return relative.as_posix()
