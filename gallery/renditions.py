"""The files every post is served as, made once from the original: their sizes and how each is
drawn. Verify reads the same sizes to find a watermark in a resized copy."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont, ImageOps

DISPLAY_MAX, DISPLAY_MIN = 1024, 512
THUMB_SIDE = 320
PREVIEW_SIZE = (1200, 630)
BADGE_TEXT = "AI-generated"


def _display(image: Image.Image) -> Image.Image:
    """Longest side between 512 and 1024: small model outputs are scaled up so they can carry
    the watermark; the original keeps its own size."""
    longest = max(image.size)
    target = min(max(longest, DISPLAY_MIN), DISPLAY_MAX)
    if target == longest:
        return image.copy()
    scale = target / longest
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _thumb(image: Image.Image) -> Image.Image:
    return ImageOps.fit(image, (THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)


def _preview(image: Image.Image) -> Image.Image:
    """The link-preview card: the image on a dark ground with the badge burned into a corner."""
    card = Image.new("RGB", PREVIEW_SIZE, (24, 26, 30))
    fitted = ImageOps.contain(image, PREVIEW_SIZE, Image.Resampling.LANCZOS)
    card.paste(
        fitted, ((PREVIEW_SIZE[0] - fitted.width) // 2, (PREVIEW_SIZE[1] - fitted.height) // 2)
    )
    draw = ImageDraw.Draw(card)
    font = ImageFont.load_default(size=34)
    left, top, right, bottom = draw.textbbox((0, 0), BADGE_TEXT, font=font)
    pad = 14
    box = (
        PREVIEW_SIZE[0] - (right - left) - 3 * pad,
        PREVIEW_SIZE[1] - (bottom - top) - 3 * pad,
        PREVIEW_SIZE[0] - pad,
        PREVIEW_SIZE[1] - pad,
    )
    draw.rounded_rectangle(box, radius=8, fill=(0, 0, 0))
    draw.text((box[0] + pad, box[1] + pad - top), BADGE_TEXT, font=font, fill=(255, 255, 255))
    return card


VARIANTS = (
    # name, format, extension, how the pixels are made from the original
    ("original", "PNG", "png", lambda image: image),
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
    return list(dict.fromkeys(sizes))
