"""Random-weight base models at the real configurations, built in code (nothing is downloaded):
Stable Diffusion 1.5, Stable Diffusion XL base 1.0 and FLUX.1-dev, each saved as an ordinary
diffusers folder (bf16 safetensors) so that Candor's trainer (`base_models.resolve(folder)`) and
diffusers' official scripts (`--pretrained_model_name_or_path folder`) load the same weights.

The shapes are those of the published models' config files; the weights are random, so images
are noise, but every matmul, attention and convolution has its real size. The tokenizers are
tiny.py's byte-level CLIP and character-level T5 tokenizers (they only need to tokenize); the
text models keep their real vocabulary sizes (49408, 32128), larger than those tokenizers.

    python bench/real_configs.py --check     (counts parameters on the meta device: no memory)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from creator.engine import tiny

FAMILIES = ("sd", "sdxl", "flux")

# --- Stable Diffusion 1.5 -------------------------------------------------------------------------
SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "act_fn": "silu",
}
SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
CLIP_L = {  # openai/clip-vit-large-patch14's text tower: SD 1.5, SDXL's first, FLUX's pooled
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
# SD's and SDXL's noise schedule (scaled linear betas, epsilon), with DPM++ for generation.
DDPM = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
}

# --- Stable Diffusion XL base 1.0 ----------------------------------------------------------------
SDXL_UNET = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280),
    "layers_per_block": 2,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,  # 6 time ids x 256 + 1280 pooled
    "norm_num_groups": 32,
    "act_fn": "silu",
}
SDXL_VAE = {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
OPEN_CLIP_BIGG = {  # laion/CLIP-ViT-bigG-14's text tower, with its projection
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}

# --- FLUX.1-dev ----------------------------------------------------------------------------------
FLUX_TRANSFORMER = {
    "patch_size": 1,
    "in_channels": 64,  # 16 latent channels packed 2x2
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
T5_XXL = {  # google/t5-v1_1-xxl's encoder
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-6,
    "tie_word_embeddings": False,
    "is_encoder_decoder": False,
}
FLUX_VAE = {
    **SD_VAE,
    "latent_channels": 16,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "force_upcast": True,
}
FLUX_SCHEDULER = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
FLUX_T5_LENGTH = 512  # FLUX.1-dev's T5 prompt length


@contextlib.contextmanager
def building_on(device: str, dtype=None):
    """New modules' weights are made on `device` in `dtype` (bf16 on a GPU: fast, half the
    memory); the process's defaults are put back afterwards."""
    import torch

    previous = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _clip(tokenizer, config: dict, *, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    model_class = CLIPTextModelWithProjection if projection else CLIPTextModel
    return model_class(CLIPTextConfig(**config, **ids))


def _t5(tokenizer):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            **T5_XXL,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )


def tokenizers(family: str, work: Path) -> dict:
    """tiny.py's tokenizers: CLIP's for every family, T5's (at FLUX.1-dev's length) for FLUX."""
    clip = tiny._clip_tokenizer(work / "tokenizer")
    if family == "sd":
        return {"tokenizer": clip}
    if family == "sdxl":
        return {"tokenizer": clip, "tokenizer_2": clip}
    from transformers import T5Tokenizer

    tiny._write_t5_tokenizer(work / "tokenizer_2")
    t5 = T5Tokenizer.from_pretrained(work / "tokenizer_2", model_max_length=FLUX_T5_LENGTH)
    shutil.rmtree(work / "tokenizer_2")
    return {"tokenizer": clip, "tokenizer_2": t5}


def schedulers(family: str) -> dict:
    """The scheduler and the pipeline's other non-module arguments (made on the CPU in fp32)."""
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

    if family == "sd":
        return {
            "scheduler": DPMSolverMultistepScheduler(**DDPM),
            "safety_checker": None,
            "feature_extractor": None,
            "requires_safety_checker": False,
        }
    if family == "sdxl":
        return {"scheduler": DPMSolverMultistepScheduler(**DDPM), "add_watermarker": False}
    return {"scheduler": FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)}


def models(family: str, tokens: dict) -> dict:
    """The pipeline's modules for `family`, made under the current default device and dtype."""
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel, UNet2DConditionModel

    clip = tokens["tokenizer"]
    torch.manual_seed(0)
    if family == "sd":
        return {
            "unet": UNet2DConditionModel(**SD15_UNET),
            "vae": AutoencoderKL(**SD_VAE),
            "text_encoder": _clip(clip, CLIP_L),
        }
    if family == "sdxl":
        return {
            "unet": UNet2DConditionModel(**SDXL_UNET),
            "vae": AutoencoderKL(**SDXL_VAE),
            "text_encoder": _clip(clip, CLIP_L),
            "text_encoder_2": _clip(clip, OPEN_CLIP_BIGG, projection=True),
        }
    return {
        "transformer": FluxTransformer2DModel(**FLUX_TRANSFORMER),
        "vae": AutoencoderKL(**FLUX_VAE),
        "text_encoder": _clip(clip, CLIP_L),
        "text_encoder_2": _t5(tokens["tokenizer_2"]),
    }


PIPELINES = {
    "sd": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "flux": "FluxPipeline",
}


def build(family: str, folder: Path, device: str = "cuda", dtype=None) -> dict:
    """Build `family`'s model at its real configuration on `device` (in `dtype`; by default bf16
    on CUDA, fp32 elsewhere) and save it to `folder` as a diffusers pipeline in bf16
    safetensors. Returns a small summary."""
    import time

    import diffusers
    import torch

    started = time.perf_counter()
    folder = Path(folder)
    work = folder.parent / (folder.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        tokens = tokenizers(family, work)
        with building_on(device, dtype):
            parts = models(family, tokens)
        pipe = getattr(diffusers, PIPELINES[family])(**parts, **tokens, **schedulers(family))
        if dtype != torch.bfloat16:
            pipe.to(dtype=torch.bfloat16)
        built = time.perf_counter()
        pipe.save_pretrained(folder, safe_serialization=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    params = {
        name: sum(p.numel() for p in module.parameters())
        for name, module in pipe.components.items()
        if isinstance(module, torch.nn.Module)
    }
    del pipe, parts
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {
        "params": params,
        "folder_gib": round(size / 2**30, 2),
        "build_s": round(built - started, 1),
        "save_s": round(time.perf_counter() - built, 1),
    }


def count_parameters(family: str) -> dict[str, int]:
    """Parameters of each component, built on the meta device (no memory, no time)."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        tokens = tokenizers(family, Path(tmp))
        with building_on("meta"):
            parts = models(family, tokens)
    return {
        name: sum(p.numel() for p in module.parameters())
        for name, module in parts.items()
        if isinstance(module, torch.nn.Module)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="count parameters on meta")
    parser.add_argument("--build", choices=FAMILIES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.build:
        print(json.dumps(build(args.build, args.out)))
        return
    for family in FAMILIES:
        counts = count_parameters(family)
        print(family, {k: f"{v / 1e9:.3f}B" for k, v in counts.items()})


if __name__ == "__main__":
    main()
