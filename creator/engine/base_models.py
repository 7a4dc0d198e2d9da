"""Base model resolution: the built-in tiny model, a local diffusers folder, a single-file
checkpoint, or a hub id. Anything unloadable raises BaseModelError naming the setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from creator.engine import tiny
from creator.engine.device import Placement

SETTING = "CANDOR_BASE_MODEL"


class BaseModelError(Exception):
    pass


@dataclass(frozen=True)
class BaseModel:
    spec: str  # as configured, e.g. "builtin:tiny", "/models/sd15", "org/name"
    kind: str  # "builtin", "folder", "file" or "hub"
    source: str  # what diffusers is given


def resolve(spec: str, cache_dir: Path) -> BaseModel:
    spec = (spec or tiny.TINY_ID).strip()
    if spec == tiny.TINY_ID:
        return BaseModel(spec, "builtin", str(tiny.tiny_model_path(cache_dir)))
    if spec.startswith("builtin:"):
        raise BaseModelError(f"{SETTING}={spec!r}: the only built-in model is {tiny.TINY_ID!r}.")
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise BaseModelError(
                f"{SETTING}={spec!r} is a folder but not a diffusers pipeline "
                "(it has no model_index.json)."
            )
        return BaseModel(spec, "folder", str(path))
    if path.suffix in (".safetensors", ".ckpt"):
        if not path.is_file():
            raise BaseModelError(f"{SETTING}={spec!r}: no such file.")
        return BaseModel(spec, "file", str(path))
    if spec.startswith(("/", ".", "~")):
        raise BaseModelError(f"{SETTING}={spec!r}: no such folder or file.")
    return BaseModel(spec, "hub", spec)


def load_pipeline(base: BaseModel, where: Placement):
    """The Stable Diffusion pipeline for a base model, on its device, safety checker off."""
    from diffusers import StableDiffusionPipeline

    options = {"dtype": where.dtype, "safety_checker": None, "requires_safety_checker": False}
    try:
        if base.kind == "file":
            pipe = StableDiffusionPipeline.from_single_file(base.source, **options)
        else:
            local_only = base.kind != "hub" or os.environ.get("HF_HUB_OFFLINE") == "1"
            pipe = StableDiffusionPipeline.from_pretrained(
                base.source, local_files_only=local_only, **options
            )
    except (OSError, ValueError, EnvironmentError) as exc:  # noqa: UP024 - diffusers raises both
        hint = (
            "it is not downloaded here and the model hub can't be reached"
            if base.kind == "hub"
            else "the files are missing or not a Stable Diffusion 1.x pipeline"
        )
        raise BaseModelError(f"{SETTING}={base.spec!r} can't be loaded: {hint} ({exc}).") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(where.device)


def native_resolution(pipe) -> int:
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
