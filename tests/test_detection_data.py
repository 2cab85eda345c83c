"""Synthetic CIFAR scenes, and VOC XML / COCO JSON loading with bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from kerasll.detection.annotations import AnnotationError, to_scenes
from kerasll.detection.coco import load_coco
from kerasll.detection.scenes import (
    SceneDataError,
    load_cifar_scenes,
    make_scenes,
)
from kerasll.detection.voc import load_voc
from data_helpers import CIFAR10


def _sources(count=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8), rng.integers(
        0, 3, count
    )


def test_scenes_are_deterministic_and_boxes_hold_the_pasted_images():
    images, labels = _sources()
    scenes = make_scenes(images, labels, 6, scene_size=48, max_objects=4, seed=3)
    again = make_scenes(images, labels, 6, scene_size=48, max_objects=4, seed=3)
    other = make_scenes(images, labels, 6, scene_size=48, max_objects=4, seed=4)
    assert scenes.images.shape == (6, 48, 48, 3) and scenes.images.dtype == np.uint8
    np.testing.assert_array_equal(scenes.images, again.images)
    assert not np.array_equal(scenes.images, other.images)
    assert len(scenes.boxes) == len(scenes.labels) == 6
    for boxes, classes in zip(scenes.boxes, scenes.labels):
        assert 1 <= len(boxes) <= 4 and len(classes) == len(boxes)
        assert np.all((boxes >= 0) & (boxes <= 1))
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        assert set(classes.tolist()) <= set(labels.tolist())
    subset = scenes.take([2, 0])
    np.testing.assert_array_equal(subset.images[1], scenes.images[0])


def test_scenes_reject_bad_sources():
    images, labels = _sources()
    with pytest.raises(
        SceneDataError, match=r"dtype uint8.*Received shape \(12, 32, 32\)"
    ):
        make_scenes(images[..., 0], labels, 2)
    with pytest.raises(SceneDataError, match="one label per source image"):
        make_scenes(images, labels[:3], 2)
    with pytest.raises(SceneDataError, match="count >= 1. Received .*count=0"):
        make_scenes(images, labels, 0)


@pytest.mark.cifar
def test_cifar_scenes_come_from_the_matching_split():
    train, test = load_cifar_scenes(
        CIFAR10, train_count=3, test_count=2, scene_size=64
    )
    assert len(train) == 3 and len(test) == 2
    assert train.class_names[0] == "airplane"
    assert train.images.shape[1:] == (64, 64, 3)


def test_cifar_scenes_name_a_missing_file(tmp_path):
    with pytest.raises(SceneDataError, match="No such file"):
        load_cifar_scenes(tmp_path / "absent.npz")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(
        SceneDataError, match=r"missing \['x_test', 'y_test', 'y_train'\]"
    ):
        load_cifar_scenes(tmp_path / "partial.npz")


VOC_XML = """<annotation>
  <filename>{name}.png</filename>
  <size><width>40</width><height>20</height><depth>3</depth></size>
  <object><name>dog</name><difficult>0</difficult>
    <bndbox><xmin>4</xmin><ymin>2</ymin><xmax>20</xmax><ymax>18</ymax></bndbox>
  </object>
  <object><name>cat</name><difficult>1</difficult>
    <bndbox><xmin>22</xmin><ymin>0</ymin><xmax>40</xmax><ymax>10</ymax></bndbox></object>
</annotation>"""


def _write_image(folder, name, size=(40, 20)):
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(folder / name)


def test_voc_folder_loads_into_scenes(tmp_path):
    for name in ("b", "a"):
        (tmp_path / f"{name}.xml").write_text(VOC_XML.format(name=name))
        _write_image(tmp_path, f"{name}.png")
    annotations = load_voc(tmp_path)
    assert annotations.class_names == ("cat", "dog")
    first = annotations.images[0]
    assert (first.file_name, first.width, first.height) == ("a.png", 40, 20)
    np.testing.assert_array_equal(first.labels, [1, 0])
    np.testing.assert_array_equal(first.difficult, [False, True])
    np.testing.assert_allclose(first.normalized_boxes()[0], [0.1, 0.1, 0.5, 0.9])
    scenes = to_scenes(annotations, tmp_path, image_size=(16, 16))
    assert scenes.images.shape == (2, 16, 16, 3)
    assert [len(b) for b in scenes.boxes] == [1, 1]  # difficult objects left out


def _voc_object(name, box, size=(32, 32)):
    xmin, ymin, xmax, ymax = box
    return (
        f"<annotation><filename>a.png</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height></size>"
        f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object></annotation>"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("<annotation><size>", "well-formed Pascal VOC XML"),
        ("<root/>", "root <annotation> element.*Received <root>"),
        ("<annotation><filename>a.png</filename></annotation>", "Expected <size>"),
        (
            VOC_XML.format(name="a").replace("<width>40", "<width>forty"),
            "<width> in .* as int. Received 'forty'",
        ),
        (
            VOC_XML.format(name="a").replace("<xmax>20", "<xmax>3"),
            r"xmax > xmin .* object 0 \('dog'\). Received .*\[4.0, 2.0, 3.0, 18.0\]",
        ),
        (
            VOC_XML.format(name="a").replace("<ymin>2</ymin>", ""),
            r"Expected <ymin> in .*object 0 \(.dog.\). Received none",
        ),
        # Boxes outside their image, and an image size below 1.
        (
            _voc_object("dog", (40, 41, 60, 62)),
            r"box inside its 32x32 image in .*bad.xml, object 0 \('dog'\). "
            r"Received .*\[40.0, 41.0, 60.0, 62.0\]",
        ),
        (_voc_object("dog", (-3, 0, 10, 10)), r"inside its 32x32 image"),
        (_voc_object("dog", (0, 0, 10, 34)), r"inside its 32x32 image"),
        (_voc_object("dog", (5, 5, 5, 9)), r"xmax > xmin .*object 0 \('dog'\)"),
        (
            _voc_object("dog", (0, 0, 4, 4), size=(0, 32)),
            r"width and height as integers >= 1 in .*bad.xml. Received .*\(0, 32\)",
        ),
    ],
)
def test_voc_bad_input_is_named(tmp_path, text, message):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        load_voc(path)


def test_voc_unknown_class_and_missing_files(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(VOC_XML.format(name="a"))
    with pytest.raises(
        AnnotationError,
        match=r"among class_names \['dog'\] in .*a.xml, object 1 \('cat'\)",
    ):
        load_voc(path, class_names=["dog"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match="no .xml files"):
        load_voc(tmp_path / "empty")
    with pytest.raises(AnnotationError, match="no such file"):
        load_voc([tmp_path / "missing.xml"])


def _coco():
    return {
        "images": [
            {"id": 7, "file_name": "x.png", "width": 40, "height": 20},
            {"id": 9, "file_name": "y.png", "width": 40, "height": 20},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [4, 2, 16, 16]},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 10]},
            {
                "id": 3,
                "image_id": 9,
                "category_id": 3,
                "bbox": [0, 0, 40, 20],
                "iscrowd": 1,
            },
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
    }


def test_coco_json_loads_into_scenes(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_coco()))
    annotations = load_coco(path)
    assert annotations.class_names == ("car", "dog")  # sorted by category id
    first, second = annotations.images
    np.testing.assert_array_equal(first.labels, [1, 0])
    np.testing.assert_allclose(first.boxes[0], [4, 2, 20, 18])
    assert len(second.boxes) == 0  # the crowd annotation is left out
    _write_image(tmp_path, "x.png")
    _write_image(tmp_path, "y.png")
    scenes = to_scenes(annotations, tmp_path, image_size=(8, 8))
    np.testing.assert_allclose(scenes.boxes[0][0], [0.1, 0.1, 0.5, 0.9])


def _edit(change):
    data = _coco()
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "valid JSON"),
        (json.dumps({"images": []}), r"missing \['annotations', 'categories'\]"),
        (
            _edit(lambda d: d["annotations"][0].update(image_id=99)),
            r"image_id among the images' ids in .*annotations\[0\]. Received 99",
        ),
        (
            _edit(lambda d: d["annotations"][0].update(category_id=5)),
            r"category_id among \[3, 18\] .* Received 5",
        ),
        (
            _edit(lambda d: d["annotations"][1].update(bbox=[0, 0, 10])),
            r"bbox as \[x, y, width, height\] in .*annotations\[1\]",
        ),
        (
            _edit(lambda d: d["annotations"][1].update(bbox=[0, 0, 0, 10])),
            "xmax > xmin",
        ),
        (_edit(lambda d: d["images"][0].pop("width")), "without 'width'"),
        # Boxes outside their image, and an image size below 1.
        (
            _edit(lambda d: d["annotations"][0].update(bbox=[30, 2, 16, 16])),
            r"box inside its 40x20 image in .*annotations\[0\]. "
            r"Received .*\[30.0, 2.0, 46.0, 18.0\]",
        ),
        (
            _edit(lambda d: d["annotations"][1].update(bbox=[-5, 0, 10, 10])),
            r"inside its 40x20 image in .*annotations\[1\]",
        ),
        (
            _edit(lambda d: d["images"][0].update(height=0)),
            r"width and height as integers >= 1 in .*image 7 \('x.png'\)",
        ),
    ],
)
def test_coco_bad_input_is_named(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        load_coco(path)


def test_to_scenes_names_a_missing_image(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(VOC_XML.format(name="a"))
    with pytest.raises(AnnotationError, match="readable image at .*a.png"):
        to_scenes(load_voc(path), tmp_path)


def test_voc_clips_a_corner_within_a_pixel_and_names_an_unknown_object(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(_voc_object("dog", (0, 1, 32.5, 32)))
    np.testing.assert_allclose(load_voc(path).images[0].boxes, [[0, 1, 32, 32]])
    with pytest.raises(
        AnnotationError, match=r"a.xml, object 0 \('dog'\). Received 'dog'"
    ):
        load_voc(path, class_names=["cat"])


def test_simulate_refuses_an_out_of_image_box_before_writing(tmp_path):
    from click.testing import CliRunner

    from kerasll_cli import main

    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for index in range(4):
        box = (40, 41, 60, 62) if index == 2 else (4, 4, 20, 20)
        (voc / "Annotations" / f"{index}.xml").write_text(
            _voc_object("dog", box).replace("a.png", f"{index}.png")
        )
        _write_image(voc / "JPEGImages", f"{index}.png", size=(32, 32))
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "simulate", "--task", "detection", "--dataset", str(voc), "--out", str(out),
    ])
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "2.xml, object 0 ('dog')" in result.output
    assert "inside its 32x32 image" in result.output
    assert not out.exists()
