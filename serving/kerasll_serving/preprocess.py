"""Turning raw pool items into exactly what the graph input expects.

Pools hold raw captured values (e.g. uint8 pixels). The contract says how the
device must treat them: decode images as grayscale or RGB, resize them (only
when `preprocessing.resize` is set), scale and offset them when that is not
done inside the graph, and cast them to the input dtype.

Casting never wraps values around: when the items can hold values the
integer input dtype cannot (e.g. a uint16 or int64 pool for a uint8 input,
where 256 would become 0), each batch's min and max are checked before the
cast and a value out of range is a `PoolError`. The check is per batch, not
a pass over the whole pool up front (which would read a large pool twice):
a pool with a bad value far in is refused when that batch is reached. Pools
of the input's own dtype (the usual uint8) are not checked at all.
"""

import numpy as np
from PIL import Image

from kerasll_serving.contract import ContractError
from kerasll_serving.errors import PoolError

_PIL_MODES = {"grayscale": "L", "rgb": "RGB"}
_CHANNELS = {"L": 1, "RGB": 3}
# PIL modes of 16-bit grayscale (PNG, TIFF); PIL would clip them to 8 bits.
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


class InputAdapter:
    """Prepares pool items for one model.

    Args:
        contract: the model's `ModelContract`.

    Attributes:
        item_shape: shape of one item as the graph takes it (None = any size).
        dtype: numpy dtype of the graph input.

    Raises:
        ContractError: the input dtype or color mode in the metadata is unknown,
            or disagrees with the input's channel count.
    """

    def __init__(self, contract):
        self.contract = contract
        spec = contract.input
        self.item_shape = tuple(spec.shape[1:])
        try:
            self.dtype = np.dtype(spec.dtype)
        except TypeError as error:
            raise ContractError(
                "Expected a numpy dtype name for the input (e.g. 'uint8', "
                f"'float32'). Received: dtype={spec.dtype!r}"
            ) from error
        self._mode = self._pil_mode()

    def check_array(self, shape, dtype, source):
        """Checks an array pool against the input before anything is scored.

        Args:
            shape: shape of the whole pool array, items first.
            dtype: its numpy dtype.
            source: the pool's name, for messages.

        Returns:
            The per-item shape to reshape rows to (adds the channel axis of a
            one-channel image input when the pool stores (N, H, W)).

        Raises:
            PoolError: the item shape, channel count or dtype does not fit.
        """
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf":
            raise PoolError(
                f"Expected a numeric array pool. Received dtype {dtype} in {source}."
            )
        if self.dtype.kind in "biu" and dtype.kind == "f":
            raise PoolError(
                f"Expected raw {self.dtype} items for the {self.dtype} model input "
                f"{self.contract.input.name!r}. Received float array ({dtype}) in "
                f"{source}; casting would lose values."
            )
        items = tuple(shape[1:])
        if _fits(items, self.item_shape):
            return items
        is_image = self.contract.input.layout == "NHWC"
        one_channel = is_image and self.item_shape[-1] == 1
        if one_channel and _fits(items + (1,), self.item_shape):
            return items + (1,)
        raise PoolError(
            f"Expected pool items of shape {_show(self.item_shape)} for model input "
            f"{self.contract.input.name!r} ({self.contract.input.layout}). Received "
            f"an array of shape {tuple(shape)} (items of shape {items}) in {source}. "
            "Array pools are fed as they are: wrong size or channels is not fixed."
        )

    def check_images(self, source):
        """Checks that image files can feed this model at all.

        Args:
            source: the pool's name, for messages.

        Raises:
            PoolError: the input is not an NHWC image, or its spatial size is
                dynamic while the metadata sets no resize.
        """
        if self.contract.input.layout != "NHWC" or self._mode is None:
            raise PoolError(
                f"Expected a model with an NHWC image input (1 or 3 channels) for "
                f"the image pool {source}. Received input "
                f"{self.contract.input.name!r} of layout "
                f"{self.contract.input.layout} and shape {_show(self.item_shape)}."
            )
        if self._target_size() is None:
            raise PoolError(
                f"Expected a fixed image size: the model input has shape "
                f"{_show(self.item_shape)} and its metadata sets no "
                f"preprocessing.resize, so images of {source} cannot be batched."
            )

    def decode_image(self, path):
        """Reads one image file as an (H, W, C) uint8 array for this model.

        Args:
            path: the image file.

        Returns:
            The pixels, converted to the model's color mode (16-bit grayscale
            scaled to 8 bits) and resized when the metadata says how.

        Raises:
            OSError, ValueError (and other PIL errors): the file is unreadable
                or corrupt, holds 32-bit pixels of no known range, or has the
                wrong size and no resize is set.
        """
        height, width = self._target_size()
        with Image.open(path) as image:
            image = _to_eight_bits(image).convert(self._mode)
            if image.size != (width, height):
                if self.contract.preprocessing.resize is None:
                    raise ValueError(
                        f"image is {image.size[0]}x{image.size[1]} (WxH), the model "
                        f"expects {width}x{height} and its metadata sets no resize"
                    )
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)
        return pixels[..., None] if pixels.ndim == 2 else pixels

    def decoded_shape(self):
        """Returns the (H, W, C) shape `decode_image` produces."""
        height, width = self._target_size()
        return height, width, _CHANNELS[self._mode]

    def prepare(self, batch, source="the pool"):
        """Scales (when not done in the graph) and casts a batch of items.

        Args:
            batch: items stacked on axis 0, each of `item_shape`.
            source: where the batch comes from, for messages.

        Returns:
            A C-contiguous array of the input dtype.

        Raises:
            PoolError: the input dtype is an integer type and the batch holds
                values it cannot represent (casting would wrap them around).
        """
        preprocessing = self.contract.preprocessing
        if not preprocessing.in_graph:
            batch = (
                batch.astype(np.float32) * np.float32(preprocessing.scale)
                + np.float32(preprocessing.offset)
            )
        self._check_range(batch, source)
        return np.ascontiguousarray(batch, dtype=self.dtype)

    def _check_range(self, batch, source):
        """Refuses values an integer input dtype cannot hold (see module doc)."""
        if self.dtype.kind not in "iu" or batch.size == 0:
            return
        if np.can_cast(batch.dtype, self.dtype, casting="safe"):
            return
        info = np.iinfo(self.dtype)
        low, high = batch.min(), batch.max()
        if low >= info.min and high <= info.max:  # NaN fails both and is refused.
            return
        raise PoolError(
            f"Expected item values in [{info.min}, {info.max}] for the "
            f"{self.dtype} model input {self.contract.input.name!r}. Received "
            f"values in [{low}, {high}] ({batch.dtype}) in {source}; casting "
            f"would wrap them around (e.g. {info.max + 1} -> {info.min}). "
            f"Rescale the pool to {self.dtype} first."
        )

    def _target_size(self):
        resize = self.contract.preprocessing.resize
        if resize is not None:
            return int(resize[0]), int(resize[1])
        height, width = self.item_shape[0], self.item_shape[1]
        if height is None or width is None:
            return None
        return height, width

    def _pil_mode(self):
        """The PIL mode images decode to, or None for a non-image input."""
        if self.contract.input.layout != "NHWC" or len(self.item_shape) != 3:
            return None
        channels = self.item_shape[2]
        color_mode = self.contract.preprocessing.color_mode
        if color_mode is None:
            return {1: "L", 3: "RGB"}.get(channels)
        if color_mode not in _PIL_MODES:
            raise ContractError(
                f"Expected preprocessing.color_mode in {sorted(_PIL_MODES)} or "
                f"null. Received: {color_mode!r}"
            )
        mode = _PIL_MODES[color_mode]
        if channels not in (None, _CHANNELS[mode]):
            raise ContractError(
                f"Expected {_CHANNELS[mode]} input channel(s) for color_mode "
                f"{color_mode!r}. Received input shape {_show(self.item_shape)}."
            )
        return mode


def _to_eight_bits(image):
    """Scales 16-bit grayscale to 8 bits; refuses 32-bit pixels.

    PIL's `convert` clips 16-bit values to 255 (a mid-gray picture becomes
    white), so they are scaled here, 65535 -> 255. 32-bit integer or float
    pixels have no known range and are refused.

    Args:
        image: an open PIL image.

    Returns:
        A PIL image with 8 bits per channel.

    Raises:
        ValueError: 32-bit integer or float pixels.
    """
    sixteen_bit_png = image.mode == "I" and image.format == "PNG"
    if image.mode in _SIXTEEN_BIT_MODES or sixteen_bit_png:
        pixels = np.asarray(image).astype(np.uint32)
        return Image.fromarray(((pixels * 255 + 32767) // 65535).astype(np.uint8))
    if image.mode in ("I", "F"):
        raise ValueError(
            f"expected 8 or 16 bits per channel; received 32-bit pixels (PIL mode "
            f"{image.mode!r}) of unknown range: convert the image to 8 bits"
        )
    return image


def _fits(shape, expected):
    return len(shape) == len(expected) and all(
        want is None or want == got for got, want in zip(shape, expected)
    )


def _show(shape):
    return "(" + ", ".join("?" if size is None else str(size) for size in shape) + ")"
