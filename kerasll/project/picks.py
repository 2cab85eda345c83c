"""Device picks: reading `kerasll-score` files and finding their items.

A device names an item the way its pool does: a path (an image folder or
list), or a row index (an `.npy`/`.npz` array). The project recorded, for
every item, each (device, origin) it was added under; a pick is matched on
the longest path suffix that is an origin (of its device, when known), so
the device's own folder layout does not matter.
"""

import csv
import json
import os
from pathlib import Path, PurePosixPath

from kerasll.project.errors import PicksError

PICK_COLUMNS = ("item", "predicted_loss")


def read_picks(path):
    """Reads a `kerasll-score` picks file (`.csv` or `.jsonl`).

    Args:
        path: the file.

    Returns:
        A list of dicts with at least `item` and `predicted_loss`.

    Raises:
        PicksError: unreadable file, missing columns, or bad losses.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PicksError(
            f"Expected a readable picks file. Received {str(path)!r}: {error}"
        ) from error
    try:
        if path.suffix.lower() == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = list(csv.DictReader(text.splitlines()))
    except ValueError as error:
        raise PicksError(
            f"Expected a kerasll-score picks file (.csv or .jsonl). Received "
            f"{str(path)!r}: {error}"
        ) from error
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or any(row.get(c) in (None, "") for c in
                                            PICK_COLUMNS):
            raise PicksError(
                f"Expected columns {list(PICK_COLUMNS)} in every row of "
                f"{str(path)!r} (written by kerasll-score). Row {number} lacks them"
            )
        try:
            row["predicted_loss"] = float(row["predicted_loss"])
        except (TypeError, ValueError):
            raise PicksError(
                f"Expected a number as predicted_loss in {str(path)!r}. Received "
                f"{row['predicted_loss']!r} in row {number}"
            ) from None
    return rows


def parse_picks_argument(argument, devices):
    """Splits `NAME=FILE` and guesses the device of a bare `FILE`.

    Args:
        argument: `FILE` or `NAME=FILE`.
        devices: the project's device names.

    Returns:
        (device name or None, path): a bare file whose stem names a device
        belongs to that device; otherwise picks are matched on all devices.

    Raises:
        PicksError: `NAME=` names no device of the project.
    """
    name, separator, path = argument.partition("=")
    if separator and not os.path.exists(argument):
        if name not in devices:
            raise PicksError(
                f"Expected a device of the project before '=' in {argument!r}. "
                f"Received {name!r}; devices: {sorted(devices)}"
            )
        return name, path
    stem = Path(argument).stem
    return (stem if stem in devices else None), argument


class ItemIndex:
    """Finds project items by the ids devices give them.

    Args:
        manifest: the open `Manifest`.

    Attributes:
        devices: the project's device names.
    """

    def __init__(self, manifest):
        self.by_path = {
            os.fspath(manifest.resolve(path)): item_id
            for item_id, path in manifest.query("SELECT id, path FROM items")
        }
        self.by_origin = {}
        for device, origin, item_id in manifest.query(
            "SELECT device, origin, item_id FROM origins"
        ):
            self.by_origin.setdefault(origin, []).append((device, item_id))
        self.devices = {device for entries in self.by_origin.values()
                        for device, _ in entries}

    def find(self, item, device):
        """The project item a device's pick names.

        Args:
            item: the pick's `item` (a path or an array row).
            device: the device's name, or None to search every device.

        Returns:
            The item id.

        Raises:
            PicksError: no item, or items of several devices, match.
        """
        if device is None and item in self.by_path:
            return self.by_path[item]
        parts = PurePosixPath(item.replace(os.sep, "/")).parts
        matches = set()
        for start in range(len(parts)):
            origin = "/".join(parts[start:])
            for owner, item_id in self.by_origin.get(origin, ()):
                if device is None or owner == device:
                    matches.add(item_id)
            if matches:
                break
        if len(matches) == 1:
            return matches.pop()
        if matches:
            raise PicksError(
                f"Expected each pick to name one item. Received {item!r}, which "
                f"matches {len(matches)} items of different devices; name the "
                "device: --picks DEVICE=FILE"
            )
        where = "the project" if device is None else f"device {device!r}"
        raise PicksError(
            f"Expected picks of items in the project. Received {item!r}, which is "
            f"not an item of {where}; add the device's pool first"
        )


def number(value):
    """A picks file's optional number (e.g. `confidence`), or None."""
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None
