"""Credentials, generation settings and dates in a viewer's words, the technical term on hover."""

from __future__ import annotations

import datetime as dt
import re

from django import template
from django.utils import dateformat
from django.utils.html import format_html, format_html_join

from gallery import signing

register = template.Library()

# C2PA 2.x action names (c2pa.org specification, "Actions"), as a person would say them.
ACTIONS = {
    "c2pa.created": "Created",
    "c2pa.opened": "Opened",
    "c2pa.placed": "Placed into another image",
    "c2pa.edited": "Edited",
    "c2pa.edited.metadata": "Details edited",
    "c2pa.watermarked": "Watermarked",
    "c2pa.watermarked.bound": "Watermarked",
    "c2pa.resized": "Resized",
    "c2pa.cropped": "Cropped",
    "c2pa.converted": "Converted to another format",
    "c2pa.transcoded": "Re-encoded",
    "c2pa.repackaged": "Repackaged",
    "c2pa.color_adjustments": "Colours adjusted",
    "c2pa.filtered": "Filtered",
    "c2pa.orientation": "Rotated or flipped",
    "c2pa.drawing": "Drawn on",
    "c2pa.redacted": "Redacted",
    "c2pa.removed": "Part removed",
    "c2pa.published": "Published",
}

# IPTC digital source types (http://cv.iptc.org/newscodes/digitalsourcetype/), in plain words.
SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "Made by an AI model trained on sample images",
    "compositeWithTrainedAlgorithmicMedia": "Combines AI-made parts with other content",
    "algorithmicMedia": "Made by an algorithm, without trained AI",
    "algorithmicallyEnhanced": "Enhanced by an algorithm",
    "digitalCapture": "Taken with a digital camera",
    "computationalCapture": "Taken with a camera that processes the picture",
    "negativeFilm": "Scanned from a film negative",
    "positiveFilm": "Scanned from film",
    "print": "Scanned from a print",
    "digitalCreation": "Made by a person with digital tools",
    "minorHumanEdits": "Lightly edited by a person",
    "humanEdits": "Edited by a person",
    "composite": "Combined from several pieces",
    "compositeCapture": "Combined from several camera shots",
    "compositeSynthetic": "Combined with made-up parts",
    "screenCapture": "A screenshot",
    "virtualRecording": "Recorded in a virtual scene",
    "dataDrivenMedia": "Made from data",
}

# CAWG training-and-mining entries ("cawg.ai_training": "notAllowed", ...).
MINING_USES = {
    "ai_training": "AI training",
    "ai_generative_training": "Generative AI training",
    "ai_inference": "Use as AI input",
    "data_mining": "Data mining",
}
MINING_ANSWERS = {"notAllowed": "not allowed", "allowed": "allowed", "constrained": "ask first"}

# Generation settings stored on a post; only these are shown ("prompt_used" is not).
_SETTINGS_SHOWN = (
    ("style", "Style"),
    ("size", "Size"),
    ("steps", "Steps"),
    ("guidance", "Guidance"),
)


def _spaced(term: str) -> str:
    """ "trainedAlgorithmicMedia" -> "trained algorithmic media"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", term).replace("_", " ").lower()


def _datetime(value) -> dt.datetime | dt.date | None:
    if isinstance(value, dt.datetime | dt.date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return dt.date.fromisoformat(text)  # a day, such as a consent's end
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@register.filter
def when(value) -> str:
    """A date as people read it, in UTC: "30 Nov 2026, 14:06 UTC" (a day alone: "30 Nov 2026").
    Takes datetimes, dates and ISO strings (as manifests hold them); anything else as it is."""
    moment = _datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    if not isinstance(moment, dt.datetime):
        return dateformat.format(moment, "j M Y")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return dateformat.format(moment.astimezone(dt.UTC), "j M Y, H:i") + " UTC"


@register.filter
def signer_name(subject: str) -> str:
    return signing.signer_display_name(subject)


@register.filter
def action_words(actions) -> str:
    """C2PA actions, each in plain words with its name on hover; repeats said once."""
    seen = []
    for action in actions or []:
        if action and action not in seen:
            seen.append(action)
    return format_html_join(
        ", ",
        '<abbr title="{}">{}</abbr>',
        (
            (a, ACTIONS.get(a) or _spaced(a.removeprefix("c2pa.").replace(".", " ")).capitalize())
            for a in seen
        ),
    )


@register.filter
def source_words(source_type: str) -> str:
    """An IPTC digital source type in plain words, its term after them and its URI on hover."""
    if not source_type:
        return ""
    term = source_type.rstrip("/").rsplit("/", 1)[-1]
    words = SOURCE_TYPES.get(term)
    if words is None:
        return format_html('<abbr title="{}">{}</abbr>', source_type, _spaced(term).capitalize())
    return format_html('<abbr title="{}">{} ({})</abbr>', source_type, words, _spaced(term))


@register.filter
def mining_words(entries) -> str:
    """Training-and-mining entries: "AI training: not allowed · …", the entry names on hover."""
    items = []
    for key, answer in (entries or {}).items():
        use = key.split(".", 1)[-1]
        items.append(
            (
                f"{key}: {answer}",
                MINING_USES.get(use, _spaced(use).capitalize()),
                MINING_ANSWERS.get(answer, _spaced(str(answer))),
            )
        )
    return format_html_join(" · ", '<abbr title="{}">{}: {}</abbr>', items)


def _style(settings: dict) -> str:
    style = settings.get("style", "")
    if settings.get("style_label"):
        return settings["style_label"]
    return "No style" if style in ("", "none") else _spaced(style).capitalize()


def _own_negative(settings: dict) -> str:
    """The creator's own negative prompt. Posts made before it was stored apart kept only the
    whole negative prompt, the style's words included: that shows only when no style was used."""
    if "own_negative_prompt" in settings:
        return settings["own_negative_prompt"]
    return settings.get("negative_prompt", "") if settings.get("style") in ("", "none") else ""


@register.filter
def generation_facts(post) -> list[tuple[str, str]]:
    """(label, value) for what made a post, in the creator's words; never the prompt as the
    model saw it (its rare subject token and the style's words)."""
    if post.declared:  # made elsewhere: what its creator said, not how Candor made it
        facts = [("What it is", post.declared.get("words", ""))]
        if post.declared.get("tool"):
            facts.append(("Made with", post.declared["tool"]))
        facts.append(("Size", f"{post.width} × {post.height} px"))
        return facts
    settings = post.generation_settings or {}
    facts = [("Prompt", post.prompt)]
    for key, label in _SETTINGS_SHOWN:
        value = settings.get(key)
        if value in (None, ""):
            continue
        if key == "style":
            value = _style(settings)
        elif key == "size":
            value = f"{str(value).replace('×', ' × ')} px"
        elif key == "guidance" and isinstance(value, float):
            value = f"{value:g}"
        facts.append((label, str(value)))
    negative = _own_negative(settings)
    if negative:
        facts.append(("Negative prompt", negative))
    facts.append(("Seed", str(post.seed)))
    return facts
