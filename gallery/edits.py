"""The edits Candor makes to a post's image: each makes a new post whose signed original has the
edited post's original as its parentOf ingredient, with the C2PA actions that say what was done.

`edit_parse` turns what a form or the API sent into an `Edit`, refusing anything out of range
with a message (nothing is made); `edit_apply` draws it. No storage, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from PIL import Image

from config.refusal import Refusal
from gallery import labels

MIN_SIDE = 64  # what Candor's smallest model makes; a smaller edit is no use to anyone
MAX_SIDE = 4096
ROTATIONS = (90, 180, 270)  # clockwise

OPS = {
    "crop": "Crop",
    "resize": "Resize",
    "rotate": "Rotate",
    "caption": "Add a caption bar",
    "label": "Add a visible label",
}
UNKNOWN_OP = "Choose an edit: " + ", ".join(OPS.values()).lower() + "."
NOT_A_NUMBER = "{name} must be a whole number of pixels."
CROP_OUTSIDE = (
    "The crop must lie inside the {width}×{height} image and keep at least {min} pixels a side."
)
RESIZE_RANGE = (
    "The new width must be between {low} and {high} pixels (the height follows, and must stay "
    "between {min} and {max})."
)
ROTATE_CHOICES = "Rotate by 90, 180 or 270 degrees."
NO_AI_LABEL_ON_A_PHOTO = (
    "This image was declared a camera photo, not made with AI, so it gets no AI label."
)
RESULT_TOO_LARGE = "That would make the image longer than {max} pixels: nothing was made."
SAME_SIZE = "The image is already {width}×{height}: nothing to change."
WHOLE_IMAGE = "That crop is the whole image: nothing to change."


@dataclass(frozen=True)
class Edit:
    op: str
    params: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {"op": self.op, **self.params}


@dataclass(frozen=True)
class Edited:
    image: Image.Image
    actions: tuple[dict, ...]  # C2PA actions with a description each
    words: str  # what was done, for the post page's history
    label: dict | None = None  # the visible label drawn on, for the manifest


def _int(data: Mapping, name: str, words: str) -> int:
    value = str(data.get(name, "")).strip()
    try:
        return int(value)
    except ValueError:
        raise Refusal(NOT_A_NUMBER.format(name=words)) from None


def edit_parse(data: Mapping, *, size: tuple[int, int]) -> Edit:
    """The edit `data` asks for, checked against an image of `size`; Refusal when it can't be."""
    op = str(data.get("op", "")).strip()
    width, height = size
    if op == "crop":
        box = {
            "x": _int(data, "x", "Left"),
            "y": _int(data, "y", "Top"),
            "width": _int(data, "width", "Width"),
            "height": _int(data, "height", "Height"),
        }
        inside = (
            box["x"] >= 0
            and box["y"] >= 0
            and box["width"] >= MIN_SIDE
            and box["height"] >= MIN_SIDE
            and box["x"] + box["width"] <= width
            and box["y"] + box["height"] <= height
        )
        if not inside:
            raise Refusal(CROP_OUTSIDE.format(width=width, height=height, min=MIN_SIDE))
        if (box["width"], box["height"]) == (width, height):
            raise Refusal(WHOLE_IMAGE)
        return Edit("crop", box)
    if op == "resize":
        new_width = _int(data, "width", "The width")
        new_height = round(height * new_width / width)
        low = max(MIN_SIDE, -(-MIN_SIDE * width // height))
        high = min(MAX_SIDE, MAX_SIDE * width // height)
        if not (low <= new_width <= high and MIN_SIDE <= new_height <= MAX_SIDE):
            raise Refusal(RESIZE_RANGE.format(low=low, high=high, min=MIN_SIDE, max=MAX_SIDE))
        if new_width == width:
            raise Refusal(SAME_SIZE.format(width=width, height=height))
        return Edit("resize", {"width": new_width, "height": new_height})
    if op == "rotate":
        degrees = str(data.get("degrees", "")).strip()
        if not degrees.isdigit() or int(degrees) not in ROTATIONS:
            raise Refusal(ROTATE_CHOICES)
        return Edit("rotate", {"degrees": int(degrees)})
    if op == "caption":
        text = " ".join(str(data.get("text", "")).split())
        if not text:
            raise Refusal(labels.CAPTION_BAR_EMPTY)
        if len(text) > labels.CAPTION_BAR_MAX_CHARS:
            raise Refusal(labels.CAPTION_BAR_TOO_LONG)
        return Edit("caption", {"text": text})
    if op == "label":
        style = str(data.get("style", "")).strip()
        if style not in labels.LABEL_STYLES:
            raise Refusal(labels.UNKNOWN_STYLE)
        return Edit("label", {"style": style})
    raise Refusal(UNKNOWN_OP)


def _action(name: str, description: str) -> dict:
    return {"action": name, "parameters": {"description": description}}


def edit_apply(image: Image.Image, edit: Edit, *, modified: bool = False) -> Edited:
    """Draw `edit` on `image` (RGB); `modified` words a visible label "AI-modified"."""
    p = edit.params
    if edit.op == "crop":
        box = (p["x"], p["y"], p["x"] + p["width"], p["y"] + p["height"])
        words = f"Cropped to {p['width']}×{p['height']} from ({p['x']}, {p['y']})"
        return Edited(image.crop(box), (_action("c2pa.cropped", words),), words)
    if edit.op == "resize":
        size = (p["width"], p["height"])
        words = f"Resized from {image.width}×{image.height} to {size[0]}×{size[1]}"
        resized = image.resize(size, Image.Resampling.LANCZOS)
        return Edited(resized, (_action("c2pa.resized", words),), words)
    if edit.op == "rotate":
        words = f"Rotated {p['degrees']}° clockwise"
        rotated = image.rotate(-p["degrees"], expand=True)
        return Edited(rotated, (_action("c2pa.orientation", words),), words)
    if edit.op == "caption":
        words = f"Added a caption bar: “{p['text']}”"
        barred = labels.add_caption_bar(image, p["text"])
        return Edited(barred, (_action("c2pa.edited", words),), words)
    if edit.op == "label":
        labelled, label = labels.burn_label(image, p["style"], modified=modified)
        words = f"Added a visible label: “{label.text}”"
        return Edited(labelled, (_action("c2pa.edited", words),), words, label.record())
    raise ValueError(f"Unknown edit {edit.op!r}")
