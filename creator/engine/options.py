"""What a generation may ask for: presets, limits and how a prompt names the person.

Torch-free on purpose: web pages, forms and services read these to offer and check the same
choices the engine enforces, and a web process must never import torch.
"""

from __future__ import annotations

from pathlib import PurePath

# The rare token the trainer binds to the subject, and how a creator's prompt names them.
SUBJECT_TOKEN = "ohwx person"  # noqa: S105 - a prompt token, not a secret
SUBJECT_PLACEHOLDER = "@me"
OTHER_PLACEHOLDER = "@them"  # how a prompt names someone else: either marker works for any model
INSTANCE_PROMPT = f"a photo of {SUBJECT_TOKEN}"
CLASS_PROMPT = "a photo of a person"

STYLES: dict[str, tuple[str, str, str]] = {
    # name: (label, added to the prompt, negative prompt)
    "none": ("No style", "", ""),
    "photo": (
        "Photo",
        "professional photo, natural light, sharp focus",
        "cartoon, illustration, painting, blurry, deformed",
    ),
    "portrait": (
        "Studio portrait",
        "studio portrait, soft light, shallow depth of field",
        "blurry, deformed, extra limbs",
    ),
    "film": ("35 mm film", "35mm film photo, film grain, warm tones", "digital, oversaturated"),
    "watercolor": ("Watercolour", "watercolor painting, soft washes", "photo, photograph"),
    "cinematic": (
        "Cinematic",
        "cinematic still, dramatic lighting, wide angle",
        "flat lighting, snapshot",
    ),
}
SIZES: dict[str, tuple[str, float, float]] = {
    # name: (label, width factor, height factor) of the base model's native square size
    "square": ("Square 1:1", 1.0, 1.0),
    "portrait": ("Portrait 4:5", 1.0, 1.25),
    "landscape": ("Landscape 3:2", 1.5, 1.0),
}

MAX_IMAGES = 4
MIN_STEPS, MAX_STEPS = 1, 150
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MAX_SEED = 2**63 - 1
PROMPT_MAX_CHARS = 1000

PROMPT_TOO_LONG = f"The prompt is too long: at most {PROMPT_MAX_CHARS} characters."
COUNT_OUT_OF_RANGE = f"Make between 1 and {MAX_IMAGES} images at a time."
STEPS_OUT_OF_RANGE = f"Steps must be between {MIN_STEPS} and {MAX_STEPS}."
GUIDANCE_OUT_OF_RANGE = f"Guidance must be between {MIN_GUIDANCE:g} and {MAX_GUIDANCE:g}."
SEED_OUT_OF_RANGE = "The seed must be a whole number from 0 up."
UNKNOWN_STYLE = "Choose one of the listed styles: " + ", ".join(STYLES) + "."
UNKNOWN_SIZE = "Choose one of the listed sizes: " + ", ".join(SIZES) + "."
NOT_MULTIPLE_OF_8 = "Width and height must be multiples of 8."


def limits_problem(*, count: int, steps: int, guidance: float, seed: int) -> str | None:
    """The message for the first setting out of range, or None when all are allowed."""
    if not 1 <= count <= MAX_IMAGES:
        return COUNT_OUT_OF_RANGE
    if not MIN_STEPS <= steps <= MAX_STEPS:
        return STEPS_OUT_OF_RANGE
    if not MIN_GUIDANCE <= guidance <= MAX_GUIDANCE:
        return GUIDANCE_OUT_OF_RANGE
    if not 0 <= seed <= MAX_SEED:
        return SEED_OUT_OF_RANGE
    return None


def _multiple_of_8(value: float) -> int:
    return max(8, round(value / 8) * 8)


def size_for(preset: str, native: int) -> tuple[int, int]:
    if preset not in SIZES:
        raise ValueError(UNKNOWN_SIZE)
    _, w, h = SIZES[preset]
    return _multiple_of_8(native * w), _multiple_of_8(native * h)


def full_prompt(prompt: str, style: str, *, with_subject: bool) -> tuple[str, str]:
    """The prompt as the model sees it: the subject's token put in, the style's words added."""
    if style not in STYLES:
        raise ValueError(UNKNOWN_STYLE)
    text = prompt.strip()
    if with_subject:
        text = text.replace(OTHER_PLACEHOLDER, SUBJECT_PLACEHOLDER)
        if SUBJECT_PLACEHOLDER in text:
            text = text.replace(SUBJECT_PLACEHOLDER, SUBJECT_TOKEN)
        else:
            text = f"{INSTANCE_PROMPT}, {text}" if text else INSTANCE_PROMPT
    _, extra, negative = STYLES[style]
    if extra:
        text = f"{text}, {extra}"
    return text, negative


def base_model_label(spec: str) -> str:
    """A public name for a base-model setting, shown on posts and signed into credentials: a
    folder or file becomes its own name, never its path on this server."""
    spec = (spec or "builtin:tiny").strip()
    if spec.startswith("builtin:"):
        return f"Candor {spec.removeprefix('builtin:')} (built-in test model, random weights)"
    if spec.startswith(("/", ".", "~")) or spec.endswith((".safetensors", ".ckpt")):
        path = PurePath(spec.rstrip("/"))
        return path.stem if path.suffix in (".safetensors", ".ckpt") else path.name
    return spec  # a hub id such as "org/name" is already public
