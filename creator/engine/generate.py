"""Generation with a warm pipeline: the base model loads once per worker, LoRAs swap by name.

Adapters are switched (`set_adapters` / `disable_lora`), never fused: fusing and unfusing is not
exact, and the same seed with the same settings must give the same pixels. With a compiled
denoiser, LoRAs are hot-swapped into one adapter slot instead (diffusers' `enable_lora_hotswap`),
so switching creators never triggers a recompile.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from creator.engine import denoisers, families
from creator.engine.options import NOT_MULTIPLE_OF_8, limits_problem

LORA_OTHER_FAMILY = (
    "This model was trained on a {trained} base model, but the base model here is {here}. "
    "Train it again on this base model, or set CANDOR_BASE_MODEL back."
)
LORA_UNREADABLE = "This model's LoRA file can't be loaded into the {here} base model: {error}"
HOTSWAP_SLOT = "candor"  # the one adapter name hot-swapping replaces in place


class LoraMismatch(ValueError):
    """A LoRA that does not belong to this base model (another family, or other shapes)."""


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
        problem = limits_problem(
            count=self.count, steps=self.steps, guidance=self.guidance, seed=self.seed
        )
        if problem:
            raise ValueError(problem)
        if self.width % 8 or self.height % 8:
            raise ValueError(NOT_MULTIPLE_OF_8)


class PipelineCache:
    """One base pipeline per process, with up to `max_adapters` LoRAs loaded (least recently used
    goes first). Thread-safe: one generation at a time per pipeline."""

    def __init__(
        self,
        loader: Callable[[], object],
        *,
        max_adapters: int = 4,
        compile: bool = False,
        hotswap: bool = False,
        hotswap_rank: int = 64,
    ):
        self._loader = loader
        self._pipe = None
        self._adapters: OrderedDict[str, LoraRef] = OrderedDict()
        self._lock = threading.RLock()
        self.max_adapters = max_adapters
        self.compile = compile  # torch.compile the denoiser; LoRAs then hot-swap
        self.hotswap = hotswap or compile  # one adapter slot whose weights are replaced
        self.hotswap_rank = hotswap_rank  # the largest LoRA rank a hot swap accepts
        self.family = families.SD
        self.base_loads = 0
        self.adapter_loads = 0
        self._slot: str | None = None  # hot-swap mode: the LoRA now in the one slot
        self._slot_enabled = True

    def pipeline(self):
        with self._lock:
            if self._pipe is None:
                pipe = self._loader()
                self.family = families.family_of_pipeline_class(type(pipe).__name__) or families.SD
                if self.hotswap:
                    # Before any LoRA loads: the slot is sized once, so swaps don't recompile.
                    pipe.enable_lora_hotswap(target_rank=self.hotswap_rank)
                self._pipe = pipe
                self.base_loads += 1
            return self._pipe

    def _check_family(self, lora: LoraRef) -> None:
        trained = families.lora_family(lora.path)
        if trained and trained != self.family.name:
            raise LoraMismatch(
                LORA_OTHER_FAMILY.format(
                    trained=families.FAMILIES[trained].label
                    if trained in families.FAMILIES
                    else trained,
                    here=self.family.label,
                )
            )

    def _load(self, pipe, lora: LoraRef, name: str, *, hotswap: bool = False) -> None:
        self._check_family(lora)
        try:
            pipe.load_lora_weights(lora.path, adapter_name=name, hotswap=hotswap)
        except (ValueError, RuntimeError, KeyError) as exc:  # shapes or keys of another model
            with contextlib.suppress(ValueError, RuntimeError, KeyError):
                pipe.delete_adapters([name])  # never leave half an adapter behind
            raise LoraMismatch(LORA_UNREADABLE.format(here=self.family.label, error=exc)) from exc
        self.adapter_loads += 1

    def _activate(self, pipe, lora: LoraRef | None) -> None:
        if self.hotswap:
            return self._activate_slot(pipe, lora)
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
            self._load(pipe, lora, lora.name)
            self._adapters[lora.name] = lora
        pipe.enable_lora()
        pipe.set_adapters([lora.name])

    def _activate_slot(self, pipe, lora: LoraRef | None) -> None:
        """Hot-swap mode: one adapter slot whose weights are replaced in place. Nothing the
        compiled graph depends on changes between creators (only tensor values do)."""
        if lora is None:
            if self._slot is not None and self._slot_enabled:
                pipe.disable_lora()
                self._slot_enabled = False
            return
        if self._slot != lora.name:
            first = self._slot is None
            self._load(pipe, lora, HOTSWAP_SLOT, hotswap=not first)
            self._slot = lora.name
            if first:
                pipe.set_adapters([HOTSWAP_SLOT])
                if self.compile:
                    # In place (nn.Module.compile): the pipeline still sees its adapters.
                    denoisers.denoiser(pipe, self.family).compile()
        if not self._slot_enabled:
            pipe.enable_lora()
            self._slot_enabled = True

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

            negative = None
            if request.negative_prompt and self.family.negative_prompt:
                negative = [request.negative_prompt] * request.count
            with torch.no_grad():
                result = pipe(
                    prompt=[request.prompt] * request.count,
                    negative_prompt=negative,
                    num_inference_steps=request.steps,
                    guidance_scale=request.guidance,
                    width=request.width,
                    height=request.height,
                    generator=generators,
                    callback_on_step_end=callback,
                    **denoisers.pipe_options(pipe, self.family),
                )
            return list(result.images)
