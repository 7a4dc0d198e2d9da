"""Photo intake: sniff the real type, enforce limits, normalise, strip metadata.

Every refusal is a `PhotoRejected` with a message a creator can act on; nothing is stored for a
refused file. What passes is an upright sRGB JPEG with no metadata at all (no GPS, no camera
serial).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps

from config.refusal import Refusal
from config.uploads import photo_limits
from imaging.decode import jpeg_bytes, load, to_srgb
from imaging.limits import ImageRejected, Reason, check_image, open_image
from imaging.phash import phash

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
    limits = photo_limits()
    try:
        # Bombs, strips and odd files are refused from their header, before a pixel is decoded.
        checked = check_image(data, limits)
        image = open_image(data, checked, limits)
        image = load(image, at_least=settings.PHOTO_STORE_MAX_SIDE)
        rgb = to_srgb(ImageOps.exif_transpose(image))
    except ImageRejected as exc:
        raise PhotoRejected(_photo_message(exc)) from None
    except Exception:  # a decoded image Pillow still can't turn upright or convert
        raise PhotoRejected(DAMAGED) from None
    longest = settings.PHOTO_STORE_MAX_SIDE
    if max(rgb.size) > longest:
        rgb.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return _encode(rgb)


# The photo page's words for imaging's refusals; the others (bytes, strips, JPEG scans) read the
# same for a photo as for any image.
_WORDING = {
    Reason.EMPTY: EMPTY,
    Reason.SVG: SVG,
    Reason.TEXT: HTML_OR_TEXT,
    Reason.NOT_AN_IMAGE: NOT_AN_IMAGE,
    Reason.UNSUPPORTED: UNSUPPORTED,
    Reason.DAMAGED: DAMAGED,
    Reason.TOO_SMALL: TOO_SMALL,
    Reason.ANIMATED: ANIMATED,
}


def _photo_message(exc: ImageRejected) -> str:
    if exc.reason == Reason.TOO_MANY_PIXELS:
        known = exc.facts["width"] and exc.facts["height"]
        return (TOO_MANY_PIXELS if known else TOO_MANY_PIXELS_UNKNOWN).format(**exc.facts)
    wording = _WORDING.get(exc.reason)
    return wording.format(**exc.facts) if wording else exc.message


def _encode(rgb: Image.Image) -> NormalisedPhoto:
    rgb.info.clear()  # nothing from the original travels on: no EXIF, ICC, XMP or comments
    jpeg = jpeg_bytes(rgb, quality=92)
    return NormalisedPhoto(
        image=rgb, jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(), phash=phash(rgb)
    )
