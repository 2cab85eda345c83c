"""Seeds of every random choice in an experiment, derived from one seed.

Each random decision gets its own seed from `(seed, purpose, *keys)`, so it
does not depend on what ran before it: a resumed run redraws exactly what an
uninterrupted one drew.
"""

import zlib

import numpy as np


def _as_int(key):
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8"))
    return int(key)


def derive_seed(seed, purpose, *keys):
    """A 31-bit seed for one purpose, e.g. `derive_seed(0, "train", trial, cycle)`.

    Args:
        seed: the experiment's seed.
        purpose: a name separating independent streams ("initial", "train",
            "select").
        *keys: integers or strings (e.g. trial, strategy name, cycle).

    Returns:
        An int in [0, 2**31).
    """
    entropy = [_as_int(seed), _as_int(purpose), *(_as_int(key) for key in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def generator(seed, purpose, *keys):
    """A `numpy.random.Generator` seeded by `derive_seed`."""
    return np.random.default_rng(derive_seed(seed, purpose, *keys))
