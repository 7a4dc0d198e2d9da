"""The marking pipeline's cost: XMP, watermark, C2PA signing and the whole pipeline, in
milliseconds per image at 512² and 1024². Targets: the whole pipeline <= 400 ms at 1024² on this
CPU, and <= 10% of a 512² generation at 25 steps on a real-size model (on a GPU: bench/gpu.sh
measures that; until then the A100 anchor below is used and labelled as assumed).

    python bench/provenance.py [--json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import astronaut, emit, median, table

from gallery.provenance import keys, watermark
from gallery.provenance.c2pa import Signer
from gallery.provenance.manifest import ImageFacts, manifest_definition
from gallery.provenance.pipeline import mark
from gallery.provenance.xmp import encode_with_xmp, xmp_packet

RUNS = 5
KEY = watermark.key_for(b"bench instance watermark secret")
# 25 steps at ~32 it/s plus the VAE decode: the anchor for SD 1.5 on an A100, until
# bench/gpu.sh measures it on a lent GPU.
A100_SD15_512_MS = 900.0


def timed(fn) -> float:
    fn()
    samples = []
    for _ in range(RUNS):
        tick = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - tick)
    return median(samples) * 1000


def generation_ms(side: int) -> float:
    import torch

    from creator.engine import base_models as models
    from creator.engine.device import placement

    with tempfile.TemporaryDirectory() as tmp:
        pipe = models.load_pipeline(models.resolve("builtin:tiny", Path(tmp)), placement())
        return timed(
            lambda: pipe(
                "portrait",
                num_inference_steps=25,
                height=side,
                width=side,
                generator=torch.Generator().manual_seed(0),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        signer = Signer(keys.identity_create(Path(tmp), instance_name="Bench"))
    facts = ImageFacts(
        title="image.jpg", mime="image/jpeg", author_handle="bench", author_url="http://127.0.0.1:8000/@bench",
        instance_name="Bench", software_version="bench", base_model="builtin:tiny", model_name="m",
        lora_sha256="ab" * 32, consent_id=1, credential_id="c",
    )  # fmt: skip
    rows, figures = [], {}
    xmp = xmp_packet(description="AI-generated", creator_tool="Candor", author="@bench")
    definition = manifest_definition(facts)
    tiny = generation_ms(64)
    for side in (512, 1024):
        image = astronaut().resize((side, side))
        encoded = encode_with_xmp(image, "JPEG", xmp)
        parts = {
            "XMP + JPEG encode": timed(lambda image=image: encode_with_xmp(image, "JPEG", xmp)),
            "watermark": timed(lambda image=image: watermark.embed(image, 12345, key=KEY)),
            "C2PA sign": timed(lambda data=encoded: signer.sign(data, "image/jpeg", definition)),
            "whole pipeline": timed(
                lambda image=image: mark(
                    image,
                    fmt="JPEG",
                    facts=facts,
                    signer=signer,
                    watermark_id=12345,
                    watermark_key=KEY,
                )
            ),
        }
        for name, ms in parts.items():
            rows.append(
                {
                    "size": f"{side}²",
                    "step": name,
                    "ms": f"{ms:.1f}",
                    "vs SD-1.5 512² on an A100": f"{ms / A100_SD15_512_MS:.1%}",
                }
            )
        figures[str(side)] = {
            k.replace(" + ", "_").replace(" ", "_"): round(v, 1) for k, v in parts.items()
        }
    rows.append({"size": "64²", "step": "tiny model, 25 steps (for scale)", "ms": f"{tiny:.0f}"})
    figures["tiny_generation_64_ms"] = round(tiny, 1)
    figures["a100_sd15_512_ms_assumed"] = A100_SD15_512_MS
    whole_1024 = figures["1024"]["whole_pipeline"]
    whole_512 = figures["512"]["whole_pipeline"]
    note = (
        f"whole pipeline: {whole_1024:.0f} ms at 1024² (target <= 400 ms on this CPU); "
        f"{whole_512:.0f} ms at 512² = {whole_512 / A100_SD15_512_MS:.1%} of an SD-1.5 512² image "
        f"on an A100 (~{A100_SD15_512_MS / 1000:.1f} s assumed from ~32 it/s; target <= 10%)"
    )
    columns = ["size", "step", "ms", "vs SD-1.5 512² on an A100"]
    emit(note + "\n" + table(rows, columns), figures, args.json)


if __name__ == "__main__":
    main()
