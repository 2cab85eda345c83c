"""COCO keypoint JSON: what is read, and every refusal named in one line."""

import json

import numpy as np
import pytest
from PIL import Image

from kerasll.detection.annotations import AnnotationError
from kerasll.keypoints.coco import COCO_SIGMAS, load_coco_keypoints, to_figures

NAMES = ["nose", "left_eye", "right_eye"]


def _coco():
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.jpg", "width": 20, "height": 20},
        ],
        "categories": [
            {"id": 1, "name": "person", "keypoints": NAMES,
             "skeleton": [[1, 2], [1, 3]]},
            {"id": 2, "name": "dog"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1,
             "keypoints": [10, 5, 2, 12, 4, 1, 0, 0, 0],
             "bbox": [5, 2, 20, 25], "area": 300.0, "num_keypoints": 2},
            {"id": 11, "image_id": 1, "category_id": 1,
             "keypoints": [40, 30, 2, 38, 28, 2, 36, 28, 2]},
            {"id": 12, "image_id": 1, "category_id": 2, "bbox": [1, 1, 2, 2]},
            {"id": 13, "image_id": 2, "category_id": 1, "iscrowd": 1,
             "keypoints": [1, 1, 2] * 3},
        ],
    }


def _write(tmp_path, data):
    path = tmp_path / "person_keypoints.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_people_and_skeleton_are_read(tmp_path):
    annotations = load_coco_keypoints(_write(tmp_path, _coco()))
    skeleton = annotations.skeleton
    assert skeleton.names == tuple(NAMES)
    assert skeleton.edges == ((0, 1), (0, 2))  # 1-based in the file
    assert skeleton.flip_pairs == ((1, 2),)
    assert skeleton.sigmas == tuple(COCO_SIGMAS[name] for name in NAMES)
    first, second = annotations.images
    assert (first.file_name, first.width, first.height) == ("a.jpg", 40, 30)
    np.testing.assert_allclose(first.keypoints[0], [[10, 5], [12, 4], [0, 0]])
    np.testing.assert_array_equal(first.visibility, [[2, 1, 0], [2, 2, 2]])
    np.testing.assert_allclose(first.boxes[0], [5, 2, 25, 27])
    assert first.areas[0] == 300.0
    # Without bbox and area: the labeled keypoints' extent.
    np.testing.assert_allclose(first.boxes[1], [36, 28, 40, 30])
    assert first.areas[1] == pytest.approx(8.0)
    # The dog and the crowd are left out.
    assert len(second.keypoints) == 0 and second.keypoints.shape == (0, 3, 2)


def test_unknown_names_have_no_sigmas(tmp_path):
    data = _coco()
    data["categories"][0]["keypoints"] = ["head", "left_hand", "right_hand"]
    annotations = load_coco_keypoints(_write(tmp_path, data))
    assert annotations.skeleton.sigmas is None
    assert annotations.skeleton.flip_pairs == ((1, 2),)


def _edit(change):
    data = _coco()
    change(data)
    return data


@pytest.mark.parametrize(
    "data, message",
    [
        ("{not json", "valid JSON"),
        ({"images": []}, r"missing \['annotations', 'categories'\]"),
        (
            _edit(lambda d: d["annotations"][0].update(keypoints=[1, 2, 2])),
            r"'keypoints' as 9 numbers \[x, y, v\] \* 3 in .*annotations\[0\] "
            r"\(image 'a.jpg'\). Received 3 values",
        ),
        (
            _edit(lambda d: d["annotations"][1].update(keypoints=[41.5, 3, 2] * 3)),
            r"labeled keypoints inside their 40x30 image in .*annotations\[1\] "
            r"\(image 'a.jpg'\). Received keypoint 0 at \(x, y\)=\[41.5, 3.0\]",
        ),
        (
            _edit(lambda d: d["annotations"][1].update(keypoints=[1, -2, 1] * 3)),
            "inside their 40x30 image",
        ),
        (
            _edit(lambda d: d["annotations"][0].update(keypoints=[1, 1, 3] * 3)),
            r"visibility flags in \{0, 1, 2\}",
        ),
        (
            _edit(lambda d: d["annotations"][0].update(keypoints=[1, "a", 2] * 3)),
            "9 numbers",
        ),
        (
            _edit(lambda d: d["annotations"][0].update(image_id=9)),
            r"image_id among the images' ids in .*annotations\[0\]. Received 9",
        ),
        (
            _edit(lambda d: d["annotations"][0].update(category_id=7)),
            r"category_id among \[1, 2\] .* Received 7",
        ),
        (
            _edit(lambda d: d["annotations"][0].update(bbox=[0, 0, 50, 10])),
            "box inside its 40x30 image",
        ),
        (_edit(lambda d: d["annotations"][0].update(area=-1)), "'area' as a finite"),
        (_edit(lambda d: d["categories"][0].pop("keypoints")), "exactly one category"),
        (
            _edit(lambda d: d["categories"][0].update(skeleton=[[0, 1]])),
            r"1-based keypoint indices in \[1, 3\]",
        ),
        (_edit(lambda d: d["images"][0].update(width=0)), "integers >= 1"),
    ],
)
def test_bad_input_is_named_in_one_line(tmp_path, data, message):
    with pytest.raises(AnnotationError, match=message) as error:
        load_coco_keypoints(_write(tmp_path, data))
    assert "\n" not in str(error.value)
    assert "person_keypoints.json" in str(error.value)


def test_a_keypoint_on_the_image_edge_is_kept_and_within_a_pixel_clipped(tmp_path):
    data = _edit(lambda d: d["annotations"][1].update(keypoints=[40.4, 30, 2] * 3))
    annotations = load_coco_keypoints(_write(tmp_path, data))
    np.testing.assert_allclose(annotations.images[0].keypoints[1], [[40, 30]] * 3)


def test_people_are_cropped_into_figures_with_their_keypoints(tmp_path):
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    image[7, 12] = (255, 0, 0)  # pixel (x=12, y=7): continuous center (12.5, 7.5)
    Image.fromarray(image).save(tmp_path / "a.jpg", quality=100, subsampling=0)
    Image.fromarray(image[:20, :20]).save(tmp_path / "b.jpg")
    data = _coco()
    data["annotations"][0].update(
        bbox=[10, 5, 20, 20], keypoints=[20, 15, 2, 12.5, 7.5, 2, 29, 20, 1]
    )
    path = _write(tmp_path, data)
    figures = to_figures(load_coco_keypoints(path), tmp_path, image_size=20,
                         padding=0.0)
    # The person without a box is cropped too; the crowd is not a person.
    assert len(figures) == 2 and figures.images.shape == (2, 20, 20, 3)
    # Box [10, 5, 30, 25] -> the whole 20x20 crop, scale 1: a continuous
    # coordinate c becomes the pixel-center coordinate c - corner - 0.5.
    np.testing.assert_allclose(
        figures.keypoints[0], [[9.5, 9.5], [2, 2], [18.5, 14.5]]
    )
    np.testing.assert_array_equal(figures.visibility[0], [2, 2, 1])
    red = figures.images[0, 2, 2]
    assert red[0] > 200 and red[1] < 60
    assert figures.areas[0] == 300.0 and np.all(np.isnan(figures.head_sizes))
    assert figures.skeleton.names == tuple(NAMES)
    # Padding shrinks the person: scale 20 / 30, keypoints nearer the center.
    padded = to_figures(load_coco_keypoints(path), tmp_path, image_size=20,
                        padding=0.25)
    np.testing.assert_allclose(padded.keypoints[0, 0], [9.5, 9.5], atol=1e-5)
    assert padded.areas[0] == pytest.approx(300.0 * (20 / 30) ** 2)


def test_a_missing_image_is_named(tmp_path):
    path = _write(tmp_path, _coco())
    with pytest.raises(AnnotationError, match="readable image at .*a.jpg"):
        to_figures(load_coco_keypoints(path), tmp_path)
