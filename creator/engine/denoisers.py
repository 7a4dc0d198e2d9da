"""What differs between families when training: prompt conditioning, the noising objective, the
denoiser's call, its LoRA targets. The trainer's loop (`train.py`) is the same for all of them.

- SD 1.x/2.x: one CLIP text encoder; DDPM noise, epsilon or v-prediction target; a UNet.
- SDXL: two CLIP text encoders (hidden states side by side, the second's pooled output) plus
  the size/crop "time ids"; DDPM noise; a UNet with an added embedding.
- FLUX.1: CLIP (pooled) and T5 (sequence) embeddings; flow matching (x_t = (1-s) x_0 + s n,
  target n - x_0); a transformer over 2x2-packed latents, with a guidance embedding on dev.
The shapes follow diffusers' train_dreambooth_lora{,_sdxl,_flux}.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from creator.engine.families import FLUX, SD, SDXL, Family

# The attention projections, as diffusers' SD and SDXL DreamBooth-LoRA scripts target.
UNET_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
# diffusers' train_dreambooth_lora_flux.py default: attention (both streams) and feed-forwards.
FLUX_LORA_TARGETS = [
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
]
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
# FLUX.1-dev is guidance-distilled; diffusers' FLUX script trains with this guidance value.
FLUX_TRAIN_GUIDANCE = 3.5
FLUX_MAX_SEQUENCE = 512  # T5 prompt length FLUX.1-dev was trained with
# What the DDPM loss knows how to target; a "sample"-predicting model would train on the wrong one.
PREDICTION_TYPES = ("epsilon", "v_prediction")
TEXT_ENCODER_TRAINING_ONLY_SD = (
    "Training the text encoder is available for Stable Diffusion 1.x/2.x base models only."
)


@dataclass(frozen=True)
class Conditioning:
    """A prompt's embeddings for one image (batch 1), cached before the loop."""

    embeds: torch.Tensor  # the sequence the denoiser attends to
    pooled: torch.Tensor | None = None  # SDXL, FLUX: the pooled prompt embedding
    time_ids: torch.Tensor | None = None  # SDXL: original size, crop, target size
    text_ids: torch.Tensor | None = None  # FLUX: positions of the text tokens (no batch)
    ids: torch.Tensor | None = None  # SD: token ids, to re-encode when the text encoder trains

    def batch(self, n: int) -> Conditioning:
        def grow(t):
            return None if t is None else t.expand(n, *t.shape[1:])

        return Conditioning(
            grow(self.embeds), grow(self.pooled), grow(self.time_ids), self.text_ids, self.ids
        )

    def cat(self, other: Conditioning) -> Conditioning:
        def join(a, b):
            return None if a is None else torch.cat([a, b])

        return Conditioning(
            join(self.embeds, other.embeds),
            join(self.pooled, other.pooled),
            join(self.time_ids, other.time_ids),
            self.text_ids,
            self.ids,
        )


def denoiser(pipe, family: Family) -> torch.nn.Module:
    return getattr(pipe, family.denoiser)


def lora_targets(family: Family) -> list[str]:
    return FLUX_LORA_TARGETS if family is FLUX else UNET_LORA_TARGETS


def text_encoders(pipe) -> list[torch.nn.Module]:
    return [
        m for m in (getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None)) if m
    ]


def sequence_length(pipe) -> int:
    """FLUX's T5 prompt length: 512 as FLUX.1-dev, or less when the tokenizer's limit is."""
    return min(FLUX_MAX_SEQUENCE, int(pipe.tokenizer_2.model_max_length))


def pipe_options(pipe, family: Family) -> dict:
    """Call options a family's pipeline needs beyond the common ones."""
    return {"max_sequence_length": sequence_length(pipe)} if family is FLUX else {}


def train_scheduler(pipe, family: Family):
    """The noise schedule training samples from; refuses a prediction type it can't train."""
    if family is FLUX:
        from diffusers import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    kind = scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise ValueError(
            f"The base model's scheduler has prediction_type={kind!r}; training supports only "
            f"{', '.join(repr(k) for k in PREDICTION_TYPES)}."
        )
    return scheduler


def latent_shift(vae) -> float:
    """FLUX's VAE centres its latents (shift_factor); SD's and SDXL's don't."""
    return float(getattr(vae.config, "shift_factor", None) or 0.0)


def encode_prompt(pipe, family: Family, text: str, resolution: int, device) -> Conditioning:
    """The embeddings the denoiser is conditioned on for `text` (no gradients)."""
    with torch.no_grad():
        if family is SD:
            ids = pipe.tokenizer(
                text,
                padding="max_length",
                max_length=pipe.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            return Conditioning(pipe.text_encoder(ids)[0], ids=ids)
        if family is SDXL:
            embeds, _, pooled, _ = pipe.encode_prompt(
                text, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            # Photos are centre-cropped squares at the training size: no crop offset.
            size = (resolution, resolution)
            time_ids = torch.tensor([[*size, 0, 0, *size]], dtype=embeds.dtype, device=device)
            return Conditioning(embeds, pooled, time_ids)
        embeds, pooled, text_ids = pipe.encode_prompt(
            text,
            text,
            device=device,
            num_images_per_prompt=1,
            max_sequence_length=sequence_length(pipe),
        )
        return Conditioning(embeds, pooled, text_ids=text_ids)


def reencode(text_encoder, cond: Conditioning) -> Conditioning:
    """SD with a training text encoder: the embedding again, with gradients."""
    return Conditioning(text_encoder(cond.ids)[0], ids=cond.ids)


def noised(
    family: Family, scheduler, latents: torch.Tensor, noise: torch.Tensor, generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy latents, timesteps, target): one draw from `generator`."""
    count = latents.shape[0]
    steps = scheduler.config.num_train_timesteps
    if family is FLUX:
        # Uniform timesteps, as the script's default weighting scheme ("none").
        index = torch.randint(0, steps, (count,), generator=generator)
        timesteps = scheduler.timesteps[index].to(latents.device)
        sigma = scheduler.sigmas[index].to(latents.device, latents.dtype).view(-1, 1, 1, 1)
        return (1.0 - sigma) * latents + sigma * noise, timesteps, noise - latents
    timesteps = torch.randint(0, steps, (count,), generator=generator).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        return noisy, timesteps, scheduler.get_velocity(latents, noise, timesteps)
    return noisy, timesteps, noise  # "epsilon": train_scheduler refused anything else


def predict(
    family: Family,
    model,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    cond: Conditioning,
    dtype,
    vae_scale: int = 8,
) -> torch.Tensor:
    """The denoiser's output for a batch, in the latents' layout."""
    noisy, embeds = noisy.to(dtype), cond.embeds.to(dtype)
    if family is SD:
        return model(noisy, timesteps, embeds).sample
    if family is SDXL:
        added = {"text_embeds": cond.pooled.to(dtype), "time_ids": cond.time_ids.to(dtype)}
        return model(noisy, timesteps, embeds, added_cond_kwargs=added).sample
    from diffusers import FluxPipeline

    count, channels, height, width = noisy.shape
    packed = FluxPipeline._pack_latents(noisy, count, channels, height, width)
    image_ids = FluxPipeline._prepare_latent_image_ids(
        count, height // 2, width // 2, noisy.device, dtype
    )
    guidance = None
    if model.config.guidance_embeds:
        guidance = torch.full((count,), FLUX_TRAIN_GUIDANCE, device=noisy.device)
    out = model(
        hidden_states=packed,
        timestep=timesteps.to(dtype) / 1000,  # the transformer scales it back by 1000
        guidance=guidance,
        pooled_projections=cond.pooled.to(dtype),
        encoder_hidden_states=embeds,
        txt_ids=cond.text_ids,
        img_ids=image_ids,
        return_dict=False,
    )[0]
    # Unpacking takes the pixel size.
    return FluxPipeline._unpack_latents(out, height * vae_scale, width * vae_scale, vae_scale)


def sample_options(family: Family, cond: Conditioning, empty: Conditioning | None) -> dict:
    """Pipeline call options that pass cached embeddings instead of a prompt, so samples need
    no text encoder (they may be off the GPU while training)."""
    if family is SD:
        return {"prompt_embeds": cond.embeds, "negative_prompt_embeds": empty.embeds}
    # SDXL makes zero negative embeddings itself (force_zeros_for_empty_prompt); FLUX has none.
    return {"prompt_embeds": cond.embeds, "pooled_prompt_embeds": cond.pooled}
