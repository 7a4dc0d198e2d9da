"""DreamBooth-LoRA training: a config in, a LoRA `.safetensors` file and metrics out.

The shape follows diffusers' `train_dreambooth_lora.py` with one change that matters on every
machine: VAE latents (their distributions, for the image and its mirror) and the prompt embedding
are computed once before the loop instead of at every step. Each step draws its randomness from a
generator seeded by (seed, step), so a run resumed from a checkpoint continues exactly where the
interrupted one would have gone.
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

from creator.ml.device import Placement, placement

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
MAX_GRAD_NORM = 1.0  # as diffusers' DreamBooth script
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


@dataclass
class TrainConfig:
    instance_prompt: str = "a photo of ohwx person"
    class_prompt: str = "a photo of a person"
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
    gradient_checkpointing: bool | None = None  # None: on for CUDA
    checkpoint_every: int = 100
    sample_steps: int = 20

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


class _Throttle:
    def __init__(self, every: float):
        self.every = every
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            return True
        return False


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
    where: Placement | None = None,
) -> TrainResult:
    """Train a LoRA on `images` with `pipe`'s base model. Returns where the LoRA file is.

    `should_stop` is asked between steps; when it says yes, TrainingStopped is raised (the last
    checkpoint stays, so a retry resumes). `on_progress` gets step, loss and ETA at most once a
    second. Samples are drawn at every checkpoint; with `likeness`, the best-scoring one is kept.
    """
    from diffusers import DDPMScheduler
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    config.validate()
    if not images:
        raise ValueError("There are no training images.")
    where = where or placement(config.mixed_precision)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_hashes = [file_sha256(p) for p in images]
    fingerprint = config.fingerprint(image_hashes, base_id)
    checkpoint_path = out_dir / "checkpoint.pt"
    progress = _Throttle(1.0)
    report = on_progress or (lambda r: None)

    report(Report(0, config.steps, math.nan, None, "Preparing the photos"))
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)

    # --- everything that does not change between steps, computed once -----------------------
    with torch.no_grad():
        # One image at a time: encoding the whole set in one batch would set the peak memory.
        means, stds = [], []
        for path in images:
            pixels = _to_tensor(load_training_image(path, config.resolution))[None]
            pixels = pixels.to(where.device, dtype=where.dtype)
            for variant in (pixels, torch.flip(pixels, dims=[3])) if config.flip else (pixels,):
                dist = vae.encode(variant).latent_dist
                means.append(dist.mean.float())
                stds.append(dist.std.float())
        latent_mean, latent_std = torch.cat(means), torch.cat(stds)
        del means, stds, pixels
    scaling = float(vae.config.scaling_factor)

    def tokens(prompt: str) -> torch.Tensor:
        return tokenizer(
            prompt,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(where.device)

    instance_ids = tokens(config.instance_prompt)
    class_ids = tokens(config.class_prompt)
    class_mean = class_std = None
    if config.prior_preservation:
        report(Report(0, config.steps, math.nan, None, "Drawing class images"))
        generator = torch.Generator().manual_seed(config.seed + 7919)
        with torch.no_grad():
            class_images = pipe(
                [config.class_prompt] * config.num_class_images,
                height=config.resolution,
                width=config.resolution,
                num_inference_steps=config.sample_steps,
                generator=generator,
                output_type="pt",
            ).images
            dist = vae.encode((class_images * 2 - 1).to(where.device, where.dtype)).latent_dist
            class_mean, class_std = dist.mean.float(), dist.std.float()

    # --- LoRA adapters --------------------------------------------------------------------------
    alpha = config.alpha or config.rank
    # LoRA's random init comes from the global generator: seed it here, without disturbing it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        unet.add_adapter(
            LoraConfig(
                r=config.rank,
                lora_alpha=alpha,
                init_lora_weights="gaussian",
                target_modules=LORA_TARGETS,
            )
        )
        if config.train_text_encoder:
            text_encoder.add_adapter(
                LoraConfig(
                    r=config.rank,
                    lora_alpha=alpha,
                    init_lora_weights="gaussian",
                    target_modules=TEXT_LORA_TARGETS,
                )
            )
    trainable = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    for param in trainable:
        param.data = param.data.float()  # LoRA weights train in fp32 even when the base is half
    if config.gradient_checkpointing or (config.gradient_checkpointing is None and where.is_cuda):
        unet.enable_gradient_checkpointing()
    unet.train()
    # Fused AdamW: one kernel for all LoRA tensors instead of a Python loop over them.
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=1e-2, fused=True)

    def encode_prompt(ids: torch.Tensor) -> torch.Tensor:
        return text_encoder(ids)[0]

    with torch.no_grad():
        instance_embedding = encode_prompt(instance_ids)
        class_embedding = encode_prompt(class_ids)

    start_step, losses, samples, resumed_from = 0, [], [], None
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            set_peft_model_state_dict(unet, state["unet"])
            if config.train_text_encoder and state.get("text_encoder"):
                set_peft_model_state_dict(text_encoder, state["text_encoder"])
            optimizer.load_state_dict(state["optimizer"])
            start_step, losses = state["step"], [tuple(x) for x in state["losses"]]
            samples = [Sample(**s) for s in state["samples"]]
            resumed_from = start_step

    def lora_state() -> dict[str, dict]:
        state = {"unet": get_peft_model_state_dict(unet)}
        if config.train_text_encoder:
            state["text_encoder"] = get_peft_model_state_dict(text_encoder)
        return {k: {n: t.detach().cpu().clone() for n, t in v.items()} for k, v in state.items()}

    def save_checkpoint(step: int) -> None:
        state = {
            "fingerprint": fingerprint,
            "step": step,
            "optimizer": optimizer.state_dict(),
            "losses": losses,
            "samples": [asdict(s) for s in samples],
            **lora_state(),
        }
        tmp = checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, checkpoint_path)

    best: tuple[float, int, dict] | None = None

    def draw_sample(step: int) -> None:
        nonlocal best
        unet.eval()
        with torch.no_grad():
            image = pipe(
                config.instance_prompt,
                height=config.resolution,
                width=config.resolution,
                num_inference_steps=config.sample_steps,
                generator=torch.Generator().manual_seed(config.seed),
            ).images[0]
        unet.train()
        path = out_dir / "samples" / f"step-{step:06d}.png"
        path.parent.mkdir(exist_ok=True)
        image.save(path)
        score = likeness(image) if likeness else None
        sample = Sample(step=step, path=str(path), likeness=score)
        samples.append(sample)
        if score is not None and (best is None or score < best[0]):
            best = (score, step, lora_state())
        if on_sample:
            on_sample(sample)

    # --- the loop -------------------------------------------------------------------------------
    count = latent_mean.shape[0]
    timings = []
    loop_started = time.monotonic()
    for step in range(start_step + 1, config.steps + 1):
        if should_stop():
            raise TrainingStopped(step - 1)
        tick = time.monotonic()
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        index = torch.randint(0, count, (config.batch_size,), generator=generator)
        noise_for_latents = torch.randn(latent_mean[index].shape, generator=generator)
        latents = (
            latent_mean[index] + latent_std[index] * noise_for_latents.to(where.device)
        ) * scaling
        prompt_embeds = (
            encode_prompt(instance_ids) if config.train_text_encoder else instance_embedding
        ).expand(config.batch_size, -1, -1)
        if config.prior_preservation:
            class_index = torch.randint(
                0, class_mean.shape[0], (config.batch_size,), generator=generator
            )
            class_noise = torch.randn(class_mean[class_index].shape, generator=generator)
            class_latents = (
                class_mean[class_index] + class_std[class_index] * class_noise.to(where.device)
            ) * scaling
            latents = torch.cat([latents, class_latents])
            class_embeds = (
                encode_prompt(class_ids) if config.train_text_encoder else class_embedding
            ).expand(config.batch_size, -1, -1)
            prompt_embeds = torch.cat([prompt_embeds, class_embeds])
        noise = torch.randn(latents.shape, generator=generator).to(where.device)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
        ).to(where.device)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        if noise_scheduler.config.prediction_type == "v_prediction":
            target = noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        with torch.autocast(
            where.device.type, dtype=where.dtype, enabled=where.dtype != torch.float32
        ):
            prediction = unet(
                noisy.to(where.dtype), timesteps, prompt_embeds.to(where.dtype)
            ).sample
        if config.prior_preservation:
            prediction, prior_prediction = prediction.float().chunk(2)
            target, prior_target = target.float().chunk(2)
            loss = F.mse_loss(prediction, target) + config.prior_loss_weight * F.mse_loss(
                prior_prediction, prior_target
            )
        else:
            loss = F.mse_loss(prediction.float(), target.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        losses.append((step, round(value, 6)))
        timings.append(time.monotonic() - tick)

        if step % config.checkpoint_every == 0 or step == config.steps:
            draw_sample(step)
            save_checkpoint(step)
        if progress.due() or step == config.steps:
            per_step = (time.monotonic() - loop_started) / (step - start_step)
            eta = per_step * (config.steps - step)
            report(Report(step, config.steps, value, eta, "Training", losses))

    # --- the LoRA file: the best sample's weights, or the last ---------------------------------
    if best is not None:
        best_step = best[1]
        set_peft_model_state_dict(unet, best[2]["unet"])
        if config.train_text_encoder:
            set_peft_model_state_dict(text_encoder, best[2]["text_encoder"])
    else:
        best_step = config.steps
    meta = {
        "candor.base_model": base_id,
        "candor.config": json.dumps(asdict(config), sort_keys=True),
        "candor.training_images_sha256": json.dumps(image_hashes),
        "candor.best_step": str(best_step),
        **(metadata or {}),
    }
    lora_path = _write_lora(
        pipe, unet, text_encoder if config.train_text_encoder else None, out_dir, meta
    )
    median = sorted(timings)[len(timings) // 2] if timings else 0.0
    result = TrainResult(
        lora_path=lora_path,
        sha256=file_sha256(lora_path),
        steps=config.steps,
        losses=losses,
        samples=samples,
        best_step=best_step,
        resumed_from=resumed_from,
        seconds_per_step=median,
        metadata=meta,
    )
    unet.eval()
    return result


class TrainingStopped(Exception):
    """Raised between steps when `should_stop` said so; the last checkpoint is kept."""

    def __init__(self, step: int):
        super().__init__(f"Training stopped after step {step}.")
        self.step = step


def _write_lora(pipe, unet, text_encoder, out_dir: Path, meta: dict[str, str]) -> Path:
    """diffusers' LoRA format, with its adapter metadata (alpha), plus Candor's provenance."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import save_file

    unet_layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    extra = {}
    if text_encoder is not None:
        extra = {
            "text_encoder_lora_layers": convert_state_dict_to_diffusers(
                get_peft_model_state_dict(text_encoder)
            ),
            "text_encoder_lora_adapter_metadata": text_encoder.peft_config["default"].to_dict(),
        }
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        type(pipe).save_lora_weights(
            tmp,
            unet_lora_layers=unet_layers,
            unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
            weight_name="lora.safetensors",
            **extra,
        )
        written = Path(tmp) / "lora.safetensors"
        with safe_open(str(written), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            metadata = dict(handle.metadata() or {})
        metadata.update(meta)
        final = out_dir / "lora.safetensors"
        save_file(tensors, str(final), metadata=metadata)
    final.chmod(0o640)  # safetensors writes owner-only files; web and worker may differ
    return final
