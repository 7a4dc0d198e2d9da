"""Visible AI labels and caption bars: sizes are measured from the pixels drawn."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gallery.labels import (
    CAPTION_BAR_EMPTY,
    CAPTION_BAR_MAX_CHARS,
    CAPTION_BAR_TOO_LONG,
    DEFAULT_LABEL_STYLE,
    LABEL_STYLES,
    UNKNOWN_STYLE,
    Label,
    add_caption_bar,
    burn_label,
)

ROOT = Path(__file__).resolve().parent.parent
SIZES = [(64, 64), (512, 768), (1080, 1350), (4000, 3000)]


def _picture(width: int, height: int) -> Image.Image:
    """A light gradient: no pixel matches the labels' dark grounds or white ink by chance."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(110, 220, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = 170
    pixels[..., 2] = np.linspace(220, 110, height, dtype=np.uint8)[:, None]
    return Image.fromarray(pixels)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.any(np.asarray(before) != np.asarray(after), axis=2)


def test_it_offers_three_styles_in_order_with_the_badge_first():
    assert list(LABEL_STYLES) == ["badge", "eu", "text"]
    assert DEFAULT_LABEL_STYLE == "badge"
    assert all(name in UNKNOWN_STYLE for name in LABEL_STYLES.values())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_it_sizes_the_text_label_to_five_percent_of_the_shorter_side(size):
    picture = _picture(*size)
    labelled, label = burn_label(picture, "text")
    width, height = size
    rule = 0.05 * min(size)

    # The bar: every changed row, running down to the bottom edge, across the full width.
    rows = np.flatnonzero(_changed(picture, labelled).any(axis=1))
    top = int(rows[0])
    assert list(rows) == list(range(top, height))
    bar = np.asarray(labelled.convert("L"))[top:]
    assert (bar[:, 0] < 64).all() and (bar[:, -1] < 64).all()

    # The first glyph is the capital "A": its ink rows are the cap height.
    ink = bar >= 128
    first_glyph = _runs(ink.any(axis=0))[0]
    cap_rows = np.flatnonzero(ink[:, first_glyph[0] : first_glyph[1]].any(axis=1))
    cap_height = int(cap_rows[-1] - cap_rows[0] + 1)
    assert cap_height >= rule
    assert label.text_height >= rule
    assert abs(label.text_height - cap_height) <= 1
    # ...and the text is centred, not larger than the rule and a readable minimum ask.
    columns = np.flatnonzero(ink.any(axis=0))
    assert abs(columns[0] - (width - 1 - columns[-1])) <= 2
    assert cap_height <= max(rule * 1.3, 9)
    assert label.box == (0, top, width, height)


@pytest.mark.parametrize("style", list(LABEL_STYLES))
@pytest.mark.parametrize("size", [(64, 64), (512, 768), (1350, 1080)], ids=str)
def test_each_style_draws_only_inside_its_box_and_keeps_the_size(style, size):
    picture = _picture(*size)
    labelled, label = burn_label(picture, style)

    assert labelled.size == picture.size and labelled.mode == "RGB"
    left, top, right, bottom = label.box
    assert 0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]
    changed = _changed(picture, labelled)
    outside = changed.copy()
    outside[top:bottom, left:right] = False
    assert changed.any() and not outside.any()
    # White ink is drawn inside, for contrast on the dark ground.
    assert (np.asarray(labelled.convert("L"))[top:bottom, left:right] >= 200).any()
    assert picture.getpixel((0, 0)) == labelled.getpixel((0, 0))


def test_the_badge_and_the_eu_mark_stay_small_on_a_large_image():
    shorter = 1080
    _, badge = burn_label(_picture(1350, shorter), "badge")
    _, mark = burn_label(_picture(1350, shorter), "eu")

    assert badge.box[2] > 1300 and badge.box[3] > 1030  # the bottom-right corner
    assert (badge.box[3] - badge.box[1]) <= 0.12 * shorter
    assert abs(badge.text_height - 0.04 * shorter) <= 3
    assert abs((mark.box[2] - mark.box[0]) - 0.12 * shorter) <= 2


def test_the_eu_mark_says_generated_or_modified():
    picture = _picture(512, 512)
    generated, label = burn_label(picture, "eu")
    modified, edited = burn_label(picture, "eu", modified=True)

    assert label.text == "AI + GENERATED"
    assert edited.text == "AI + MODIFIED"
    assert label.box == edited.box
    assert _changed(generated, modified).any()


@pytest.mark.parametrize("style", ["badge", "text"])
def test_it_says_ai_modified_for_an_edited_photo(style):
    picture = _picture(300, 200)
    _, label = burn_label(picture, style)
    _, edited = burn_label(picture, style, modified=True)

    assert label.text == "AI-generated"
    assert edited.text == "AI-modified"


def test_it_refuses_an_unknown_style():
    with pytest.raises(ValueError) as refused:
        burn_label(_picture(64, 64), "sticker")

    assert str(refused.value) == UNKNOWN_STYLE


def test_it_leaves_the_given_image_untouched_and_converts_to_rgb():
    picture = _picture(128, 96).convert("RGBA")
    before = picture.tobytes()

    labelled, _ = burn_label(picture, "badge")

    assert picture.tobytes() == before
    assert labelled.mode == "RGB"


def test_the_label_records_itself_for_a_manifest():
    _, label = burn_label(_picture(512, 512), "text")

    record = json.loads(json.dumps(label.record()))

    assert record == {
        "style": "text",
        "text": "AI-generated",
        "box": dict(zip(("left", "top", "right", "bottom"), label.box, strict=True)),
        "text_height_px": label.text_height,
    }
    assert isinstance(label, Label)


def _text_lines(captioned: Image.Image, below: int) -> list[tuple[int, int]]:
    bar = np.asarray(captioned.convert("L"))[below:]
    return _runs((bar < 160).any(axis=1))


def test_the_caption_bar_grows_the_image_and_keeps_its_pixels():
    picture = _picture(512, 384)

    captioned = add_caption_bar(picture, "A harbour at dawn, made with Candor.")

    assert captioned.width == 512 and captioned.height > 384
    assert np.array_equal(np.asarray(captioned)[:384], np.asarray(picture))
    bar = np.asarray(captioned.convert("L"))[384:]
    assert bar[0].min() == 255 and bar[-1].min() == 255  # white, the text inside it
    assert len(_text_lines(captioned, 384)) == 1
    assert captioned.height - 384 <= 0.2 * 384  # not larger than one line needs


@pytest.mark.parametrize("size", [(64, 64), (512, 384), (4000, 3000)], ids=str)
def test_it_wraps_a_long_caption_over_at_most_three_lines(size):
    caption = ("Generated from my own photos of the coast near Brest, edited for colour. " * 3)[
        :CAPTION_BAR_MAX_CHARS
    ]

    captioned = add_caption_bar(_picture(*size), caption)

    lines = _text_lines(captioned, size[1])
    assert 2 <= len(lines) <= 3
    bar = np.asarray(captioned.convert("L"))[size[1] :]
    ink_columns = np.flatnonzero((bar < 160).any(axis=0))
    assert ink_columns[0] > 0 and ink_columns[-1] < size[0] - 1  # inside the width


def test_it_refuses_an_empty_caption():
    with pytest.raises(ValueError) as refused:
        add_caption_bar(_picture(64, 64), "  \n ")

    assert str(refused.value) == CAPTION_BAR_EMPTY


def test_it_refuses_a_caption_that_is_too_long():
    with pytest.raises(ValueError) as refused:
        add_caption_bar(_picture(64, 64), "x" * (CAPTION_BAR_MAX_CHARS + 1))

    assert str(refused.value) == CAPTION_BAR_TOO_LONG


def test_it_imports_without_django():
    code = "import sys, gallery.labels; assert not any(m.startswith('django') for m in sys.modules)"

    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
