"""DreamBooth-LoRA training: a config in, a LoRA `.safetensors` file and metrics out.

The shape follows diffusers' `train_dreambooth_lora.py` with one change that matters on every
machine: VAE latents (their distributions, for the image and its mirror) and the prompt embedding
are computed once before the loop instead of at every step. Each step draws its randomness from a
generator seeded by (seed, step), so a run resumed from a checkpoint continues exactly where the
interrupted one would have gone.

`train_lora` is the loop. Each part of it is a function below that works only on what it is
given: latents (`encode_latents`, `class_latents`), prompts (`encode_prompts`), adapters
(`add_adapters`), one step (`training_step`), checkpoints (`save_checkpoint`, `load_checkpoint`)
and samples (`draw_sample`). What changes during a run lives in one `_RunState`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from creator.engine import denoisers, families
from creator.engine.denoisers import Conditioning
from creator.engine.device import Placement, placement
from creator.engine.families import SD, Family
from creator.engine.options import CLASS_PROMPT, INSTANCE_PROMPT

MAX_GRAD_NORM = 1.0  # as diffusers' DreamBooth script
OPTIMIZERS = ("adamw", "adamw8bit")


@dataclass
class TrainConfig:
    instance_prompt: str = INSTANCE_PROMPT
    class_prompt: str = CLASS_PROMPT
    resolution: int = 512
    rank: int = 4
    alpha: int | None = None  # defaults to rank
    learning_rate: float = 1e-4
    steps: int = 400
    batch_size: int = 1
    seed: int = 0
    mixed_precision: str = "auto"  # auto | no | fp16 | bf16
    train_text_encoder: bool = False
    prior_preservation: bool = False
    num_class_images: int = 0
    prior_loss_weight: float = 1.0
    flip: bool = True
    gradient_checkpointing: bool | None = None  # None: on for CUDA GPUs under 48 GB
    checkpoint_every: int = 100
    sample_steps: int = 20
    # Speed and memory on a GPU (no effect on a CPU unless said): compile the denoiser with
    # torch.compile; 8-bit AdamW (bitsandbytes, CUDA only); channels_last for UNets; move the
    # text encoders off the GPU once the prompts are encoded.
    compile: bool = False
    optimizer: str = "adamw"
    channels_last: bool | None = None  # None: on for CUDA UNets
    offload_text_encoders: bool | None = None  # None: on for CUDA
    # Likeness-aware: weigh the loss inside each photo's face box by 1 + face_weight (0: off).
    face_weight: float = 0.0

    def validate(self) -> None:
        """Refuse incompatible options before any model is loaded."""
        if self.steps < 1:
            raise ValueError("steps must be at least 1.")
        if self.rank < 1:
            raise ValueError("rank must be at least 1.")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive.")
        if self.resolution < 8 or self.resolution % 8:
            raise ValueError("resolution must be a positive multiple of 8 (latents are 1/8 size).")
        if self.prior_preservation and (self.num_class_images < 1 or not self.class_prompt):
            raise ValueError("prior_preservation needs a class_prompt and num_class_images >= 1.")
        if not self.prior_preservation and self.num_class_images:
            raise ValueError("num_class_images only makes sense with prior_preservation.")
        if self.mixed_precision not in ("auto", "no", "fp16", "bf16"):
            raise ValueError("mixed_precision is one of auto, no, fp16, bf16.")
        if self.checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer is one of {', '.join(OPTIMIZERS)}.")
        if self.face_weight < 0:
            raise ValueError("face_weight must be 0 or more.")

    def fingerprint(self, image_hashes: list[str], base_id: str) -> str:
        payload = json.dumps([asdict(self), image_hashes, base_id], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Report:
    step: int
    total: int
    loss: float
    eta_seconds: float | None
    phase: str
    losses: list[tuple[int, float]] = field(default_factory=list)  # every step so far


@dataclass
class Sample:
    step: int
    path: str
    likeness: float | None  # face-embedding distance to the consent selfie; None: no face


@dataclass
class TrainResult:
    lora_path: Path
    sha256: str
    steps: int
    losses: list[tuple[int, float]]
    samples: list[Sample]
    best_step: int
    resumed_from: int | None
    seconds_per_step: float
    metadata: dict[str, str] = field(default_factory=dict)


class TrainingStopped(Exception):
    """Raised between steps when `should_stop` said so; the last checkpoint is kept."""

    def __init__(self, step: int):
        super().__init__(f"Training stopped after step {step}.")
        self.step = step  # the last completed step


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_training_image(path: Path, resolution: int) -> Image.Image:
    """Upright RGB, centre-cropped square, at the training resolution."""
    with Image.open(path) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    return ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


@dataclass(frozen=True)
class _Data:
    """What every step reads and no step changes."""

    family: Family
    scheduler: object  # diffusers' DDPM (SD, SDXL) or flow-matching (FLUX) scheduler
    latents: tuple[torch.Tensor, torch.Tensor]  # mean, std of each photo (and its mirror)
    class_latents: tuple[torch.Tensor, torch.Tensor] | None  # only with prior preservation
    scaling: float
    shift: float  # FLUX's VAE centres latents before scaling; 0 for SD and SDXL
    vae_scale: int  # pixels per latent
    instance: Conditioning
    class_prompt: Conditioning
    face_masks: torch.Tensor | None  # per latent: loss weights (1 outside the face box)


@dataclass(frozen=True)
class _Model:
    """The parts that learn; `text_encoder` is None unless it trains (SD only)."""

    denoiser: torch.nn.Module  # the UNet, or FLUX's transformer
    text_encoder: torch.nn.Module | None
    params: list[torch.nn.Parameter]  # the LoRA weights, fp32
    optimizer: torch.optim.Optimizer
    forward: Callable  # the denoiser's forward: compiled when config.compile


@dataclass(frozen=True)
class _Best:
    likeness: float
    step: int
    weights: dict[str, dict[str, torch.Tensor]]


@dataclass
class _RunState:
    """What a run changes as it goes; checkpoints carry its step, losses and samples."""

    step: int = 0  # the last completed step
    losses: list[tuple[int, float]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    resumed_from: int | None = None
    best: _Best | None = None


def train_lora(
    config: TrainConfig,
    *,
    pipe,
    base_id: str,
    images: list[Path],
    out_dir: Path,
    metadata: dict[str, str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[Report], None] | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    likeness: Callable[[Image.Image], float | None] | None = None,
    face_boxes: list[tuple[float, float, float, float] | None] | None = None,
    where: Placement | None = None,
) -> TrainResult:
    """Train a LoRA on `images` with `pipe`'s base model (SD 1.x/2.x, SDXL or FLUX.1). Returns
    where the LoRA file is.

    `should_stop` is the only way to stop: it is asked before every step, and when it returns
    True, TrainingStopped(last completed step) is raised and the last checkpoint stays, so a retry
    resumes. To cancel, return True from it; never raise from it or from the other callbacks.
    `on_progress` gets step, loss and ETA at most once a second. Samples are drawn at every
    checkpoint; with `likeness` (lower is closer), the best-scoring sample's weights are kept.
    `face_boxes` (one per image: left, top, right, bottom as fractions of the square crop, or
    None) weigh the loss with `config.face_weight`.
    """
    config.validate()
    if not images:
        raise ValueError("There are no training images.")
    family = families.family_of_pipeline_class(type(pipe).__name__)
    if family is None:
        raise ValueError(f"{type(pipe).__name__} is not a pipeline Candor can train.")
    if config.train_text_encoder and family is not SD:
        raise ValueError(denoisers.TEXT_ENCODER_TRAINING_ONLY_SD)
    scheduler = denoisers.train_scheduler(pipe, family)
    where = where or placement(config.mixed_precision)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_hashes = [file_sha256(p) for p in images]
    fingerprint = config.fingerprint(image_hashes, base_id)
    checkpoint_path = out_dir / "checkpoint.pt"
    report = on_progress or (lambda r: None)

    report(Report(0, config.steps, math.nan, None, "Preparing the photos"))
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)
    vae, unet = pipe.vae, denoisers.denoiser(pipe, family)
    latents = encode_latents(vae, images, config, where)
    prior = None
    if config.prior_preservation:
        report(Report(0, config.steps, math.nan, None, "Drawing class images"))
        prior = class_latents(pipe, family, config, where)  # before the adapters: the base's own
    text_encoder = pipe.text_encoder if config.train_text_encoder else None
    params = add_adapters(unet, text_encoder, family, config)
    if checkpointing(config, where):
        unet.enable_gradient_checkpointing()
    if family is not families.FLUX and _on(config.channels_last, where):
        unet.to(memory_format=torch.channels_last)
    unet.train()
    model = _Model(unet, text_encoder, params, make_optimizer(params, config, where), unet)
    if config.compile:
        model = _Model(unet, text_encoder, params, model.optimizer, torch.compile(unet))
    resolution = config.resolution
    data = _Data(
        family,
        scheduler,
        latents,
        prior,
        float(vae.config.scaling_factor),
        denoisers.latent_shift(vae),
        int(pipe.vae_scale_factor),
        denoisers.encode_prompt(pipe, family, config.instance_prompt, resolution, where.device),
        denoisers.encode_prompt(pipe, family, config.class_prompt, resolution, where.device),
        face_masks(face_boxes, latents[0].shape, config) if config.face_weight else None,
    )
    empty = denoisers.encode_prompt(pipe, family, "", resolution, where.device)
    offloaded = offload_text_encoders(pipe, config, where)
    state = load_checkpoint(checkpoint_path, fingerprint)
    run = restore(state, model) if state else _RunState()

    start_step, timings = run.step, []
    loop_started, last_report = time.monotonic(), float("-inf")
    try:
        for step in range(start_step + 1, config.steps + 1):
            if should_stop():
                raise TrainingStopped(run.step)
            tick = time.monotonic()
            loss = training_step(step, model, data, config, where)
            run.step = step
            run.losses.append((step, round(loss, 6)))
            timings.append(time.monotonic() - tick)

            if step % config.checkpoint_every == 0 or step == config.steps:
                image = draw_sample(pipe, family, config, data.instance, empty)
                sample = save_sample(image, step, out_dir, likeness)
                keep_sample(run, sample, model)
                if on_sample:
                    on_sample(sample)
                save_checkpoint(checkpoint_path, checkpoint_state(fingerprint, run, model))
            now = time.monotonic()
            if now - last_report >= 1.0 or step == config.steps:  # at most once a second
                last_report = now
                eta = (now - loop_started) / (step - start_step) * (config.steps - step)
                report(Report(step, config.steps, loss, eta, "Training", list(run.losses)))
    finally:
        for module in offloaded:  # the pipe is whole again, whatever happened
            module.to(where.device)

    # --- the LoRA file: the best sample's weights, or the last ---------------------------------
    best_step = use_best_weights(run, model, config.steps)
    meta = {
        "candor.base_model": base_id,
        "candor.family": family.name,
        "candor.config": json.dumps(asdict(config), sort_keys=True),
        "candor.training_images_sha256": json.dumps(image_hashes),
        "candor.best_step": str(best_step),
        **(metadata or {}),
    }
    lora_path = _write_lora(pipe, family, model.denoiser, model.text_encoder, out_dir, meta)
    unet.eval()
    return TrainResult(
        lora_path=lora_path,
        sha256=file_sha256(lora_path),
        steps=config.steps,
        losses=run.losses,
        samples=run.samples,
        best_step=best_step,
        resumed_from=run.resumed_from,
        seconds_per_step=sorted(timings)[len(timings) // 2] if timings else 0.0,
        metadata=meta,
    )


# --- set-up: what does not change between steps ------------------------------------------------


CHECKPOINTING_BELOW_GIB = 48  # GPUs with less memory than this recompute activations by default


def checkpointing(config: TrainConfig, where: Placement) -> bool:
    """Gradient checkpointing as set; by default only on a GPU small enough to need it (it
    costs ~20-30% of step time; an 80-141 GB GPU holds the activations of these batches)."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    if not where.is_cuda:
        return False
    total = torch.cuda.get_device_properties(where.device).total_memory
    return total < CHECKPOINTING_BELOW_GIB * 2**30


def _on(option: bool | None, where: Placement) -> bool:
    """A speed option's value: as set, or (None) on for CUDA only."""
    return where.is_cuda if option is None else option


def encode_latents(
    vae, images: list[Path], config: TrainConfig, where: Placement
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (fp32) of the VAE latents of each photo and, with `flip`, its mirror."""
    means, stds = [], []
    # SDXL's VAE overflows in fp16 (its config says force_upcast): encode those in fp32.
    dtype = torch.float32 if getattr(vae.config, "force_upcast", False) else where.dtype
    original = next(vae.parameters()).dtype
    if dtype != original:
        vae.to(dtype)
    with torch.no_grad():
        # One image at a time: encoding the whole set in one batch would set the peak memory.
        for path in images:
            pixels = _to_tensor(load_training_image(path, config.resolution))[None]
            pixels = pixels.to(where.device, dtype=dtype)
            for variant in (pixels, torch.flip(pixels, dims=[3])) if config.flip else (pixels,):
                dist = vae.encode(variant).latent_dist
                means.append(dist.mean.float())
                stds.append(dist.std.float())
    if dtype != original:
        vae.to(original)
    return torch.cat(means), torch.cat(stds)


def class_latents(
    pipe, family: Family, config: TrainConfig, where: Placement
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (fp32) of the latents of class images the base model draws itself."""
    generator = torch.Generator().manual_seed(config.seed + 7919)
    with torch.no_grad():
        class_images = pipe(
            [config.class_prompt] * config.num_class_images,
            height=config.resolution,
            width=config.resolution,
            num_inference_steps=config.sample_steps,
            generator=generator,
            output_type="pt",
            **denoisers.pipe_options(pipe, family),
        ).images
        pixels = (class_images * 2 - 1).to(where.device, next(pipe.vae.parameters()).dtype)
        dist = pipe.vae.encode(pixels).latent_dist
    return dist.mean.float(), dist.std.float()


def face_masks(
    boxes: list[tuple[float, float, float, float] | None] | None, shape, config: TrainConfig
) -> torch.Tensor:
    """Loss weights per cached latent: 1 + face_weight inside the photo's face box (mirrored for
    the flipped copy), 1 elsewhere. A photo without a box weighs evenly."""
    count, _, height, width = shape
    masks = torch.ones(count, 1, height, width)
    per_image = 2 if config.flip else 1
    for index, box in enumerate(boxes or []):
        if box is None:
            continue
        left, top, right, bottom = (min(max(v, 0.0), 1.0) for v in box)
        rows = slice(int(top * height), max(int(top * height) + 1, math.ceil(bottom * height)))
        for copy in range(per_image):
            if index * per_image + copy >= count:
                break
            a, b = (1 - right, 1 - left) if copy else (left, right)
            cols = slice(int(a * width), max(int(a * width) + 1, math.ceil(b * width)))
            masks[index * per_image + copy, :, rows, cols] = 1.0 + config.face_weight
    return masks


def add_adapters(
    unet, text_encoder, family: Family, config: TrainConfig
) -> list[torch.nn.Parameter]:
    """Add LoRA adapters (the text encoder's too, if it trains); returns their fp32 parameters."""
    from peft import LoraConfig

    targets = [(unet, denoisers.lora_targets(family))]
    if text_encoder is not None:
        targets.append((text_encoder, denoisers.TEXT_LORA_TARGETS))
    # LoRA's random init comes from the global generator: seed it here, without disturbing it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for module, names in targets:
            lora = LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha or config.rank,
                init_lora_weights="gaussian",
                target_modules=names,
            )
            module.add_adapter(lora)
    trainable = [p for m, _ in targets for p in m.parameters() if p.requires_grad]
    for param in trainable:
        param.data = param.data.float()  # LoRA weights train in fp32 even when the base is half
    return trainable


def make_optimizer(params, config: TrainConfig, where: Placement) -> torch.optim.Optimizer:
    """Fused AdamW (one kernel for all LoRA tensors), or bitsandbytes' 8-bit AdamW on CUDA."""
    if config.optimizer == "adamw8bit":
        if not where.is_cuda:
            raise ValueError("optimizer='adamw8bit' needs a CUDA GPU; this machine has none.")
        try:
            import bitsandbytes
        except ImportError as exc:
            raise ValueError(
                "optimizer='adamw8bit' needs bitsandbytes: pip install bitsandbytes."
            ) from exc
        return bitsandbytes.optim.AdamW8bit(params, lr=config.learning_rate, weight_decay=1e-2)
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=1e-2, fused=True)


def offload_text_encoders(pipe, config: TrainConfig, where: Placement) -> list[torch.nn.Module]:
    """With the prompts encoded, frozen text encoders only take GPU memory (T5-XXL: ~9.5 GB in
    bf16): move them to the CPU for the run. Returns what moved, to move back."""
    if not where.is_cuda or config.train_text_encoder:
        return []
    if not _on(config.offload_text_encoders, where):
        return []
    moved = denoisers.text_encoders(pipe)
    for module in moved:
        module.to("cpu")
    torch.cuda.empty_cache()
    return moved


# --- one step ------------------------------------------------------------------------------------


def training_step(
    step: int, model: _Model, data: _Data, config: TrainConfig, where: Placement
) -> float:
    """One optimizer step; returns its loss.

    All randomness comes from a generator seeded by (seed, step), drawn in a fixed order: that
    order is what lets a resumed run end bit-for-bit where an unbroken one does.
    """
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    batch = config.batch_size
    latents, index = _draw_latents(data.latents, batch, generator, data)
    cond = _conditioning(data.instance, model.text_encoder, batch)
    weights = data.face_masks[index].to(where.device) if data.face_masks is not None else None
    if config.prior_preservation:
        class_latents, _ = _draw_latents(data.class_latents, batch, generator, data)
        latents = torch.cat([latents, class_latents])
        cond = cond.cat(_conditioning(data.class_prompt, model.text_encoder, batch))
    noise = torch.randn(latents.shape, generator=generator).to(where.device)
    noisy, timesteps, target = denoisers.noised(
        data.family, data.scheduler, latents, noise, generator
    )
    with torch.autocast(where.device.type, dtype=where.dtype, enabled=where.dtype != torch.float32):
        prediction = denoisers.predict(
            data.family, model.forward, noisy, timesteps, cond, where.dtype, data.vae_scale
        )
    prediction, target = prediction.float(), target.float()
    if config.prior_preservation:
        prediction, prior_prediction = prediction.chunk(2)
        target, prior_target = target.chunk(2)
        loss = _loss(prediction, target, weights) + config.prior_loss_weight * F.mse_loss(
            prior_prediction, prior_target
        )
    else:
        loss = _loss(prediction, target, weights)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.params, MAX_GRAD_NORM, foreach=True)
    model.optimizer.step()
    model.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _loss(prediction, target, weights) -> torch.Tensor:
    """Mean squared error, or its weighted mean where face masks weigh the face box."""
    if weights is None:
        return F.mse_loss(prediction, target)
    weights = weights.expand_as(prediction)
    return ((prediction - target) ** 2 * weights).sum() / weights.sum()


def _draw_latents(dist, batch: int, generator: torch.Generator, data: _Data):
    """A batch of latents sampled from the cached distributions (two draws from `generator`),
    and which cached latents they came from."""
    mean, std = dist
    index = torch.randint(0, mean.shape[0], (batch,), generator=generator)
    noise = torch.randn(mean[index].shape, generator=generator)
    return (mean[index] + std[index] * noise.to(mean.device) - data.shift) * data.scaling, index


def _conditioning(prompt: Conditioning, text_encoder, batch: int) -> Conditioning:
    if text_encoder is not None:
        prompt = denoisers.reencode(text_encoder, prompt)
    return prompt.batch(batch)


# --- checkpoints ---------------------------------------------------------------------------------


def lora_weights(model: _Model) -> dict[str, dict[str, torch.Tensor]]:
    """CPU copies of the LoRA weights, by part ("unet" — the denoiser, whatever its kind —
    and "text_encoder" when it trains)."""
    from peft.utils import get_peft_model_state_dict

    weights = {"unet": get_peft_model_state_dict(model.denoiser)}
    if model.text_encoder is not None:
        weights["text_encoder"] = get_peft_model_state_dict(model.text_encoder)
    return {k: {n: t.detach().cpu().clone() for n, t in v.items()} for k, v in weights.items()}


def checkpoint_state(fingerprint: str, run: _RunState, model: _Model) -> dict:
    return {
        "fingerprint": fingerprint,
        "step": run.step,
        "optimizer": model.optimizer.state_dict(),
        "losses": run.losses,
        "samples": [asdict(s) for s in run.samples],
        **lora_weights(model),
    }


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint whole."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The checkpoint at `path` if it was written for this fingerprint (config, photos, base)."""
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state if state.get("fingerprint") == fingerprint else None


def restore(state: dict, model: _Model) -> _RunState:
    """Load a checkpoint's weights and optimizer state; returns the run as it was saved."""
    from peft.utils import set_peft_model_state_dict

    set_peft_model_state_dict(model.denoiser, state["unet"])
    if model.text_encoder is not None and state.get("text_encoder"):
        set_peft_model_state_dict(model.text_encoder, state["text_encoder"])
    model.optimizer.load_state_dict(state["optimizer"])
    return _RunState(
        step=state["step"],
        losses=[tuple(x) for x in state["losses"]],
        samples=[Sample(**s) for s in state["samples"]],
        resumed_from=state["step"],
    )


# --- samples and the best weights ----------------------------------------------------------------


def draw_sample(
    pipe, family: Family, config: TrainConfig, prompt: Conditioning, empty: Conditioning
) -> Image.Image:
    """The instance prompt drawn with the same seed every time, so samples compare across steps.
    Drawn from the cached embeddings: the text encoders may be off the GPU."""
    model = denoisers.denoiser(pipe, family)
    model.eval()
    with torch.no_grad():
        image = pipe(
            height=config.resolution,
            width=config.resolution,
            num_inference_steps=config.sample_steps,
            generator=torch.Generator().manual_seed(config.seed),
            **denoisers.sample_options(family, prompt, empty),
        ).images[0]
    model.train()
    return image


def save_sample(image: Image.Image, step: int, out_dir: Path, likeness) -> Sample:
    """Save the image under `out_dir`/samples and score it with `likeness`, if given."""
    path = out_dir / "samples" / f"step-{step:06d}.png"
    path.parent.mkdir(exist_ok=True)
    image.save(path)
    return Sample(step=step, path=str(path), likeness=likeness(image) if likeness else None)


def keep_sample(run: _RunState, sample: Sample, model: _Model) -> None:
    """Add `sample` to the run; if it scores closer than the best so far, keep its weights."""
    run.samples.append(sample)
    if sample.likeness is not None and (run.best is None or sample.likeness < run.best.likeness):
        run.best = _Best(sample.likeness, sample.step, lora_weights(model))


def use_best_weights(run: _RunState, model: _Model, last_step: int) -> int:
    """Put the best sample's weights back, if there is one; returns the step they come from."""
    from peft.utils import set_peft_model_state_dict

    if run.best is None:
        return last_step
    set_peft_model_state_dict(model.denoiser, run.best.weights["unet"])
    if model.text_encoder is not None:
        set_peft_model_state_dict(model.text_encoder, run.best.weights["text_encoder"])
    return run.best.step


def _write_lora(pipe, family: Family, denoiser, text_encoder, out_dir: Path, meta) -> Path:
    """diffusers' LoRA format for the family's pipeline, with its adapter metadata (alpha), plus
    Candor's provenance and the family it was trained for."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import save_file

    part = family.denoiser  # "unet" or "transformer": the keyword save_lora_weights takes
    layers = {
        f"{part}_lora_layers": convert_state_dict_to_diffusers(get_peft_model_state_dict(denoiser)),
        f"{part}_lora_adapter_metadata": denoiser.peft_config["default"].to_dict(),
    }
    if text_encoder is not None:
        layers["text_encoder_lora_layers"] = convert_state_dict_to_diffusers(
            get_peft_model_state_dict(text_encoder)
        )
        layers["text_encoder_lora_adapter_metadata"] = text_encoder.peft_config["default"].to_dict()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        type(pipe).save_lora_weights(tmp, weight_name="lora.safetensors", **layers)
        written = Path(tmp) / "lora.safetensors"
        with safe_open(str(written), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            metadata = dict(handle.metadata() or {})
        metadata.update(meta)
        final = out_dir / "lora.safetensors"
        save_file(tensors, str(final), metadata=metadata)
    final.chmod(0o640)  # safetensors writes owner-only files; web and worker may differ
    return final
