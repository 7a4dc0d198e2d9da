"""Generation with a warm pipeline: the base model loads once per worker, LoRAs swap by name.

Adapters are switched (`set_adapters` / `disable_lora`), never fused: fusing and unfusing is not
exact, and the same seed with the same settings must give the same pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

# The rare token the trainer binds to the subject, and how prompts name them.
SUBJECT_TOKEN = "ohwx person"  # noqa: S105 - a prompt token, not a secret
SUBJECT_PLACEHOLDER = "@me"

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


def _multiple_of_8(value: float) -> int:
    return max(8, round(value / 8) * 8)


def size_for(preset: str, native: int) -> tuple[int, int]:
    if preset not in SIZES:
        raise ValueError(f"Unknown size {preset!r}; choose one of {', '.join(SIZES)}.")
    _, w, h = SIZES[preset]
    return _multiple_of_8(native * w), _multiple_of_8(native * h)


def full_prompt(prompt: str, style: str, *, with_subject: bool) -> tuple[str, str]:
    """The prompt as the model sees it: the subject's token put in, the style's words added."""
    if style not in STYLES:
        raise ValueError(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")
    text = prompt.strip()
    if with_subject:
        if SUBJECT_PLACEHOLDER in text:
            text = text.replace(SUBJECT_PLACEHOLDER, SUBJECT_TOKEN)
        else:
            text = f"a photo of {SUBJECT_TOKEN}, {text}" if text else f"a photo of {SUBJECT_TOKEN}"
    _, extra, negative = STYLES[style]
    if extra:
        text = f"{text}, {extra}"
    return text, negative


@dataclass(frozen=True)
class LoraRef:
    name: str  # a stable adapter name, e.g. the LoRA file's sha256
    path: str


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    seed: int
    negative_prompt: str = ""
    steps: int = 25
    guidance: float = 7.0
    width: int = 512
    height: int = 512
    count: int = 1
    lora: LoraRef | None = None

    def validate(self) -> None:
        if not 1 <= self.count <= MAX_IMAGES:
            raise ValueError(f"Make between 1 and {MAX_IMAGES} images at a time.")
        if not 1 <= self.steps <= 150:
            raise ValueError("Steps must be between 1 and 150.")
        if not 0 <= self.guidance <= 30:
            raise ValueError("Guidance must be between 0 and 30.")
        if self.width % 8 or self.height % 8:
            raise ValueError("Width and height must be multiples of 8.")


class PipelineCache:
    """One base pipeline per process, with up to `max_adapters` LoRAs loaded (least recently used
    goes first). Thread-safe: one generation at a time per pipeline."""

    def __init__(self, loader: Callable[[], object], *, max_adapters: int = 4):
        self._loader = loader
        self._pipe = None
        self._adapters: OrderedDict[str, LoraRef] = OrderedDict()
        self._lock = threading.RLock()
        self.max_adapters = max_adapters
        self.base_loads = 0
        self.adapter_loads = 0

    def pipeline(self):
        with self._lock:
            if self._pipe is None:
                self._pipe = self._loader()
                self.base_loads += 1
            return self._pipe

    def _activate(self, pipe, lora: LoraRef | None) -> None:
        if lora is None:
            if self._adapters:
                pipe.disable_lora()
            return
        if lora.name in self._adapters:
            self._adapters.move_to_end(lora.name)
        else:
            while len(self._adapters) >= self.max_adapters:
                old, _ = self._adapters.popitem(last=False)
                pipe.delete_adapters([old])
            pipe.load_lora_weights(lora.path, adapter_name=lora.name)
            self._adapters[lora.name] = lora
            self.adapter_loads += 1
        pipe.enable_lora()
        pipe.set_adapters([lora.name])

    def generate(
        self, request: GenerationRequest, *, on_step: Callable[[int, int], None] | None = None
    ) -> list[Image.Image]:
        request.validate()
        with self._lock:
            pipe = self.pipeline()
            self._activate(pipe, request.lora)
            # One generator per image: image i depends only on seed + i, not on the batch.
            generators = [
                torch.Generator().manual_seed(request.seed + i) for i in range(request.count)
            ]

            def callback(pipeline, step, timestep, kwargs):
                if on_step:
                    on_step(step + 1, request.steps)
                return kwargs

            with torch.no_grad():
                result = pipe(
                    prompt=[request.prompt] * request.count,
                    negative_prompt=[request.negative_prompt] * request.count
                    if request.negative_prompt
                    else None,
                    num_inference_steps=request.steps,
                    guidance_scale=request.guidance,
                    width=request.width,
                    height=request.height,
                    generator=generators,
                    callback_on_step_end=callback,
                )
            return list(result.images)
