"""Decoding and re-encoding: HEIC support, decoding no more pixels than needed, any colour mode to
8-bit sRGB, plain JPEG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

from imaging.limits import MESSAGES, ImageRejected, Reason, kind_name

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - pillow-heif is a dependency; keep JPEG/PNG/WebP working
    HEIF_SUPPORTED = False

# The still-photo kinds uploads of pictures take (reference photos, selfies, labelled images).
PHOTO_KINDS = frozenset({"jpeg", "png", "webp"} | ({"heif"} if HEIF_SUPPORTED else set()))


def load(image: Image.Image, *, at_least: int | None = None) -> Image.Image:
    """Decode a lazily opened image; ImageRejected(DAMAGED) when it can't be.

    With `at_least`, a JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) while its
    longest side stays at least that long: a fraction of the work and memory for a photo that is
    shrunk anyway. Other formats decode in full; callers cap their pixels first.
    """
    if at_least and image.format in ("JPEG", "MPO") and max(image.size) > at_least:
        scale = at_least / max(image.size)
        image.draft(None, (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    try:
        image.load()
    except Exception:  # Pillow's decoders fail on hostile bytes in many ways
        kind = kind_name(image.format)
        raise ImageRejected(
            Reason.DAMAGED, MESSAGES[Reason.DAMAGED].format(kind=kind), kind=kind
        ) from None
    return image


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """The image with its longest side at most `max_side` (itself when it fits). Reduces by
    whole factors first (cheap box averaging), then Lanczos for the rest: half the time of
    Pillow's default gap of 2, and the watermark reads back the same."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)


def decode_srgb(image: Image.Image, *, max_side: int) -> Image.Image:
    """A lazily opened image decoded to 8-bit sRGB at most `max_side` long, with as little of the
    work as possible done at full size: JPEG's reduced decoding, then resizing before the colour
    conversions where the mode allows it."""
    image = load(image, at_least=max_side)
    if image.mode in ("1", "P", "PA"):  # no smooth resizing for these: expand them first
        has_alpha = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "L" if image.mode == "1" else "RGB")
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        image = shrink(image, max_side)
    return shrink(to_srgb(image), max_side)  # 16-bit and float modes: converted, then resized


def to_srgb(image: Image.Image) -> Image.Image:
    """Any mode to 8-bit sRGB, with transparency flattened onto white."""
    if image.mode.startswith("I") or image.mode == "F":
        image = _grey_to_8_bits(image)
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
            image = ImageCms.profileToProfile(image, source, target, outputMode=out_mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to a plain conversion
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _grey_to_8_bits(image: Image.Image) -> Image.Image:
    """16-bit (I;16*), 32-bit (I) or float (F) grey scaled to 8 bits by its range: a plain
    convert clips everything above 255 to white (and floats in 0..1 to black)."""
    array = np.asarray(image)
    if array.dtype.kind == "f":
        array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(array.max(initial=0))
    if image.mode.startswith("I;16"):
        peak = 65535.0
    elif image.mode == "F" and top <= 1.0:
        peak = 1.0  # floating-point images hold 0..1 by convention
    else:
        # Pillow opens 16-bit data as I too (and a TIFF holds no reliable hint of the range
        # used), so take the smallest usual range that holds every value.
        peak = next((p for p in (255.0, 65535.0, 2.0**31 - 1) if top <= p), top)
    scaled = array.astype(np.float32)  # 4 bytes a pixel, worked on in place
    scaled *= np.float32(255.0 / peak)
    scaled += np.float32(0.5)
    grey = Image.fromarray(np.clip(scaled, 0, 255, out=scaled).astype(np.uint8), "L")
    grey.info = dict(image.info)  # keep a grey ICC profile for the conversion that follows
    return grey


def jpeg_bytes(image: Image.Image, *, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
