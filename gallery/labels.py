"""Visible AI-disclosure labels and caption bars burned into an image's pixels, for platforms
that strip metadata. Pillow only and no Django, so a worker can run it alone.

Sizes follow the rules they serve: the EU Code of Practice's "AI + GENERATED" icon, and China's
GB 45438, whose explicit text label is at least 5% of the image's shorter side tall."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from gallery.renditions import BADGE_TEXT, MODIFIED_BADGE_TEXT

LABEL_STYLES: dict[str, str] = {
    "badge": 'Candor\'s "AI-generated" badge',
    "eu": 'EU-style "AI + GENERATED" / "AI + MODIFIED" mark',
    "text": "Text label, at least 5% of the shorter side",
}
DEFAULT_LABEL_STYLE = "badge"
CAPTION_BAR_MAX_CHARS = 200

UNKNOWN_STYLE = "Choose a label style: " + "; ".join(LABEL_STYLES.values()) + "."
CAPTION_BAR_EMPTY = "Write the caption to put under the image."
CAPTION_BAR_TOO_LONG = f"The caption bar holds at most {CAPTION_BAR_MAX_CHARS} characters."

GENERATED_TEXT, MODIFIED_TEXT = BADGE_TEXT, MODIFIED_BADGE_TEXT
EU_GENERATED, EU_MODIFIED = "GENERATED", "MODIFIED"

TEXT_LABEL_SHARE = 0.05  # GB 45438: text at least 5% of the shorter side
BADGE_CAP_SHARE = 0.04
EU_MARK_SHARE = 0.12
CAPTION_FONT_SHARE = 0.045
MIN_FONT_SIZE = 12
MIN_LEGIBLE_CAP = 8  # cap height in px under which the text label grows when the width allows
EU_MIN_SIDE = 64  # under this the smaller word drops below ~6 px of ink and stops reading
CAPTION_MAX_LINES = 3

INK_LEVEL = 128  # a pixel counts as ink when the glyph covers at least half of it
DARK = (24, 26, 30)
EU_GROUND = (16, 16, 16)
WHITE = (255, 255, 255)
CAPTION_INK = (51, 51, 51)


@dataclass(frozen=True)
class Label:
    """What was burned in, for the C2PA manifest. `text_height` is the ink height of the capital
    letters as rendered (for the EU mark, of its smaller line): the number the 5% rule reads."""

    style: str
    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom (exclusive), as Image.crop takes
    text_height: int

    def record(self) -> dict:
        return {
            "style": self.style,
            "text": self.text,
            # A dict, not a list: c2pa stores a JSON array of small integers as a CBOR byte
            # string, each truncated to 8 bits (seen with c2pa-python 0.38).
            "box": dict(zip(("left", "top", "right", "bottom"), self.box, strict=True)),
            "text_height_px": self.text_height,
        }


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(1, size))


def _ink(text: str, font: ImageFont.FreeTypeFont, stroke: int = 0) -> tuple[int, int, int, int]:
    """The box of the pixels that are ink when `text` is drawn at (0, 0), measured by drawing it:
    font metrics include anti-aliased fringes that do not read as text."""
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    pad = 2 + stroke
    mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad))
    ImageDraw.Draw(mask).text(
        (pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    box = mask.point(lambda v: 255 if v >= INK_LEVEL else 0).getbbox()
    if box is None:
        return (0, 0, 0, 0)
    dx, dy = pad - left, pad - top
    return (box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy)


def _cap_height(text: str, font: ImageFont.FreeTypeFont, stroke: int = 0) -> int:
    capitals = "".join(c for c in text if c.isupper()) or text
    _, top, _, bottom = _ink(capitals, font, stroke)
    return bottom - top


def _size_for_cap(text: str, cap: int) -> int:
    """The smallest font size whose capitals are at least `cap` pixels of ink tall."""
    size = max(1, math.floor(cap / 0.72))  # the bundled font's capitals are ~0.7 of its size
    while _cap_height(text, _font(size)) < cap:
        size += 1
    while size > 1 and _cap_height(text, _font(size - 1)) >= cap:
        size -= 1
    return size


def _fit_width(text: str, size: int, width: int, floor: int = 1, stroke_share: float = 0) -> int:
    """`size`, or the largest smaller size (not under `floor`) whose ink fits in `width`."""
    while size > floor:
        left, _, right, _ = _ink(text, _font(size), round(size * stroke_share))
        if right - left <= width:
            break
        size -= 1
    return size


def _centre_text(draw, box, text, font, fill, stroke=0) -> None:
    """Draw `text` with its ink centred in `box`."""
    left, top, right, bottom = _ink(text, font, stroke)
    x = box[0] + (box[2] - box[0] - (right - left)) // 2 - left
    y = box[1] + (box[3] - box[1] - (bottom - top)) // 2 - top
    draw.text((x, y), text, font=font, fill=fill, stroke_width=stroke, stroke_fill=fill)


def _badge(image: Image.Image, text: str) -> Label:
    """A dark rounded box with white words in the bottom-right corner, as on the preview card."""
    width, height = image.size
    size = max(MIN_FONT_SIZE, _size_for_cap(text, round(min(width, height) * BADGE_CAP_SHARE)))
    # Each side of the text carries one pad and the box one margin: four pads in all.
    while size > 1:
        pad = max(2, round(size * 0.4))
        left, top, right, bottom = _ink(text, _font(size))
        if right - left + 4 * pad <= width and bottom - top + 4 * pad <= height:
            break
        size -= 1
    font = _font(size)
    pad = max(2, round(size * 0.4))
    left, top, right, bottom = _ink(text, font)
    box = (
        width - pad - (right - left) - 2 * pad,
        height - pad - (bottom - top) - 2 * pad,
        width - pad,
        height - pad,
    )
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (box[0], box[1], box[2] - 1, box[3] - 1), radius=max(1, round(size * 0.24)), fill=DARK
    )
    _centre_text(draw, box, text, font, WHITE)
    return Label("badge", text, box, _cap_height(text, font))


def _eu_mark(image: Image.Image, word: str) -> Label:
    """A near-black square in the bottom-right corner, a white ring inside its edge, a bold "AI"
    over the smaller word."""
    width, height = image.size
    shorter = min(width, height)
    margin = max(2, round(shorter * 0.02))
    # The floor keeps the words readable; on a tiny image a quarter of it stays uncovered.
    side = min(max(round(shorter * EU_MARK_SHARE), EU_MIN_SIDE), shorter * 3 // 4)
    box = (width - margin - side, height - margin - side, width - margin, height - margin)
    inset, ring = max(2, side // 16), max(1, side // 40)
    inner = side - 2 * (inset + ring + max(1, side // 32))

    # Bold is the regular face with a stroke of its own colour, the bundled font having no bold.
    ai_size = _fit_width("AI", _size_for_cap("AI", round(side * 0.34)), inner, stroke_share=1 / 14)
    ai_font, ai_stroke = _font(ai_size), max(1, round(ai_size / 14))
    word_size = _fit_width(word, _size_for_cap(word, max(1, round(side * 0.12))), inner)
    word_font = _font(word_size)

    ai_ink, word_ink = _ink("AI", ai_font, ai_stroke), _ink(word, word_font)
    ai_h, word_h = ai_ink[3] - ai_ink[1], word_ink[3] - word_ink[1]
    gap = max(1, round(side * 0.08))
    top = box[1] + (side - (ai_h + gap + word_h)) // 2

    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (box[0], box[1], box[2] - 1, box[3] - 1), radius=max(1, side // 8), fill=EU_GROUND
    )
    draw.rounded_rectangle(
        (box[0] + inset, box[1] + inset, box[2] - 1 - inset, box[3] - 1 - inset),
        radius=max(1, side // 8 - inset // 2),
        outline=WHITE,
        width=ring,
    )
    _centre_text(draw, (box[0], top, box[2], top + ai_h), "AI", ai_font, WHITE, ai_stroke)
    word_top = top + ai_h + gap
    _centre_text(draw, (box[0], word_top, box[2], word_top + word_h), word, word_font, WHITE)
    return Label("eu", f"AI + {word}", box, _cap_height(word, word_font))


def _text_bar(image: Image.Image, text: str) -> Label:
    """A full-width dark bar along the bottom, its capitals at least 5% of the shorter side."""
    width, height = image.size
    rule = math.ceil(min(width, height) * TEXT_LABEL_SHARE)
    least = _size_for_cap(text, rule)
    # Larger than the rule on small images, so the words stay readable, while they fit across.
    size = max(least, _size_for_cap(text, MIN_LEGIBLE_CAP))
    pad = max(2, math.ceil(rule * 0.4))
    size = _fit_width(text, size, width - 2 * pad, floor=least)
    font = _font(size)
    _, top, _, bottom = _ink(text, font)
    box = (0, height - (bottom - top) - 2 * pad, width, height)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, box[1], width - 1, height - 1), fill=DARK)
    _centre_text(draw, box, text, font, WHITE)
    return Label("text", text, box, _cap_height(text, font))


def burn_label(
    image: Image.Image, style: str, *, modified: bool = False
) -> tuple[Image.Image, Label]:
    """A copy of `image` (RGB) with the visible label drawn on; `modified` picks the
    "AI-modified" / "AI + MODIFIED" wording (an edited photo) over "generated". The image keeps
    its size."""
    if style not in LABEL_STYLES:
        raise ValueError(UNKNOWN_STYLE)
    labelled = image.convert("RGB")  # always a new image, even from RGB
    if style == "eu":
        label = _eu_mark(labelled, EU_MODIFIED if modified else EU_GENERATED)
    elif style == "text":
        label = _text_bar(labelled, MODIFIED_TEXT if modified else GENERATED_TEXT)
    else:
        label = _badge(labelled, MODIFIED_TEXT if modified else GENERATED_TEXT)
    return labelled, label


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap; a word wider than a line is split where it runs out of room."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:
            if line and font.getlength(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    if line:
        lines.append(line)
    return lines


def _shorten(line: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    while line and font.getlength(line + "…") > width:
        line = line[:-1]
    return line.rstrip() + "…"


def add_caption_bar(image: Image.Image, text: str) -> Image.Image:
    """A new image: `image` with a white bar added below it holding `text` in dark grey, wrapped
    over at most three lines. The font shrinks from ~4.5% of the width, not under 12 px, until
    the text fits; what still does not fit (a long caption on a small image) ends in "…"."""
    words = " ".join(text.split())
    if not words:
        raise ValueError(CAPTION_BAR_EMPTY)
    if len(words) > CAPTION_BAR_MAX_CHARS:
        raise ValueError(CAPTION_BAR_TOO_LONG)
    source = image.convert("RGB")
    width, height = source.size

    size = max(MIN_FONT_SIZE, round(width * CAPTION_FONT_SHARE))
    while True:
        font, pad = _font(size), max(4, round(size * 0.6))
        lines = _wrap(words, font, width - 2 * pad)
        if len(lines) <= CAPTION_MAX_LINES or size <= MIN_FONT_SIZE:
            break
        size -= 1
    if len(lines) > CAPTION_MAX_LINES:
        last = _shorten(lines[CAPTION_MAX_LINES - 1], font, width - 2 * pad)
        lines = [*lines[: CAPTION_MAX_LINES - 1], last]

    ascent, descent = font.getmetrics()
    line_height = ascent + descent + max(1, round(size * 0.15))
    bar = 2 * pad + len(lines) * line_height
    captioned = Image.new("RGB", (width, height + bar), WHITE)
    captioned.paste(source, (0, 0))
    draw = ImageDraw.Draw(captioned)
    for i, line in enumerate(lines):
        draw.text((pad, height + pad + i * line_height), line, font=font, fill=CAPTION_INK)
    return captioned
