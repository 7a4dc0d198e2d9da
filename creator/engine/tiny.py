"""The built-in tiny base models, one per family (SD 1.x, SDXL, FLUX.1): random weights, offline.

Candor must run on a machine that cannot reach a model hub, so its default base model is built in
code, deterministically, and cached as an ordinary diffusers folder; `builtin:tiny-sdxl` and
`builtin:tiny-flux` give the other families' code paths the same (tests use all three). Their
images are not likenesses (the weights are random); the same code paths then load a real base
model when one is configured.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from creator.engine.families import Defaults

TINY_ID = "builtin:tiny"
TINY_VERSION = 1
TINY_RESOLUTION = 64  # native size; latents are 1/8 as in real SD
# The built-in models, one per family: the id an operator sets, and the family it builds.
TINY_MODELS = {TINY_ID: "sd", "builtin:tiny-sdxl": "sdxl", "builtin:tiny-flux": "flux"}
# Defaults for the tiny models (a real model of the family uses families.py's): small and fast,
# so a CPU trains one in seconds. Steps, guidance as Candor has always shipped for builtin:tiny.
TINY_DEFAULTS = Defaults(TINY_RESOLUTION, 300, 4, 1e-4, 25, 7.0)
TINY_FLUX_DEFAULTS = Defaults(TINY_RESOLUTION, 300, 4, 1e-4, 25, 3.5)
T5_MAX_LENGTH = 64  # the tiny FLUX model's T5 prompt length (real FLUX.1-dev: 512)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _write_tokenizer(folder: Path) -> None:
    """A byte-level CLIP tokenizer made in code: every byte, alone or word-final, plus specials."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab_list)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    config = {
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "CLIPTokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")})
    )


def _write_t5_tokenizer(folder: Path):
    """A character-level T5 (Unigram) tokenizer made in code: printable ASCII, alone and
    word-initial, plus T5's specials."""
    from transformers import T5Tokenizer

    chars = [chr(c) for c in range(32, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(c, -2.0) for c in chars] + [("\u2581" + c, -1.0) for c in chars if c != " "]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=T5_MAX_LENGTH)
    tokenizer.save_pretrained(folder)


def _clip_tokenizer(work: Path):
    from transformers import CLIPTokenizer

    _write_tokenizer(work)
    tokenizer = CLIPTokenizer(
        str(work / "vocab.json"), str(work / "merges.txt"), model_max_length=77
    )
    shutil.rmtree(work)
    return tokenizer


def _clip_text_encoder(tokenizer, seed: int, *, projection: bool = False, hidden: int = 32):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae(seed: int, *, latent_channels: int = 4, **extra):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=TINY_RESOLUTION,
        **extra,
    )


DDPM_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
}


def _build_sd(folder: Path, work: Path) -> None:
    import torch
    from diffusers import (
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

    tokenizer = _clip_tokenizer(work / "tokenizer")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = _vae(1)
    text_encoder = _clip_text_encoder(tokenizer, 2)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DPMSolverMultistepScheduler(**DDPM_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    DDPMScheduler(**DDPM_CONFIG).save_pretrained(folder / "scheduler_train")


def _build_sdxl(folder: Path, work: Path) -> None:
    """SDXL's shape: two CLIP text encoders (the second with a projection, whose pooled output and
    the size/crop "time ids" condition the UNet through its added embedding)."""
    import torch
    from diffusers import (
        DPMSolverMultistepScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    tokenizer = _clip_tokenizer(work / "tokenizer")
    text_encoder = _clip_text_encoder(tokenizer, 2)
    text_encoder_2 = _clip_text_encoder(tokenizer, 3, projection=True)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six time ids + pooled embedding
        cross_attention_dim=32 + 32,  # both encoders' hidden states side by side
        norm_num_groups=32,
    )
    vae = _vae(1, scaling_factor=0.13025, force_upcast=True)  # SDXL's VAE values
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=DPMSolverMultistepScheduler(**DDPM_CONFIG),
        add_watermarker=False,
    )
    pipe.save_pretrained(folder)


def _build_flux(folder: Path, work: Path) -> None:
    """FLUX.1-dev's shape: an MMDiT transformer with a guidance embedding, CLIP (pooled) and T5
    (sequence) prompt embeddings, a 16-channel-style VAE with shift and scale, flow matching."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    tokenizer = _clip_tokenizer(work / "tokenizer")
    text_encoder = _clip_text_encoder(tokenizer, 2)
    _write_t5_tokenizer(work / "tokenizer_2")
    tokenizer_2 = T5Tokenizer.from_pretrained(work / "tokenizer_2")
    torch.manual_seed(3)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
    )
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels packed 2x2, as FLUX packs its 16 into 64
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # T5's width
        pooled_projection_dim=32,  # CLIP's width
        guidance_embeds=True,  # as FLUX.1-dev
        axes_dims_rope=(4, 4, 8),
    )
    vae = _vae(1, shift_factor=0.1159, scaling_factor=0.3611)  # FLUX.1's VAE values
    # FLUX.1-dev's scheduler: resolution-dependent shift of the flow-matching sigmas.
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipe = FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipe.save_pretrained(folder)


_BUILDERS = {"sd": _build_sd, "sdxl": _build_sdxl, "flux": _build_flux}


def build_tiny_pipeline(folder: Path, family: str = "sd") -> None:
    """Write a tiny pipeline of `family` to `folder` (deterministic: same bytes every time)."""
    work = folder.parent / (folder.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    try:
        _BUILDERS[family](folder, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    spec = next(k for k, v in TINY_MODELS.items() if v == family)
    (folder / "candor_tiny.json").write_text(
        json.dumps({"id": spec, "version": TINY_VERSION, "resolution": TINY_RESOLUTION})
    )


def tiny_model_path(cache_dir: Path, spec: str = TINY_ID) -> Path:
    """The tiny pipeline's folder under `cache_dir`, built on first use (atomically)."""
    family = TINY_MODELS[spec]
    name = "tiny-sd" if family == "sd" else f"tiny-{family}"
    folder = Path(cache_dir) / f"{name}-v{TINY_VERSION}"
    if (folder / "candor_tiny.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
    try:
        build_tiny_pipeline(staging / "model", family)
        try:
            os.rename(staging / "model", folder)
        except OSError:
            if not (folder / "candor_tiny.json").exists():  # not a concurrent builder's win
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
