"""Photo intake: sniff the real type, enforce limits, normalise, strip metadata.

Every refusal is a `PhotoRejected` with a message a creator can act on; nothing is stored for a
refused file. What passes is an upright sRGB JPEG with no metadata at all (no GPS, no camera
serial).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from config.refusal import Refusal
from imaging.decode import HEIF_SUPPORTED, jpeg_bytes, to_srgb
from imaging.phash import phash
from imaging.sniff import declared_size, sniff, too_large

ACCEPTED = "JPEG, PNG, WebP or HEIC"

EMPTY = "This file is empty."
NOT_AN_IMAGE = f"This isn't a photo. Upload a {ACCEPTED} image."
SVG = f"SVG drawings can't be used: upload a {ACCEPTED} photo."
HTML_OR_TEXT = f"This is a text or web page file, not a photo. Upload a {ACCEPTED} image."
UNSUPPORTED = f"{{kind}} images aren't supported. Upload a {ACCEPTED} photo."
ANIMATED = "Animated images can't be used: upload a still photo."
TOO_MANY_PIXELS = (
    "This image declares {width}×{height} pixels, more than the {limit}-megapixel limit, "
    "so it was not opened."
)
TOO_MANY_PIXELS_UNKNOWN = (
    "This image declares more pixels than the {limit}-megapixel limit, so it was not opened."
)
TOO_SMALL = (
    "This image is only {width}×{height} pixels; photos need at least {min} pixels "
    "on the shorter side."
)
DAMAGED = (
    "This photo is damaged or incomplete (it may have been cut off while uploading). "
    "Try the original file."
)


class PhotoRejected(Refusal):
    """A file that can't be a reference photo, and why."""


@dataclass(frozen=True)
class NormalisedPhoto:
    image: Image.Image  # RGB, upright, no metadata
    jpeg: bytes
    sha256: str
    phash: str  # 64-bit perceptual hash, hex


def photo_read(data: bytes) -> NormalisedPhoto:
    """Check and normalise one uploaded file. Raises PhotoRejected with the reason."""
    if not data:
        raise PhotoRejected(EMPTY)
    if len(data) > settings.PHOTO_MAX_BYTES:
        raise PhotoRejected(too_large(len(data), settings.PHOTO_MAX_BYTES))
    kind = sniff(data)
    if kind == "svg":
        raise PhotoRejected(SVG)
    if kind in ("html", "text"):
        raise PhotoRejected(HTML_OR_TEXT)
    if kind == "unknown":
        raise PhotoRejected(NOT_AN_IMAGE)
    if kind == "heif" and not HEIF_SUPPORTED:
        raise PhotoRejected(UNSUPPORTED.format(kind="HEIC"))
    if kind in ("avif", "bmp", "tiff"):
        raise PhotoRejected(UNSUPPORTED.format(kind=kind.upper()))
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise PhotoRejected(DAMAGED) from None
    except Image.DecompressionBombError:
        raise PhotoRejected(_too_many_pixels(*declared_size(data))) from None
    width, height = image.size
    # Refuse bombs from the declared size, before a single pixel is decoded.
    if width * height > settings.PHOTO_MAX_PIXELS:
        raise PhotoRejected(_too_many_pixels(width, height))
    if getattr(image, "is_animated", False) or getattr(image, "n_frames", 1) > 1:
        if kind != "heif":  # HEIC bursts and depth maps count as frames; use the primary image
            raise PhotoRejected(ANIMATED)
    if kind == "gif":
        raise PhotoRejected(UNSUPPORTED.format(kind="GIF"))
    if min(width, height) < settings.PHOTO_MIN_SIDE:
        raise PhotoRejected(
            TOO_SMALL.format(width=width, height=height, min=settings.PHOTO_MIN_SIDE)
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
        rgb = to_srgb(upright)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoRejected(DAMAGED) from None
    longest = settings.PHOTO_STORE_MAX_SIDE
    if max(rgb.size) > longest:
        rgb.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return _encode(rgb)


def _encode(rgb: Image.Image) -> NormalisedPhoto:
    rgb.info.clear()  # nothing from the original travels on: no EXIF, ICC, XMP or comments
    jpeg = jpeg_bytes(rgb, quality=92)
    return NormalisedPhoto(
        image=rgb, jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(), phash=phash(rgb)
    )


def _too_many_pixels(width: int, height: int) -> str:
    limit = f"{settings.PHOTO_MAX_PIXELS / 1e6:g}"
    if not width or not height:
        return TOO_MANY_PIXELS_UNKNOWN.format(limit=limit)
    return TOO_MANY_PIXELS.format(width=width, height=height, limit=limit)
