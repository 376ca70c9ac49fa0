"""Image file bytes → the model's input tensor, driven only by `metadata.preprocessing` (SPEC 0.4).

This is the one preprocessing path of the repository: the cifar10 trainer builds its training
tensors and evaluates its exported models through it, and every image service serves through
it, so training and serving cannot differ. The canonical copy is
chapter2_training/cifar10/src/image_input.py; every other `image_input.py` in the repository is a
byte-identical copy (tests/test_artifacts.py checks it). It needs numpy and Pillow, not torch.

Refusals raise ImageInputError subclasses that carry the HTTP status and error code of SPEC 0.4
and 0.6, so that a service turns them into its error envelope without a table of its own.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP"})
RESIZE_MODES = ("direct", "shorter_side_then_center_crop")
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
LAYOUTS = ("NCHW", "NHWC")
URL_SAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")

ImageTensor = NDArray[np.float32]  # one image: [3, H, W] (NCHW) or [H, W, 3] (NHWC)


class ImageInputError(ValueError):
    """Input an image service must refuse; `status` and `code` say how (SPEC 0.6)."""

    status = 422
    code = "invalid_input"


class BadBase64(ImageInputError):
    status = 422
    code = "invalid_input"


class ImageTooLarge(ImageInputError):
    status = 413
    code = "payload_too_large"


class NotAnImage(ImageInputError):
    status = 415
    code = "unsupported_media_type"


@dataclass(frozen=True)
class Resize:
    mode: str  # "direct" or "shorter_side_then_center_crop"
    size: tuple[int, int]  # (H, W) of the tensor
    shorter_side: int | None = None  # the shorter side before the centre crop
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class Preprocessing:
    """The `preprocessing` object of an image model's metadata.json (SPEC 0.4 rule 5)."""

    resize: Resize
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1 / 255
    background: tuple[int, int, int] = (255, 255, 255)
    color_mode: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"

    @classmethod
    def from_metadata(cls, document: dict[str, Any]) -> Preprocessing:
        """Reads and checks the metadata object; a bad one raises ValueError naming the field."""
        resize = document["resize"]
        size = tuple(int(side) for side in resize["size"])
        shorter = resize.get("shorter_side")
        preprocessing = cls(
            resize=Resize(
                mode=str(resize["mode"]),
                size=(size[0], size[1]) if len(size) == 2 else (0, 0),
                shorter_side=int(shorter) if shorter is not None else None,
                interpolation=str(resize.get("interpolation", "bilinear")),
            ),
            mean=_triple(document["mean"], "mean", float),
            std=_triple(document["std"], "std", float),
            scale=float(document.get("scale", 1 / 255)),
            background=_triple(document.get("background", (255, 255, 255)), "background", int),
            color_mode=str(document.get("color_mode", "RGB")),
            layout=str(document.get("layout", "NCHW")),
            dtype=str(document.get("dtype", "float32")),
        )
        preprocessing.check()
        return preprocessing

    def check(self) -> None:
        problems = []
        if self.resize.mode not in RESIZE_MODES:
            problems.append(f"resize.mode {self.resize.mode!r} is not one of {RESIZE_MODES}")
        if min(self.resize.size) <= 0:
            problems.append(f"resize.size {list(self.resize.size)} is not [H, W] > 0")
        if self.resize.mode == "shorter_side_then_center_crop" and (
            self.resize.shorter_side is None or self.resize.shorter_side < max(self.resize.size)
        ):
            problems.append("resize.shorter_side must be at least the crop size")
        if self.resize.interpolation not in INTERPOLATIONS:
            problems.append(f"resize.interpolation {self.resize.interpolation!r} is unknown")
        if any(value <= 0 for value in self.std):
            problems.append("std must be positive")
        if self.color_mode != "RGB" or self.dtype != "float32" or self.layout not in LAYOUTS:
            problems.append("only color_mode RGB, dtype float32 and layout NCHW/NHWC are served")
        if problems:
            raise ValueError("preprocessing: " + "; ".join(problems))

    def to_metadata(self) -> dict[str, Any]:
        resize: dict[str, Any] = {
            "mode": self.resize.mode,
            "size": list(self.resize.size),
            "interpolation": self.resize.interpolation,
        }
        if self.resize.shorter_side is not None:
            resize["shorter_side"] = self.resize.shorter_side
        return {
            "color_mode": self.color_mode,
            "background": list(self.background),
            "resize": resize,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": self.layout,
            "dtype": self.dtype,
        }

    @property
    def tensor_shape(self) -> tuple[int, int, int]:
        """The shape of one preprocessed image (without the batch axis)."""
        height, width = self.resize.size
        return (3, height, width) if self.layout == "NCHW" else (height, width, 3)


def _triple(values: Any, name: str, kind: type[Any]) -> Any:
    items = tuple(kind(value) for value in values)
    if len(items) != 3:
        raise ValueError(f"preprocessing: {name} needs 3 values (R, G, B), got {len(items)}")
    return items


def decode_base64(text: str | bytes, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> bytes:
    """Standard or URL-safe base64, padding optional, whitespace ignored → the file's bytes.
    413 when the decoded file would exceed `max_bytes` (checked before decoding)."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    raw = b"".join(raw.split()).translate(URL_SAFE_TO_STANDARD)
    if len(raw) * 3 // 4 > max_bytes + 2:
        raise ImageTooLarge(f"image larger than {max_bytes} bytes (MAX_IMAGE_BYTES)")
    if not raw:
        raise BadBase64("image_data is empty")
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadBase64(f"image_data is not base64: {error}") from error
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image of {len(data)} bytes; at most {max_bytes} (MAX_IMAGE_BYTES)")
    return data


def open_image(
    data: bytes,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """The decoded image as RGB: EXIF orientation applied, first frame of an animation, alpha
    composited onto `background`. The bytes themselves are never modified."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image of {len(data)} bytes; at most {max_bytes} (MAX_IMAGE_BYTES)")
    if not data:
        raise NotAnImage("empty image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its pixel limit and raises above twice it: both are bombs here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise NotAnImage(
                    f"{image.format or 'unknown'} images are not accepted "
                    f"({', '.join(sorted(ACCEPTED_FORMATS))})"
                )
            image.load()  # the first frame only
            image = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLarge(f"too many pixels: {error}") from error
    except UnidentifiedImageError as error:
        raise NotAnImage("not an image file PNG, JPEG, GIF, BMP or WebP can decode") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data
        if isinstance(error, ImageInputError):
            raise
        raise NotAnImage(f"the image file is corrupt: {error}") from error
    return to_rgb(image, background)


def to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any mode → RGB; transparency (alpha, palette or LA) composited onto `background`."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = image.convert("L")  # 16/32-bit grayscale: RGB conversion would clip wrongly
    return image if image.mode == "RGB" else image.convert("RGB")


def resize(image: Image.Image, spec: Resize) -> Image.Image:
    height, width = spec.size
    method = INTERPOLATIONS[spec.interpolation]
    if spec.mode == "direct":
        return image.resize((width, height), method)
    shorter = spec.shorter_side or max(height, width)
    scale = shorter / min(image.size)
    scaled = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))), method
    )
    left = (scaled.width - width) // 2
    top = (scaled.height - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def image_tensor(image: Image.Image, preprocessing: Preprocessing) -> ImageTensor:
    """An RGB image → one normalised float32 tensor in the model's layout (no batch axis)."""
    pixels = np.asarray(resize(image, preprocessing.resize), dtype=np.float32)
    mean = np.asarray(preprocessing.mean, dtype=np.float32)
    std = np.asarray(preprocessing.std, dtype=np.float32)
    values = (pixels * np.float32(preprocessing.scale) - mean) / std
    if preprocessing.layout == "NCHW":
        values = values.transpose(2, 0, 1)
    return np.ascontiguousarray(values, dtype=np.float32)


def preprocess(
    data: bytes, preprocessing: Preprocessing, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> ImageTensor:
    """Image file bytes → one input tensor: decode, RGB, resize, normalise (SPEC 0.4)."""
    return image_tensor(open_image(data, max_bytes, preprocessing.background), preprocessing)
