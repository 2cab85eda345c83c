"""What a keypoint project fixes at `init`: its keypoint schema (and, for
detection and keypoints, `DEFAULT_IMAGE_SIZE`; the keypoints kind checks
the size, `kerasll.project.kinds`).

A keypoint schema is the keypoints' names, the skeleton's edges, the
left/right flip pairs (the mirror augmentation swaps them) and the OKS
sigmas. It comes from the stick figures (`"figure"`:
`kerasll.keypoints.FIGURE_SKELETON`, whose head segment, head_top to neck,
gives PCKh) or from a COCO keypoint JSON (a `person_keypoints_*.json`, or
just `{"categories": [...]}`; `kerasll.keypoints.coco`: the first category
with `keypoints`; names that differ only in left/right are
flip pairs; COCO's 17 person names get COCO's sigmas, and a category may
give its own as `sigmas`, one positive number per keypoint). The held-out
metric needs one of the two: PCKh@0.5 where the schema has `head_top` and
`neck`, else OKS AP with the sigmas.
"""

import json
import math
from pathlib import Path

from kerasll.project.errors import ManifestError

FIGURE = "figure"
HEAD_SEGMENT = ("head_top", "neck")
DEFAULT_IMAGE_SIZE = (64, 64)


def keypoint_schema(spec):
    """A keypoint schema as the manifest stores it.

    Args:
        spec: "figure", or the path of a COCO keypoint JSON file.

    Returns:
        A dict with `names`, `edges`, `flip_pairs` (lists of 0-based index
        pairs) and `sigmas` (a list, or None).

    Raises:
        ManifestError: an unreadable file, no category with keypoints, a bad
            skeleton or sigmas, or a schema with neither a head segment nor
            sigmas (no metric could score it).
    """
    from kerasll.detection.annotations import AnnotationError
    from kerasll.keypoints.coco import skeleton_from_category
    from kerasll.keypoints.figures import FIGURE_SKELETON

    if spec == FIGURE:
        skeleton, sigmas = FIGURE_SKELETON, FIGURE_SKELETON.sigmas
    else:
        try:
            document = json.loads(Path(spec).read_text(encoding="utf-8"))
            categories = [c for c in document.get("categories") or []
                          if isinstance(c, dict) and "keypoints" in c]
            if not categories:
                raise AnnotationError(
                    f"Expected a category with 'keypoints' in {str(spec)!r}. "
                    "Received none"
                )
            skeleton = skeleton_from_category(categories[0], str(spec))
        except (AnnotationError, OSError, ValueError, AttributeError) as error:
            raise ManifestError(
                f"Expected --keypoints {FIGURE} or a COCO keypoint JSON file. "
                f"Received {str(spec)!r}: {error}"
            ) from error
        sigmas = _sigmas(categories[0].get("sigmas"), skeleton, spec)
    names = list(skeleton.names)
    if not set(HEAD_SEGMENT) <= set(names) and sigmas is None:
        raise ManifestError(
            f"Expected keypoints with a head segment {list(HEAD_SEGMENT)} (for "
            "PCKh) or OKS sigmas (COCO's person names, or a category's 'sigmas') "
            f"in {str(spec)!r}. Received names {names}"
        )
    return {
        "names": names,
        "edges": [list(edge) for edge in skeleton.edges],
        "flip_pairs": [list(pair) for pair in skeleton.flip_pairs],
        "sigmas": None if sigmas is None else [float(s) for s in sigmas],
    }


def _sigmas(given, skeleton, spec):
    if given is None:
        return skeleton.sigmas
    valid = (isinstance(given, list) and len(given) == len(skeleton.names)
             and all(isinstance(s, (int, float)) and not isinstance(s, bool)
                     and math.isfinite(s) and s > 0 for s in given))
    if not valid:
        raise ManifestError(
            f"Expected 'sigmas' as {len(skeleton.names)} positive numbers (one per "
            f"keypoint) in {str(spec)!r}. Received: {given!r}"
        )
    return tuple(given)
