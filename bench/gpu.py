"""GPU speed at real size: SD-1.5-shaped models built from config with random weights (nothing
downloaded), LoRA training steps per second at 512 px and seconds per 512x512 image at 25 steps,
in fp16 and bf16. Anchor: ~32 it/s for SD 1.5 inference on an A100 out of the box.

    python bench/gpu.py [--train-steps 30] [--json]      (needs a CUDA GPU; see bench/gpu.sh)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import emit, table, training_images

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
}
SD15_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "sample_size": 512,
}


def build_sd15(folder: Path, dtype):
    import torch
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from creator.engine.tiny import _write_tokenizer

    _write_tokenizer(folder / "tok")
    tokenizer = CLIPTokenizer(
        str(folder / "tok" / "vocab.json"), str(folder / "tok" / "merges.txt"), model_max_length=77
    )
    torch.manual_seed(0)
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
        )
    )
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**SD15_UNET),
        vae=AutoencoderKL(**SD15_VAE),
        text_encoder=text,
        tokenizer=tokenizer,
        scheduler=DPMSolverMultistepScheduler(
            beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cuda", dtype)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py needs a CUDA GPU.")
    from creator.engine.device import Placement
    from creator.engine.train import TrainConfig, train_lora

    rows, figures = [], {"gpu": torch.cuda.get_device_name(0)}
    with tempfile.TemporaryDirectory() as tmp:
        images = training_images(Path(tmp) / "images", 6)
        for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
            pipe = build_sd15(Path(tmp) / name, dtype)
            generator = torch.Generator().manual_seed(0)
            pipe("warm up", num_inference_steps=5, generator=generator)
            torch.cuda.synchronize()
            times = []
            for _ in range(3):
                tick = time.perf_counter()
                pipe(
                    "a portrait",
                    num_inference_steps=25,
                    height=512,
                    width=512,
                    generator=torch.Generator().manual_seed(1),
                )
                torch.cuda.synchronize()
                times.append(time.perf_counter() - tick)
            per_image = statistics.median(times)
            torch.cuda.reset_peak_memory_stats()
            result = train_lora(
                TrainConfig(
                    resolution=512,
                    steps=args.train_steps,
                    checkpoint_every=10**6,
                    sample_steps=2,
                    mixed_precision=name,
                ),
                pipe=pipe,
                base_id="sd15-random",
                images=images,
                out_dir=Path(tmp) / f"out-{name}",
                where=Placement(torch.device("cuda"), dtype),
            )
            peak_gb = torch.cuda.max_memory_allocated() / 2**30
            rows.append(
                {
                    "precision": name,
                    "s / 512² image (25 steps)": f"{per_image:.2f}",
                    "inference it/s": f"{25 / per_image:.1f}",
                    "LoRA train steps/s (512 px)": f"{1 / result.seconds_per_step:.2f}",
                    "train peak GiB": f"{peak_gb:.1f}",
                }
            )
            figures[name] = {
                "s_per_image_25_steps": round(per_image, 3),
                "inference_it_per_s": round(25 / per_image, 2),
                "train_steps_per_s": round(1 / result.seconds_per_step, 3),
                "train_peak_gib": round(peak_gb, 2),
            }
            del pipe
            torch.cuda.empty_cache()
    emit(
        f"SD-1.5-size random weights on {figures['gpu']}\n" + table(rows, list(rows[0])),
        figures,
        args.json,
    )


if __name__ == "__main__":
    main()
