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

from creator.engine.options import NOT_MULTIPLE_OF_8, limits_problem


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
