"""The files every post is served as, made once from the original: their sizes and how each is
drawn. Verify reads the same sizes to find a watermark in a resized copy."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont, ImageOps

from gallery.provenance.xmp import (
    COMPOSITE_SYNTHETIC,
    COMPOSITE_WITH_TRAINED,
    TRAINED_ALGORITHMIC_MEDIA,
)

DISPLAY_MAX, DISPLAY_MIN = 1024, 512
THUMB_SIDE = 320
PREVIEW_SIZE = (1200, 630)
# The post kit's sizes (gallery/postkit.py), as platforms publish them. Every side stays at most
# KIT_MAX_SIDE so the verifier's decode cap (gallery/verify.py MARKED_MAX_SIDE) stays small.
KIT_SIZES = {
    "square": (1080, 1080),
    "portrait": (1080, 1350),
    "landscape": (1200, 675),
    "linkedin": (1200, 1200),
    "vertical": (720, 1280),
    "wide": (1280, 720),
}
KIT_MAX_SIDE = max(max(size) for size in KIT_SIZES.values())
BADGE_TEXT = "AI-generated"
MODIFIED_BADGE_TEXT = "AI-modified"
# The badge pages and previews show for each source type; none for what AI didn't make.
BADGES = {
    TRAINED_ALGORITHMIC_MEDIA: BADGE_TEXT,
    COMPOSITE_WITH_TRAINED: MODIFIED_BADGE_TEXT,
    COMPOSITE_SYNTHETIC: MODIFIED_BADGE_TEXT,
}


def badge_for(source_type: str) -> str:
    return BADGES.get(source_type, "")


def _display(image: Image.Image, badge: str = "") -> Image.Image:
    """Longest side between 512 and 1024: small model outputs are scaled up so they can carry
    the watermark; the original keeps its own size."""
    longest = max(image.size)
    target = min(max(longest, DISPLAY_MIN), DISPLAY_MAX)
    if target == longest:
        return image.copy()
    scale = target / longest
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _thumb(image: Image.Image, badge: str = "") -> Image.Image:
    return ImageOps.fit(image, (THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)


def _preview(image: Image.Image, badge: str = BADGE_TEXT) -> Image.Image:
    """The link-preview card: the image on a dark ground with the badge (when the image has
    one) burned into a corner."""
    card = Image.new("RGB", PREVIEW_SIZE, (24, 26, 30))
    fitted = ImageOps.contain(image, PREVIEW_SIZE, Image.Resampling.LANCZOS)
    card.paste(
        fitted, ((PREVIEW_SIZE[0] - fitted.width) // 2, (PREVIEW_SIZE[1] - fitted.height) // 2)
    )
    if not badge:
        return card
    draw = ImageDraw.Draw(card)
    font = ImageFont.load_default(size=34)
    left, top, right, bottom = draw.textbbox((0, 0), badge, font=font)
    pad = 14
    box = (
        PREVIEW_SIZE[0] - (right - left) - 3 * pad,
        PREVIEW_SIZE[1] - (bottom - top) - 3 * pad,
        PREVIEW_SIZE[0] - pad,
        PREVIEW_SIZE[1] - pad,
    )
    draw.rounded_rectangle(box, radius=8, fill=(0, 0, 0))
    draw.text((box[0] + pad, box[1] + pad - top), badge, font=font, fill=(255, 255, 255))
    return card


VARIANTS = (
    # name, format, extension, how the pixels are made from the original (and its badge)
    ("original", "PNG", "png", lambda image, badge: image),
    ("display", "JPEG", "jpg", _display),
    ("thumb", "JPEG", "jpg", _thumb),
    ("preview", "JPEG", "jpg", _preview),
)
FIELD_FOR_VARIANT = {
    "original": "image",
    "display": "display",
    "thumb": "thumb",
    "preview": "preview",
}


def decode_sizes(size: tuple[int, int]) -> list[tuple[int, int]]:
    """The sizes Candor writes, for an image of this shape: a resized copy of a watermarked file
    decodes only at the size it was marked at."""
    w, h = size
    sizes = [(DISPLAY_MIN, DISPLAY_MIN), (DISPLAY_MAX, DISPLAY_MAX), (THUMB_SIDE, THUMB_SIDE)]
    sizes.append(PREVIEW_SIZE)
    for longest in (DISPLAY_MIN, DISPLAY_MAX):
        scale = longest / max(w, h)
        sizes.append((round(w * scale), round(h * scale)))
    # Not the post kit's sizes: a kit file is read at its own size (MARKED_MAX_SIDE covers it),
    # a shrunk copy by the original's watermark it was made from (or by its fingerprint). Trying
    # them too cost every unmarked image 40% more (bench/verify.py: 172 -> 241 ms).
    return list(dict.fromkeys(sizes))
