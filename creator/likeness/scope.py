"""What a person agrees to when they consent: where the images may go, until when, and what
they may not show.

The content rules are word lists matched against the prompt. That is a guard rail, not a
filter that understands images: it misses paraphrases, misspellings, other languages and
anything a model draws that the prompt didn't ask for, and it can refuse an innocent prompt
that uses a listed word. The lists are kept short and literal so a creator can see why a prompt
was refused; operators can extend them here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

INTIMATE = "intimate"


@dataclass(frozen=True)
class Category:
    code: str
    label: str  # what the person reads on the consent form
    words: tuple[str, ...]  # whole words or phrases, lower case; a trailing "s" also matches

    @property
    def short(self) -> str:
        """The label without its explanation in brackets: "Political content"."""
        return self.label.split(" (")[0]


def short_labels(codes) -> list[str]:
    return [BY_CODE[code].short for code in codes if code in BY_CODE]


CATEGORIES: tuple[Category, ...] = (
    Category(
        INTIMATE,
        "Nudity, intimate or sexual imagery (always ruled out)",
        (
            "nude",
            "naked",
            "nudity",
            "nsfw",
            "sex",
            "sexual",
            "sexy",
            "erotic",
            "porn",
            "pornographic",
            "topless",
            "lingerie",
            "undressed",
            "undressing",
            "explicit",
            "intimate",
            "seductive",
            "fetish",
            "onlyfans",
            "bdsm",
            "stripper",
            "strip tease",
        ),
    ),
    Category(
        "political",
        "Political content (campaigns, elections, protests, politicians)",
        (
            "politic",
            "political",
            "politician",
            "election",
            "campaign",
            "vote",
            "voting",
            "ballot",
            "protest",
            "rally",
            "senator",
            "president",
            "prime minister",
            "parliament",
            "congress",
            "propaganda",
            "party leader",
        ),
    ),
    Category(
        "advertising",
        "Advertising or endorsing products and brands",
        (
            "advert",
            "advertisement",
            "advertising",
            "commercial",
            "endorse",
            "endorsement",
            "endorsing",
            "sponsored",
            "sponsor",
            "brand",
            "logo",
            "product placement",
            "promo",
            "promotion",
            "billboard",
        ),
    ),
    Category(
        "violence",
        "Violence, weapons or injury",
        (
            "violence",
            "violent",
            "gun",
            "pistol",
            "rifle",
            "weapon",
            "knife",
            "sword",
            "blood",
            "bloody",
            "gore",
            "wound",
            "wounded",
            "injured",
            "corpse",
            "dead body",
            "shooting",
            "murder",
            "fight",
            "fighting",
            "war",
            "bomb",
            "explosion",
        ),
    ),
    Category(
        "substances",
        "Alcohol, smoking or drugs",
        (
            "alcohol",
            "beer",
            "wine",
            "whisky",
            "whiskey",
            "vodka",
            "cocktail",
            "drunk",
            "cigarette",
            "cigar",
            "smoking",
            "vape",
            "vaping",
            "drug",
            "cocaine",
            "heroin",
            "weed",
            "marijuana",
            "cannabis",
            "joint",
        ),
    ),
)
BY_CODE = {c.code: c for c in CATEGORIES}

# How long consent lasts: one year unless the person says otherwise, ten at most.
DURATIONS = (
    ("1m", "1 month", timedelta(days=30)),
    ("6m", "6 months", timedelta(days=182)),
    ("1y", "1 year", timedelta(days=365)),
    ("2y", "2 years", timedelta(days=730)),
    ("5y", "5 years", timedelta(days=1826)),
    ("10y", "10 years (the longest)", timedelta(days=3652)),
)
DEFAULT_DURATION = "1y"
DURATION_CHOICES = {code: (label, delta) for code, label, delta in DURATIONS}

UNKNOWN_DURATION = "Choose how long your consent lasts (one month to ten years)."
UNKNOWN_PUBLISH = "Choose whether the images may be published or only kept private."
UNKNOWN_CATEGORY = "One of the content choices isn't one Candor knows. Reload the page and retry."
PROMPT_RULED_OUT = (
    "{name} ruled out {label} when they consented, and this prompt asks for it (“{word}”). "
    "Change the prompt; nothing was generated."
)
CONSENT_ENDED = (
    "{name}'s consent ended on {date}, so this model can't make new images. Ask them for a new "
    "consent to go on."
)


@dataclass(frozen=True)
class Scope:
    publish: str  # "public" or "private"
    ends_at: datetime
    ruled_out: tuple[str, ...]  # category codes, always with INTIMATE


class ScopeInvalid(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def scope_from_form(data, *, now: datetime) -> Scope:
    """Read the consent form's scope fields. Unknown values are refused, never guessed."""
    publish = data.get("publish", "public")
    if publish not in ("public", "private"):
        raise ScopeInvalid(UNKNOWN_PUBLISH)
    duration = data.get("duration", DEFAULT_DURATION) or DEFAULT_DURATION
    if duration not in DURATION_CHOICES:
        raise ScopeInvalid(UNKNOWN_DURATION)
    codes = list(data.getlist("rule_out")) if hasattr(data, "getlist") else []
    if any(code not in BY_CODE for code in codes):
        raise ScopeInvalid(UNKNOWN_CATEGORY)
    ruled_out = (INTIMATE, *sorted({c for c in codes if c != INTIMATE}))
    return Scope(publish=publish, ends_at=now + DURATION_CHOICES[duration][1], ruled_out=ruled_out)


def _pattern(words: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return re.compile(rf"\b(?:{alternatives})(?:s|es)?\b", re.IGNORECASE)


_PATTERNS = {c.code: _pattern(c.words) for c in CATEGORIES}


def ruled_out_match(prompt: str, ruled_out) -> tuple[Category, str] | None:
    """The first ruled-out category the prompt asks for, and the word that matched."""
    for code in ruled_out:
        found = _PATTERNS[code].search(prompt) if code in _PATTERNS else None
        if found:
            return BY_CODE[code], found.group(0)
    return None
