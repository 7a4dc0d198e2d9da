"""Where the studio meets the engine (`creator.engine`): settings in, warm objects out.

Imported only by the studio's jobs, in a worker: a web process never loads torch. A worker keeps
one pipeline cache: the base model loads once and LoRAs are swapped in.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from creator.engine import base_models
from creator.engine.device import Placement, placement
from creator.engine.generate import PipelineCache

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _quiet() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def base_model() -> base_models.BaseModel:
    return base_models.resolve(settings.CANDOR_BASE_MODEL, settings.MODEL_CACHE_DIR)


def where() -> Placement:
    return placement(settings.MIXED_PRECISION)


def load_base_pipeline():
    """A fresh pipeline (training changes the one it is given)."""
    _quiet()
    return base_models.load_pipeline(base_model(), where(), quantize=settings.QUANTIZE)


@functools.cache
def pipeline_cache() -> PipelineCache:
    from creator.studio.services import base_defaults

    # Hot-swapping pads every LoRA to one rank: the largest this instance trains, no larger.
    rank = settings.TRAIN_RANK or base_defaults().rank
    return PipelineCache(
        load_base_pipeline,
        max_adapters=settings.LORA_CACHE_SIZE,
        compile=settings.GENERATION_COMPILE,
        hotswap_rank=rank,
    )


def free_memory() -> None:
    """Give back what a failed run held (after an out-of-memory), so the worker goes on."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def local_path(name: str) -> Path:
    """A stored file as a local path (the engine reads files, not Django storages)."""
    return Path(default_storage.path(name))
