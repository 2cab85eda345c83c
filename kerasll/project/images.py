"""Reading item images exactly as the device scorer does.

`decode` mirrors `kerasll_serving.preprocess.InputAdapter.decode_image`
(convert to the model's color mode, bilinear resize to its size), so the
pixels a model is trained on are the pixels a device feeds the exported graph.
"""

import hashlib
import io

import numpy as np
from PIL import Image

from kerasll.project.errors import SourceError

_MODES = {"grayscale": "L", "rgb": "RGB"}
_GRAY_MODES = ("L", "1", "I", "I;16", "LA")


def content_hash(data):
    """SHA-256 hex digest of a file's bytes: the item's identity."""
    return hashlib.sha256(data).hexdigest()


def inspect(data, name):
    """Size and color mode of an encoded image, decoding it fully.

    Args:
        data: the file's bytes.
        name: the file's name, for messages.

    Returns:
        ((height, width), "grayscale" or "rgb").

    Raises:
        SourceError: the bytes are not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            mode = "grayscale" if image.mode in _GRAY_MODES else "rgb"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise SourceError(
            f"Expected a readable image file. Received {name!r}, which cannot be "
            f"decoded ({type(error).__name__}: {error}); remove or replace it"
        ) from error
    return (height, width), mode


def decode(path, image_size, color_mode):
    """Reads one image as an (H, W, C) uint8 array.

    Args:
        path: the image file.
        image_size: (height, width) to resize to.
        color_mode: "grayscale" or "rgb".

    Returns:
        The pixels.
    """
    height, width = image_size
    with Image.open(path) as image:
        image = image.convert(_MODES[color_mode])
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def decode_many(paths, image_size, color_mode):
    """Reads images into one (N, H, W, C) uint8 array.

    Args:
        paths: image files.
        image_size: (height, width).
        color_mode: "grayscale" or "rgb".

    Returns:
        The stacked pixels.

    Raises:
        SourceError: a file that went missing or became unreadable since it
            was added.
    """
    arrays = []
    for path in paths:
        try:
            arrays.append(decode(path, image_size, color_mode))
        except (OSError, ValueError, SyntaxError) as error:
            raise SourceError(
                f"Expected the project's item {str(path)!r} to be a readable image. "
                f"Received: {type(error).__name__}: {error}"
            ) from error
    channels = 1 if color_mode == "grayscale" else 3
    if not arrays:
        return np.zeros((0, *image_size, channels), dtype=np.uint8)
    return np.stack(arrays)


def encode_png(pixels):
    """PNG bytes of an (H, W), (H, W, 1) or (H, W, 3) uint8 array."""
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
