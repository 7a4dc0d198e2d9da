"""Trainer speed: Candor's DreamBooth-LoRA loop vs a naive loop with the structure of diffusers'
train_dreambooth_lora.py: each step transforms the photos and tokenizes the prompt (its dataset),
encodes the images with the VAE and the prompt with the text encoder, then trains.

Same tiny model, resolution, images, batch, steps and LoRA; each variant runs in its own process
so peak memory is its own. Judged by: ours / naive seconds per step (target <= 0.6) and peak RSS
(target: not higher).

Then one row per base-model family: Candor's trainer on each built-in tiny model (SD 1.x, SDXL,
FLUX.1) at --family-resolution (64 px, their native size), batch 1, each in its own process:
seconds per step and peak RSS (no target: the figures show what each family's code path costs).

    python bench/train.py [--steps 30] [--resolution 128] [--images 6] [--batch 1 4]
                          [--families sd sdxl flux] [--family-resolution 64] [--json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import emit, median, peak_rss_mb, run_child, table, training_images

WARMUP = 5
FAMILY_SPECS = {"sd": "builtin:tiny", "sdxl": "builtin:tiny-sdxl", "flux": "builtin:tiny-flux"}


def _pipe(cache: Path, spec: str = "builtin:tiny"):
    from creator.engine import base_models as models
    from creator.engine.device import placement

    return models.load_pipeline(models.resolve(spec, cache), placement())


def run_ours(args, work: Path, spec: str = "builtin:tiny") -> dict:
    from creator.engine.train import TrainConfig, train_lora

    images = training_images(work / "images", args.images)
    pipe = _pipe(work / "models", spec)
    config = TrainConfig(
        resolution=args.resolution,
        steps=args.steps + WARMUP,
        checkpoint_every=10**6,  # one checkpoint and sample, after the timed steps
        sample_steps=2,
        batch_size=args.batch[0],
    )
    times: list[float] = []
    started = [time.perf_counter()]

    def should_stop() -> bool:
        now = time.perf_counter()
        times.append(now - started[0])
        started[0] = now
        return False

    train_lora(
        config,
        pipe=pipe,
        base_id=spec,
        images=images,
        out_dir=work / "out",
        should_stop=should_stop,
    )
    # should_stop runs at the top of each step: the gaps between calls are whole steps.
    per_step = times[1:]
    return {"s_per_step": median(per_step[WARMUP:]), "peak_rss_mb": peak_rss_mb()}


def run_naive(args, work: Path) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    from creator.engine.denoisers import UNET_LORA_TARGETS as LORA_TARGETS

    images = training_images(work / "images", args.images)
    pipe = _pipe(work / "models")
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    torch.manual_seed(0)
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=LORA_TARGETS)
    )
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2)
    # As the script's dataset: PIL images kept, transformed and tokenized again at every step.
    from PIL import Image, ImageOps

    raw = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in images]

    def transform(image, flip: bool):
        image = ImageOps.fit(image, (args.resolution, args.resolution), Image.Resampling.BILINEAR)
        if flip:
            image = ImageOps.mirror(image)
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1
        return torch.from_numpy(array).permute(2, 0, 1)

    size = args.batch[0]
    times = []
    for step in range(args.steps + WARMUP):
        tick = time.perf_counter()
        batch = torch.stack(
            [transform(raw[(step * size + i) % len(raw)], step % 2 == 1) for i in range(size)]
        )
        ids = tokenizer(
            "a photo of ohwx person",
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        latents = vae.encode(batch).latent_dist.sample() * vae.config.scaling_factor
        embeds = text_encoder(ids.repeat(size, 1))[0]
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (size,))
        prediction = unet(scheduler.add_noise(latents, noise, t), t, embeds).sample
        loss = F.mse_loss(prediction.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - tick)
    return {"s_per_step": median(times[WARMUP:]), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--families", nargs="*", choices=list(FAMILY_SPECS), default=list(FAMILY_SPECS)
    )
    parser.add_argument("--family-resolution", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variant", choices=["ours", "naive", "family"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", default="builtin:tiny", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:
        import json

        with tempfile.TemporaryDirectory() as tmp:
            if args.variant == "naive":
                result = run_naive(args, Path(tmp))
            else:
                result = run_ours(args, Path(tmp), args.spec)
            print(json.dumps(result))
        return

    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "2"}
    rows, figures = [], {"resolution": args.resolution, "images": args.images, "steps": args.steps}
    for batch in args.batch:
        common = [
            "--steps", str(args.steps), "--resolution", str(args.resolution),
            "--images", str(args.images), "--batch", str(batch),
        ]  # fmt: skip
        naive = run_child([__file__, *common, "--variant", "naive"], env)
        ours = run_child([__file__, *common, "--variant", "ours"], env)
        ratio = ours["s_per_step"] / naive["s_per_step"]
        rss_ratio = ours["peak_rss_mb"] / naive["peak_rss_mb"]
        for loop, time_cell, rss_cell in (
            (
                "naive (script structure)",
                f"{naive['s_per_step']:.4f}",
                f"{naive['peak_rss_mb']:.0f}",
            ),
            ("Candor (cached latents)", f"{ours['s_per_step']:.4f}", f"{ours['peak_rss_mb']:.0f}"),
            ("ratio ours / naive", f"{ratio:.2f} (target <= 0.60)", f"{rss_ratio:.2f} (<= 1.00)"),
        ):
            rows.append(
                {"batch": batch, "loop": loop, "s/step": time_cell, "peak RSS MB": rss_cell}
            )
        figures[f"batch{batch}"] = {
            "naive_s_per_step": round(naive["s_per_step"], 5),
            "ours_s_per_step": round(ours["s_per_step"], 5),
            "time_ratio": round(ratio, 3),
            "naive_peak_rss_mb": round(naive["peak_rss_mb"], 1),
            "ours_peak_rss_mb": round(ours["peak_rss_mb"], 1),
            "rss_ratio": round(rss_ratio, 3),
        }
    header = (
        f"tiny SD model, {args.resolution} px, {args.images} images, "
        f"{args.steps} timed steps after {WARMUP} warm-up, median seconds per step"
    )
    text = header + "\n" + table(rows, ["batch", "loop", "s/step", "peak RSS MB"])

    family_rows, figures["families"] = [], {}
    for family in args.families:
        spec = FAMILY_SPECS[family]
        common = [
            "--steps", str(args.steps), "--resolution", str(args.family_resolution),
            "--images", str(args.images), "--batch", "1",
        ]  # fmt: skip
        ours = run_child([__file__, *common, "--variant", "family", "--spec", spec], env)
        family_rows.append(
            {
                "family": family,
                "base model": spec,
                "s/step": f"{ours['s_per_step']:.4f}",
                "peak RSS MB": f"{ours['peak_rss_mb']:.0f}",
            }
        )
        figures["families"][family] = {
            "spec": spec,
            "resolution": args.family_resolution,
            "s_per_step": round(ours["s_per_step"], 5),
            "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        }
    if family_rows:
        text += (
            f"\n\nCandor's trainer per family: built-in tiny models, {args.family_resolution} px, "
            f"batch 1, {args.steps} timed steps after {WARMUP} warm-up\n"
            + table(family_rows, ["family", "base model", "s/step", "peak RSS MB"])
        )
    emit(text, figures, args.json)


if __name__ == "__main__":
    main()
