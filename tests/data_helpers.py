"""Where the tests find the data sets they do not make.

One home for the CIFAR-10 copy: `KERASLL_DATA` (the npz, or a folder holding
`cifar10.npz`), else `shared/data/cifar10.npz` beside the checkout. Tests
that read it are marked `cifar`; conftest.py skips them when it is absent.
"""

import os
from pathlib import Path

from kerasll.data import DATA_ENV

SHARED_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"


def _cifar10_npz():
    path = Path(os.environ.get(DATA_ENV) or SHARED_CIFAR10)
    return path / "cifar10.npz" if path.is_dir() else path


CIFAR10 = _cifar10_npz()
