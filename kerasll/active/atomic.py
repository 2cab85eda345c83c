"""Atomic file writes for experiment outputs.

The one writer lives in `kerasll_serving.atomic` (the lowest layer, shared by
export, the scorer and the experiment runner); these names re-export it.
"""

from kerasll_serving.atomic import atomic_path, write_bytes, write_text

__all__ = ["atomic_path", "write_bytes", "write_text"]
