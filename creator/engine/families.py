"""Base-model families: which one a model folder or file is, and what each expects by default.

Torch-free on purpose: web pages read the defaults (generation steps, guidance) and the family's
name without loading a model. The torch side of each family lives in `denoisers.py`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path


class FamilyError(Exception):
    """The model is of a family Candor can't train or generate with, or can't be read."""


@dataclass(frozen=True)
class Defaults:
    """What a user of this family would expect when they set nothing."""

    resolution: int  # native training and generation size (square)
    train_steps: int
    rank: int
    learning_rate: float
    generation_steps: int
    guidance: float


@dataclass(frozen=True)
class Family:
    name: str  # "sd", "sdxl", "flux"
    label: str  # shown to operators and creators
    pipeline_class: str  # diffusers pipeline class name
    denoiser: str  # the pipeline attribute that is trained: "unet" or "transformer"
    defaults: Defaults
    negative_prompt: bool = True  # whether generation takes a negative prompt


SD = Family(
    "sd",
    "Stable Diffusion 1.x/2.x",
    "StableDiffusionPipeline",
    "unet",
    # diffusers' README_dreambooth LoRA example: 512 px, lr 1e-4, rank 4, 500 steps; the
    # StableDiffusionPipeline's own call defaults: 50 steps, guidance 7.5 (25 steps with DPM++,
    # Candor's scheduler, reach the same quality).
    Defaults(512, 500, 4, 1e-4, 25, 7.5),
)
SDXL = Family(
    "sdxl",
    "Stable Diffusion XL",
    "StableDiffusionXLPipeline",
    "unet",
    # diffusers' README_sdxl DreamBooth LoRA example: 1024 px, lr 1e-4, rank 4, 500 steps;
    # StableDiffusionXLPipeline's call default guidance 5.0; 30 steps as in its model cards.
    Defaults(1024, 500, 4, 1e-4, 30, 5.0),
)
FLUX = Family(
    "flux",
    "FLUX.1",
    "FluxPipeline",
    "transformer",
    # Replicate's flux-dev-lora-trainer and Astria's flux1 branch: 1,000 steps, rank 16, lr 4e-4
    # at 1024 px (diffusers' README_flux uses 512 px, rank 4, lr 1e-4 as a light default);
    # FluxPipeline's call defaults for FLUX.1-dev: 28 steps, guidance 3.5.
    Defaults(1024, 1000, 16, 4e-4, 28, 3.5),
    negative_prompt=False,  # FLUX.1 is guidance-distilled: no classifier-free negative prompt
)
# FLUX.1-schnell is timestep-distilled: 4 steps, no guidance (its model card).
FLUX_SCHNELL_GENERATION = (4, 0.0)

FAMILIES = {f.name: f for f in (SD, SDXL, FLUX)}
_BY_PIPELINE = {
    "StableDiffusionPipeline": SD,
    "StableDiffusionXLPipeline": SDXL,
    "FluxPipeline": FLUX,
}


def family_of_pipeline_class(name: str) -> Family | None:
    return _BY_PIPELINE.get(name)


UNSUPPORTED = (
    "{what} is a {found} model; Candor trains and generates with Stable Diffusion 1.x/2.x, "
    "Stable Diffusion XL and FLUX.1 (dev or schnell) base models."
)
HALF_DOWNLOADED = (
    "{what} is incomplete: {missing}. Download the model again (a partial download leaves "
    "such gaps)."
)


def read_index(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / "model_index.json").read_text())
    except (OSError, ValueError) as exc:
        raise FamilyError(f"{folder}: model_index.json can't be read ({exc}).") from exc


def family_of_folder(folder: Path, what: str | None = None) -> Family:
    """The family of a diffusers folder, from its model_index.json's pipeline class."""
    index = read_index(folder)
    found = str(index.get("_class_name", "unknown"))
    family = _BY_PIPELINE.get(found)
    if family is None:
        raise FamilyError(UNSUPPORTED.format(what=what or str(folder), found=found))
    return family


def missing_parts(folder: Path) -> list[str]:
    """The components model_index.json names whose folder or weights are not all there."""
    folder = Path(folder)
    missing = []
    for name, value in sorted(read_index(folder).items()):
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        part = folder / name
        if not part.is_dir():
            missing.append(f"{name}/ is missing")
            continue
        if list(part.glob("*.incomplete")) or list(part.glob("*.part")):
            missing.append(f"{name}/ has a file still downloading")
            continue
        if name.startswith(("tokenizer", "scheduler", "feature_extractor")):
            continue
        weights = [*part.glob("*.safetensors"), *part.glob("*.bin")]
        shards = list(part.glob("*.index.json"))
        if not weights:
            missing.append(f"{name}/ has no weights")
        for index_file in shards:
            try:
                wanted = set(json.loads(index_file.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError):
                missing.append(f"{index_file.relative_to(folder)} can't be read")
                continue
            absent = sorted(w for w in wanted if not (part / w).is_file())
            if absent:
                missing.append(f"{name}/ lacks {', '.join(absent)}")
    return missing


def safetensors_header(path: Path) -> dict:
    """A .safetensors file's JSON header: tensor names (and shapes) plus `__metadata__`, read
    without torch and without the weights."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                raise ValueError("header too large")
            return json.loads(handle.read(length))
    except (OSError, ValueError, struct.error) as exc:
        raise FamilyError(f"{path} is not a readable .safetensors file ({exc}).") from exc


def safetensors_keys(path: Path) -> list[str]:
    return [k for k in safetensors_header(path) if k != "__metadata__"]


def family_of_checkpoint(path: Path, what: str | None = None) -> Family:
    """The family of a single-file checkpoint, from the names of its tensors."""
    keys = safetensors_keys(path) if Path(path).suffix == ".safetensors" else None
    if keys is None:
        # A pickled .ckpt can't be inspected without unpickling it; SD 1.x is what ships so.
        return SD
    if any(k.startswith(("double_blocks.", "model.diffusion_model.double_blocks.")) for k in keys):
        return FLUX
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return SDXL
    if any(k.startswith("model.diffusion_model.input_blocks.") for k in keys):
        return SD
    raise FamilyError(
        UNSUPPORTED.format(what=what or str(path), found="unrecognised (no tensor names match)")
    )


def lora_family(path: Path) -> str | None:
    """The family a LoRA file was trained for: Candor's own tag, else guessed from its keys."""
    header = safetensors_header(path)  # read once: the tag, else the tensor names
    tagged = (header.get("__metadata__") or {}).get("candor.family")
    if tagged:
        return tagged
    keys = [k for k in header if k != "__metadata__"]
    if any(k.startswith(("transformer.", "lora_transformer_")) for k in keys):
        return FLUX.name
    if any(k.startswith(("text_encoder_2.", "lora_te2_")) for k in keys):
        return SDXL.name
    return None  # a plain unet LoRA: SD or SDXL; loading it will tell


def generation_defaults(family: Family, *, schnell: bool = False) -> tuple[int, float]:
    if schnell:
        return FLUX_SCHNELL_GENERATION
    return family.defaults.generation_steps, family.defaults.guidance


def is_schnell(folder: Path) -> bool:
    """FLUX.1-schnell has no guidance embedding (dev has one)."""
    try:
        config = json.loads((Path(folder) / "transformer" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return not config.get("guidance_embeds", False)
