"""Base model resolution: the built-in tiny model, a local diffusers folder, a single-file
checkpoint, or a hub id. Anything unloadable raises BaseModelError naming the setting."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from creator.engine import families, tiny
from creator.engine.families import Defaults, Family, FamilyError

if TYPE_CHECKING:  # torch-free at import: web pages read families and defaults from here
    from creator.engine.device import Placement

SETTING = "CANDOR_BASE_MODEL"
# Memory options for big models on a GPU (QUANTIZE): what each needs and what it costs is in
# the README ("Memory"). The denoiser alone is quantised; LoRA weights train in full precision.
QUANTIZE_CHOICES = ("none", "nf4", "int8")


class BaseModelError(Exception):
    pass


@dataclass(frozen=True)
class BaseModel:
    spec: str  # as configured, e.g. "builtin:tiny", "/models/sd15", "org/name"
    kind: str  # "builtin", "folder", "file" or "hub"
    source: str  # what diffusers is given
    family: Family | None = None  # None for a hub id until it is loaded
    schnell: bool = False  # FLUX.1-schnell: timestep-distilled, no guidance

    @property
    def defaults(self) -> Defaults:
        if self.kind == "builtin":
            return tiny.TINY_FLUX_DEFAULTS if self.family is families.FLUX else tiny.TINY_DEFAULTS
        family = self.family or families.SD
        steps, guidance = families.generation_defaults(family, schnell=self.schnell)
        return replace(family.defaults, generation_steps=steps, guidance=guidance)


def resolve(spec: str, cache_dir: Path) -> BaseModel:
    """What `spec` names, its family and whether it is all there (no weights are read)."""
    spec = (spec or tiny.TINY_ID).strip()
    if spec in tiny.TINY_MODELS:
        folder = tiny.tiny_model_path(cache_dir, spec)
        return BaseModel(spec, "builtin", str(folder), families.FAMILIES[tiny.TINY_MODELS[spec]])
    if spec.startswith("builtin:"):
        raise BaseModelError(
            f"{SETTING}={spec!r}: the built-in models are "
            + ", ".join(repr(k) for k in tiny.TINY_MODELS)
            + "."
        )
    path = Path(spec).expanduser()
    what = f"{SETTING}={spec!r}"
    try:
        if path.is_dir():
            if not (path / "model_index.json").exists():
                raise BaseModelError(
                    f"{what} is a folder but not a diffusers pipeline (it has no model_index.json)."
                )
            family = families.family_of_folder(path, what)
            missing = families.missing_parts(path)
            if missing:
                raise BaseModelError(
                    families.HALF_DOWNLOADED.format(what=what, missing="; ".join(missing))
                )
            schnell = family is families.FLUX and families.is_schnell(path)
            return BaseModel(spec, "folder", str(path), family, schnell)
        if path.suffix in (".safetensors", ".ckpt"):
            if not path.is_file():
                raise BaseModelError(f"{what}: no such file.")
            return BaseModel(spec, "file", str(path), families.family_of_checkpoint(path, what))
    except FamilyError as exc:
        raise BaseModelError(str(exc)) from exc
    if spec.startswith(("/", ".", "~")):
        raise BaseModelError(f"{what}: no such folder or file.")
    return BaseModel(spec, "hub", spec)


def described(spec: str) -> BaseModel:
    """What a base-model setting names, read from its files alone: no model is built, loaded or
    checked for completeness (a web page can ask). Its family is None where it can't be told."""
    spec = (spec or tiny.TINY_ID).strip()
    if spec in tiny.TINY_MODELS:
        return BaseModel(spec, "builtin", "", families.FAMILIES[tiny.TINY_MODELS[spec]])
    path = Path(spec).expanduser()
    try:
        if path.is_dir():
            family = families.family_of_folder(path)
            schnell = family is families.FLUX and families.is_schnell(path)
            return BaseModel(spec, "folder", str(path), family, schnell)
        if path.is_file():
            return BaseModel(spec, "file", str(path), families.family_of_checkpoint(path))
    except FamilyError:
        pass
    return BaseModel(spec, "hub", spec)


def defaults_for(spec: str) -> Defaults:
    """The family defaults for a base-model setting (SD's where the family can't be told)."""
    return described(spec).defaults


def _quantization(base: BaseModel, family: Family, quantize: str, where: Placement):
    """diffusers' quantisation config for the denoiser, or a clear refusal."""
    if quantize == "none":
        return None
    if quantize not in QUANTIZE_CHOICES:
        raise BaseModelError(f"QUANTIZE={quantize!r}: choose one of {', '.join(QUANTIZE_CHOICES)}.")
    if not where.is_cuda:
        raise BaseModelError(f"QUANTIZE={quantize!r} needs a CUDA GPU; this machine has none.")
    from diffusers import PipelineQuantizationConfig

    try:
        if quantize == "nf4":
            import bitsandbytes  # noqa: F401 - only to say plainly when it is missing

            return PipelineQuantizationConfig(
                quant_backend="bitsandbytes_4bit",
                quant_kwargs={
                    "load_in_4bit": True,
                    "bnb_4bit_quant_type": "nf4",
                    "bnb_4bit_compute_dtype": where.dtype,
                },
                components_to_quantize=[family.denoiser],
            )
        import torchao  # noqa: F401

        return PipelineQuantizationConfig(
            quant_backend="torchao",
            quant_kwargs={"quant_type": "int8wo"},
            components_to_quantize=[family.denoiser],
        )
    except ImportError as exc:
        package = "bitsandbytes" if quantize == "nf4" else "torchao"
        raise BaseModelError(
            f"QUANTIZE={quantize!r} needs the {package} package: pip install {package}."
        ) from exc


def load_pipeline(base: BaseModel, where: Placement, *, quantize: str = "none"):
    """The family's diffusers pipeline for a base model, on its device (SD: safety checker off)."""
    import diffusers

    family = base.family or families.SD
    options: dict = {"dtype": where.dtype}
    if family is families.SD:
        options.update(safety_checker=None, requires_safety_checker=False)
    quantization = _quantization(base, family, quantize, where)
    if quantization is not None:
        options["quantization_config"] = quantization
    try:
        if base.kind == "file":
            pipeline_class = getattr(diffusers, family.pipeline_class)
            pipe = pipeline_class.from_single_file(base.source, **options)
        else:
            local_only = base.kind != "hub" or os.environ.get("HF_HUB_OFFLINE") == "1"
            pipeline_class = diffusers.DiffusionPipeline
            if base.family is not None:
                pipeline_class = getattr(diffusers, family.pipeline_class)
            pipe = pipeline_class.from_pretrained(
                base.source, local_files_only=local_only, **options
            )
    except (OSError, ValueError, EnvironmentError) as exc:  # noqa: UP024 - diffusers raises both
        hint = (
            "it is not downloaded here and the model hub can't be reached"
            if base.kind == "hub"
            else f"the files are missing or not a {family.label} pipeline"
        )
        raise BaseModelError(f"{SETTING}={base.spec!r} can't be loaded: {hint} ({exc}).") from exc
    if base.family is None and family_of(pipe) is None:
        raise BaseModelError(
            families.UNSUPPORTED.format(what=f"{SETTING}={base.spec!r}", found=type(pipe).__name__)
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe if quantization is not None else pipe.to(where.device)


def family_of(pipe) -> Family | None:
    return families.family_of_pipeline_class(type(pipe).__name__)


def native_resolution(pipe) -> int:
    """The size the base model was trained at: its denoiser's sample size times the VAE's scale."""
    family = family_of(pipe) or families.SD
    if family is families.FLUX:
        # FLUX's transformer has no sample size; the VAE's config carries the training size.
        return int(pipe.vae.config.sample_size)
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
