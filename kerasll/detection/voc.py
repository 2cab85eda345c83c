"""Pascal VOC XML annotations (one `<annotation>` file per image)."""

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from kerasll.detection.annotations import (
    AnnotationError,
    AnnotationSet,
    ImageAnnotation,
    check_box,
    check_image_size,
)

_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


def load_voc(path, class_names=None):
    """Loads Pascal VOC XML annotations.

    Args:
        path: a folder of .xml files (e.g. VOCdevkit/VOC2007/Annotations), one
            .xml file, or a list of .xml files.
        class_names: the classes, in label order; objects of other classes are
            an error. None: the sorted names found in the files.

    Returns:
        An `AnnotationSet`, images in file-name order. Boxes are VOC's pixel
        coordinates as written (1-based, inclusive).

    Raises:
        AnnotationError: no .xml files, a file that is not VOC XML, a missing
            or non-numeric field, an image size below 1, a degenerate box or
            one outside its image (see `check_box`), or an unknown class; the
            message names the file and the object.
    """
    files = _xml_files(path)
    parsed = [_parse(file) for file in files]
    found = sorted({name for _, objects in parsed for name, _, _, _ in objects})
    names = tuple(found if class_names is None else (str(n) for n in class_names))
    index = {name: i for i, name in enumerate(names)}
    images = []
    for header, objects in parsed:
        for name, _, _, where in objects:
            if name not in index:
                raise AnnotationError(
                    f"Expected object names among class_names {list(names)} in "
                    f"{where}. Received {name!r}."
                )
        images.append(
            ImageAnnotation(
                file_name=header["filename"],
                width=header["width"],
                height=header["height"],
                boxes=np.asarray(
                    [box for _, box, _, _ in objects], np.float32
                ).reshape(-1, 4),
                labels=np.asarray(
                    [index[name] for name, _, _, _ in objects], np.int64
                ),
                difficult=np.asarray([hard for _, _, hard, _ in objects], bool),
            )
        )
    return AnnotationSet(tuple(images), names)


def _xml_files(path):
    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
    else:
        path = Path(path)
        files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    missing = [str(file) for file in files if not file.is_file()]
    if not files or missing:
        raise AnnotationError(
            "Expected Pascal VOC .xml files (a folder of them, a file or a list). "
            f"Received {str(path)!r}: "
            + (f"no such file(s) {missing}." if missing else "no .xml files.")
        )
    return files


def _text(element, tag, file, convert=str):
    child = element.find(tag)
    text = None if child is None or child.text is None else child.text.strip()
    if not text:
        raise AnnotationError(f"Expected <{tag}> in {file}. Received none.")
    try:
        return convert(text)
    except ValueError:
        raise AnnotationError(
            f"Expected <{tag}> in {file} as {convert.__name__}. Received {text!r}."
        ) from None


def _parse(file):
    try:
        root = ElementTree.parse(file).getroot()
    except ElementTree.ParseError as error:
        raise AnnotationError(
            f"Expected well-formed Pascal VOC XML in {file}. Received a parse "
            f"error: {error}."
        ) from None
    if root.tag != "annotation":
        raise AnnotationError(
            f"Expected a root <annotation> element in {file}. Received <{root.tag}>."
        )
    size = root.find("size")
    if size is None:
        raise AnnotationError(f"Expected <size> in {file}. Received none.")
    header = {
        "filename": _text(root, "filename", file),
        "width": _text(size, "width", file, int),
        "height": _text(size, "height", file, int),
    }
    check_image_size(header["width"], header["height"], file)
    objects = []
    for number, element in enumerate(root.findall("object")):
        where = f"{file}, object {number}"
        bndbox = element.find("bndbox")
        if bndbox is None:
            raise AnnotationError(f"Expected <bndbox> in {where}. Received none.")
        name = _text(element, "name", where)
        where = f"{where} ({name!r})"
        box = check_box([_text(bndbox, tag, where) for tag in _BOX_TAGS], where,
                        header["width"], header["height"])
        difficult = element.find("difficult")
        hard = difficult is not None and (difficult.text or "0").strip() == "1"
        objects.append((name, box, hard, where))
    return header, objects
