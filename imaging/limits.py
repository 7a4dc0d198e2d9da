"""The one check every uploaded image passes before a pixel is decoded: its bytes, its real kind,
the width and height its header declares, and format details that make a small file slow.

Photo intake and verify call `check_image` with their own `ImageLimits`; a refusal is an
`ImageRejected` whose `reason` lets each caller word it for its own page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from PIL import Image

from imaging.sniff import IMAGE_KINDS, PARSED_KINDS, Header, read_header, sniff, too_large

# One side more than this many times the other is a strip, not a picture: nothing Candor makes or
# checks looks like that, and resizing one to a standard size leaves a side of 0 pixels.
MAX_ASPECT = 20
# libjpeg writes 10 scans for a progressive colour JPEG (18 for CMYK); each extra scan is another
# pass over every block, so thousands of tiny ones make a 100 kB file take minutes to decode.
MAX_JPEG_SCANS = 32

KIND_NAMES = {
    "jpeg": "JPEG", "png": "PNG", "webp": "WebP", "heif": "HEIC", "avif": "AVIF",
    "gif": "GIF", "tiff": "TIFF", "bmp": "BMP",
}  # fmt: skip


def kind_name(pillow_format: str | None) -> str:
    """The name people know a format by, from Pillow's name for it (MPO is a phone's JPEG)."""
    kind = "jpeg" if pillow_format == "MPO" else (pillow_format or "").lower()
    return KIND_NAMES.get(kind, pillow_format or "image")


class Reason(StrEnum):
    EMPTY = "empty"
    TOO_LARGE = "too_large"  # bytes
    SVG = "svg"
    TEXT = "text"  # plain text or a web page
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED = "unsupported"
    DAMAGED = "damaged"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_SMALL = "too_small"
    TOO_NARROW = "too_narrow"
    TOO_MANY_SCANS = "too_many_scans"
    ANIMATED = "animated"


MESSAGES = {
    Reason.EMPTY: "The file is empty.",
    Reason.SVG: "This is an SVG drawing, not a picture made of pixels. Upload a {accepted} image.",
    Reason.TEXT: "This is a text or web page file, not an image. Upload a {accepted} image.",
    Reason.NOT_AN_IMAGE: "This isn't an image. Upload a {accepted} file.",
    Reason.UNSUPPORTED: "{kind} images aren't supported here. Upload a {accepted} image.",
    Reason.DAMAGED: "This {kind} file is damaged or incomplete, so it could not be read.",
    Reason.TOO_MANY_PIXELS: (
        "The image declares {width}×{height} pixels, more than the {limit}-megapixel limit, "
        "so it was not opened."
    ),
    Reason.TOO_SMALL: (
        "This image is only {width}×{height} pixels; images need at least {min} pixels on the "
        "shorter side."
    ),
    Reason.TOO_NARROW: (
        "This image is {width}×{height} pixels: one side is more than {ratio} times the other, "
        "so it was not opened."
    ),
    Reason.TOO_MANY_SCANS: (
        "This JPEG is split into {scans} progressive scans, more than the {limit} that cameras "
        "and editors write, so it was not opened."
    ),
    Reason.ANIMATED: "Animated images can't be used: upload a still image.",
}
TOO_MANY_PIXELS_UNKNOWN = (
    "The image declares more pixels than the {limit}-megapixel limit, so it was not opened."
)


class ImageRejected(ValueError):
    """An upload that isn't an image this site will open. `message` says why, for a person;
    `reason` and `facts` let a caller say it in its own words."""

    def __init__(self, reason: Reason, message: str, **facts):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.facts = facts


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    min_side: int = 1
    max_aspect: float = MAX_ASPECT
    max_jpeg_scans: int = MAX_JPEG_SCANS
    kinds: frozenset[str] = IMAGE_KINDS  # what the caller takes; the rest are "unsupported"
    animated: bool = True  # False: refuse animations (a still photo is wanted)

    @property
    def accepted(self) -> str:
        names = [name for kind, name in KIND_NAMES.items() if kind in self.kinds]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


@dataclass(frozen=True)
class CheckedImage:
    kind: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def check_image(data: bytes, limits: ImageLimits) -> CheckedImage:
    """The kind and declared size of an image within `limits`, or ImageRejected. Reads headers
    only: no pixel is decoded, and Pillow never sees a size above the pixel limit."""
    if not data:
        _refuse(Reason.EMPTY, limits)
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            Reason.TOO_LARGE, too_large(len(data), limits.max_bytes), size=len(data)
        )
    kind = sniff(data)
    if kind == "svg":
        _refuse(Reason.SVG, limits)
    if kind in ("html", "text"):
        _refuse(Reason.TEXT, limits)
    if kind not in IMAGE_KINDS:
        _refuse(Reason.NOT_AN_IMAGE, limits)
    if kind not in PARSED_KINDS and kind not in limits.kinds:
        # Not a kind we read the size of ourselves, and refused anyway: don't load its opener.
        _refuse(Reason.UNSUPPORTED, limits, kind=KIND_NAMES[kind])
    parsed = kind in PARSED_KINDS
    header = read_header(data, kind) if parsed else _opened_header(data, kind, limits)
    if header is None or not header.width or not header.height:
        _refuse(Reason.DAMAGED, limits, kind=KIND_NAMES[kind])
    width, height = header.width, header.height
    if width * height > limits.max_pixels:
        _too_many_pixels(limits, width, height)
    if min(width, height) < limits.min_side:
        _refuse(Reason.TOO_SMALL, limits, width=width, height=height, min=limits.min_side)
    if max(width, height) > limits.max_aspect * min(width, height):
        _refuse(Reason.TOO_NARROW, limits, width=width, height=height, ratio=limits.max_aspect)
    if header.jpeg_scans > limits.max_jpeg_scans:
        _refuse(Reason.TOO_MANY_SCANS, limits, scans=header.jpeg_scans, limit=limits.max_jpeg_scans)
    if header.bmp_rle:  # Pillow decodes RLE runs in Python: seconds for a small file
        _refuse(Reason.UNSUPPORTED, limits, kind="Run-length-compressed BMP")
    # An animated GIF is told it moves (the fix that matters) before it is told GIF isn't taken.
    if not limits.animated and kind in ("gif", "png", "webp") and _is_animated(data, kind, limits):
        _refuse(Reason.ANIMATED, limits)
    if kind not in limits.kinds:
        _refuse(Reason.UNSUPPORTED, limits, kind=KIND_NAMES[kind])
    return CheckedImage(kind, width, height)


def open_image(data: bytes, checked: CheckedImage, limits: ImageLimits) -> Image.Image:
    """Open a checked image lazily (header only). Its size is checked again, as Pillow read it."""
    image = _open(data, checked.kind, limits)
    width, height = image.size
    if width * height > limits.max_pixels:
        _too_many_pixels(limits, width, height)
    return image


def _open(data: bytes, kind: str, limits: ImageLimits) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own cap (Image.MAX_IMAGE_PIXELS); the warning only when warnings are errors.
        _too_many_pixels(limits, 0, 0)
    except Exception:  # Pillow's openers fail on hostile bytes in many ways
        _refuse(Reason.DAMAGED, limits, kind=KIND_NAMES.get(kind, kind.upper()))


def _opened_header(data: bytes, kind: str, limits: ImageLimits) -> Header:
    return Header(*_open(data, kind, limits).size)


def _is_animated(data: bytes, kind: str, limits: ImageLimits) -> bool:
    try:
        return bool(getattr(_open(data, kind, limits), "is_animated", False))
    except ImageRejected:
        raise
    except Exception:  # a broken second frame: decoding will say it's damaged
        return False


def _too_many_pixels(limits: ImageLimits, width: int, height: int) -> NoReturn:
    limit = f"{limits.max_pixels / 1e6:g}"
    facts = {"width": width, "height": height, "limit": limit}
    if width and height:
        _refuse(Reason.TOO_MANY_PIXELS, limits, **facts)
    raise ImageRejected(Reason.TOO_MANY_PIXELS, TOO_MANY_PIXELS_UNKNOWN.format(**facts), **facts)


def _refuse(reason: Reason, limits: ImageLimits, **facts) -> NoReturn:
    message = MESSAGES[reason].format(accepted=limits.accepted, **facts)
    raise ImageRejected(reason, message, **facts)
