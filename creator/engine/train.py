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

from creator.engine.device import Placement, placement
from creator.engine.options import CLASS_PROMPT, INSTANCE_PROMPT

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
MAX_GRAD_NORM = 1.0  # as diffusers' DreamBooth script
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
# What the loss knows how to target; a "sample"-predicting model would train on the wrong one.
PREDICTION_TYPES = ("epsilon", "v_prediction")


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
class _Prompt:
    ids: torch.Tensor
    embedding: torch.Tensor  # from the frozen text encoder; recomputed per step when it trains


@dataclass(frozen=True)
class _Data:
    """What every step reads and no step changes."""

    scheduler: object  # diffusers' DDPMScheduler
    latents: tuple[torch.Tensor, torch.Tensor]  # mean, std of each photo (and its mirror)
    class_latents: tuple[torch.Tensor, torch.Tensor] | None  # only with prior preservation
    scaling: float
    instance: _Prompt
    class_prompt: _Prompt


@dataclass(frozen=True)
class _Model:
    """The parts that learn; `text_encoder` is None unless it trains."""

    unet: torch.nn.Module
    text_encoder: torch.nn.Module | None
    params: list[torch.nn.Parameter]  # the LoRA weights, fp32
    optimizer: torch.optim.Optimizer


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
    where: Placement | None = None,
) -> TrainResult:
    """Train a LoRA on `images` with `pipe`'s base model. Returns where the LoRA file is.

    `should_stop` is the only way to stop: it is asked before every step, and when it returns
    True, TrainingStopped(last completed step) is raised and the last checkpoint stays, so a retry
    resumes. To cancel, return True from it; never raise from it or from the other callbacks.
    `on_progress` gets step, loss and ETA at most once a second. Samples are drawn at every
    checkpoint; with `likeness` (lower is closer), the best-scoring sample's weights are kept.
    """
    config.validate()
    if not images:
        raise ValueError("There are no training images.")
    scheduler = noise_scheduler(pipe)
    where = where or placement(config.mixed_precision)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_hashes = [file_sha256(p) for p in images]
    fingerprint = config.fingerprint(image_hashes, base_id)
    checkpoint_path = out_dir / "checkpoint.pt"
    report = on_progress or (lambda r: None)

    report(Report(0, config.steps, math.nan, None, "Preparing the photos"))
    unet, vae, text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    latents = encode_latents(vae, images, config, where)
    prior = None
    if config.prior_preservation:
        report(Report(0, config.steps, math.nan, None, "Drawing class images"))
        prior = class_latents(pipe, config, where)  # before the adapters: the base model's class
    params = add_adapters(unet, text_encoder, config)
    if config.gradient_checkpointing or (config.gradient_checkpointing is None and where.is_cuda):
        unet.enable_gradient_checkpointing()
    unet.train()
    # Fused AdamW: one kernel for all LoRA tensors instead of a Python loop over them.
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=1e-2, fused=True)
    model = _Model(unet, text_encoder if config.train_text_encoder else None, params, optimizer)
    prompts = encode_prompts(pipe.tokenizer, text_encoder, config, where)
    data = _Data(scheduler, latents, prior, float(vae.config.scaling_factor), *prompts)
    state = load_checkpoint(checkpoint_path, fingerprint)
    run = restore(state, model) if state else _RunState()

    start_step, timings = run.step, []
    loop_started, last_report = time.monotonic(), float("-inf")
    for step in range(start_step + 1, config.steps + 1):
        if should_stop():
            raise TrainingStopped(run.step)
        tick = time.monotonic()
        loss = training_step(step, model, data, config, where)
        run.step = step
        run.losses.append((step, round(loss, 6)))
        timings.append(time.monotonic() - tick)

        if step % config.checkpoint_every == 0 or step == config.steps:
            sample = save_sample(draw_sample(pipe, config), step, out_dir, likeness)
            keep_sample(run, sample, model)
            if on_sample:
                on_sample(sample)
            save_checkpoint(checkpoint_path, checkpoint_state(fingerprint, run, model))
        now = time.monotonic()
        if now - last_report >= 1.0 or step == config.steps:  # at most once a second
            last_report = now
            eta = (now - loop_started) / (step - start_step) * (config.steps - step)
            report(Report(step, config.steps, loss, eta, "Training", list(run.losses)))

    # --- the LoRA file: the best sample's weights, or the last ---------------------------------
    best_step = use_best_weights(run, model, config.steps)
    meta = {
        "candor.base_model": base_id,
        "candor.config": json.dumps(asdict(config), sort_keys=True),
        "candor.training_images_sha256": json.dumps(image_hashes),
        "candor.best_step": str(best_step),
        **(metadata or {}),
    }
    lora_path = _write_lora(pipe, model.unet, model.text_encoder, out_dir, meta)
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


def noise_scheduler(pipe):
    """The training scheduler for `pipe`'s model; refuses a prediction type it can't train."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    kind = scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise ValueError(
            f"The base model's scheduler has prediction_type={kind!r}; training supports only "
            f"{', '.join(repr(k) for k in PREDICTION_TYPES)}."
        )
    return scheduler


def encode_latents(
    vae, images: list[Path], config: TrainConfig, where: Placement
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (fp32) of the VAE latents of each photo and, with `flip`, its mirror."""
    means, stds = [], []
    with torch.no_grad():
        # One image at a time: encoding the whole set in one batch would set the peak memory.
        for path in images:
            pixels = _to_tensor(load_training_image(path, config.resolution))[None]
            pixels = pixels.to(where.device, dtype=where.dtype)
            for variant in (pixels, torch.flip(pixels, dims=[3])) if config.flip else (pixels,):
                dist = vae.encode(variant).latent_dist
                means.append(dist.mean.float())
                stds.append(dist.std.float())
    return torch.cat(means), torch.cat(stds)


def class_latents(pipe, config: TrainConfig, where: Placement) -> tuple[torch.Tensor, torch.Tensor]:
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
        ).images
        dist = pipe.vae.encode((class_images * 2 - 1).to(where.device, where.dtype)).latent_dist
    return dist.mean.float(), dist.std.float()


def add_adapters(unet, text_encoder, config: TrainConfig) -> list[torch.nn.Parameter]:
    """Add LoRA adapters (the text encoder's too, if it trains); returns their fp32 parameters."""
    from peft import LoraConfig

    targets = [(unet, LORA_TARGETS)]
    if config.train_text_encoder:
        targets.append((text_encoder, TEXT_LORA_TARGETS))
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
    trainable = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    for param in trainable:
        param.data = param.data.float()  # LoRA weights train in fp32 even when the base is half
    return trainable


def encode_prompts(
    tokenizer, text_encoder, config: TrainConfig, where: Placement
) -> tuple[_Prompt, _Prompt]:
    """Token ids and embeddings of the instance and the class prompt."""
    prompts = []
    for text in (config.instance_prompt, config.class_prompt):
        ids = tokenizer(
            text,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(where.device)
        with torch.no_grad():
            prompts.append(_Prompt(ids, text_encoder(ids)[0]))
    return prompts[0], prompts[1]


# --- one step ------------------------------------------------------------------------------------


def training_step(
    step: int, model: _Model, data: _Data, config: TrainConfig, where: Placement
) -> float:
    """One optimizer step; returns its loss.

    All randomness comes from a generator seeded by (seed, step), drawn in a fixed order: that
    order is what lets a resumed run end bit-for-bit where an unbroken one does.
    """
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    scheduler, batch = data.scheduler, config.batch_size
    latents = _draw_latents(data.latents, batch, generator, data.scaling)
    prompt_embeds = _prompt_embeds(data.instance, model.text_encoder, batch)
    if config.prior_preservation:
        class_latents = _draw_latents(data.class_latents, batch, generator, data.scaling)
        latents = torch.cat([latents, class_latents])
        class_embeds = _prompt_embeds(data.class_prompt, model.text_encoder, batch)
        prompt_embeds = torch.cat([prompt_embeds, class_embeds])
    noise = torch.randn(latents.shape, generator=generator).to(where.device)
    timesteps = torch.randint(
        0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
    ).to(where.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:  # "epsilon": noise_scheduler refused anything else
        target = noise
    with torch.autocast(where.device.type, dtype=where.dtype, enabled=where.dtype != torch.float32):
        prediction = model.unet(
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
    torch.nn.utils.clip_grad_norm_(model.params, MAX_GRAD_NORM, foreach=True)
    model.optimizer.step()
    model.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _draw_latents(dist, batch: int, generator: torch.Generator, scaling: float) -> torch.Tensor:
    """A batch of latents sampled from the cached distributions (two draws from `generator`)."""
    mean, std = dist
    index = torch.randint(0, mean.shape[0], (batch,), generator=generator)
    noise = torch.randn(mean[index].shape, generator=generator)
    return (mean[index] + std[index] * noise.to(mean.device)) * scaling


def _prompt_embeds(prompt: _Prompt, text_encoder, batch: int) -> torch.Tensor:
    embedding = text_encoder(prompt.ids)[0] if text_encoder is not None else prompt.embedding
    return embedding.expand(batch, -1, -1)


# --- checkpoints ---------------------------------------------------------------------------------


def lora_weights(model: _Model) -> dict[str, dict[str, torch.Tensor]]:
    """CPU copies of the LoRA weights, by part ("unet", "text_encoder" when it trains)."""
    from peft.utils import get_peft_model_state_dict

    weights = {"unet": get_peft_model_state_dict(model.unet)}
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

    set_peft_model_state_dict(model.unet, state["unet"])
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


def draw_sample(pipe, config: TrainConfig) -> Image.Image:
    """The instance prompt drawn with the same seed every time, so samples compare across steps."""
    pipe.unet.eval()
    with torch.no_grad():
        image = pipe(
            config.instance_prompt,
            height=config.resolution,
            width=config.resolution,
            num_inference_steps=config.sample_steps,
            generator=torch.Generator().manual_seed(config.seed),
        ).images[0]
    pipe.unet.train()
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
    set_peft_model_state_dict(model.unet, run.best.weights["unet"])
    if model.text_encoder is not None:
        set_peft_model_state_dict(model.text_encoder, run.best.weights["text_encoder"])
    return run.best.step


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
