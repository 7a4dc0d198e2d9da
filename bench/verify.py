"""Verify speed and robustness.

Sets up a throwaway Candor (SQLite in a temp folder) with 1,000 credentials in the store, then:
- median latency and requests/second of POST /api/verify (in-process test client) for a 1024²
  JPEG with a manifest and for the same image stripped (watermark + similarity path);
  targets: median <= 50 ms with a manifest, <= 250 ms without;
- the share of 50 Candor images whose credentials come back after JPEG q90/75/50, a 50% resize,
  a 10% crop and a screenshot-like PNG re-encode; target >= 95% for all but the crop.

    python bench/verify.py [--images 50] [--requests 30] [--json]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from pathlib import Path

from _common import ROOT, astronaut_photo, emit, median, table
from PIL import Image


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


TRANSFORMS = {
    "JPEG q90": lambda im: _jpeg(im, 90),
    "JPEG q75": lambda im: _jpeg(im, 75),
    "JPEG q50": lambda im: _jpeg(im, 50),
    "50% resize": lambda im: _png(
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    ),
    "10% crop": lambda im: _png(
        im.crop(
            (
                im.width // 20,
                im.height // 20,
                im.width - im.width // 20,
                im.height - im.height // 20,
            )
        )
    ),
    "screenshot (PNG re-encode)": lambda im: _png(im.convert("RGBA").convert("RGB")),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="candor-verify-"))
    os.environ.update(
        CANDOR_VAR_DIR=str(work),
        DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings",
        VERIFY_RATE_LIMIT="1000000",
        PYTHONPATH=str(ROOT),
    )
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client

    from creator.accounts.models import User
    from gallery.models import Credential
    from gallery.services import post_create
    from gallery.verify import RECOVERED_BY_SIMILARITY, RECOVERED_BY_WATERMARK, verify_bytes

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", "bench@example.com", "bench bench bench 1")
    posts = []
    for i in range(args.images):
        posts.append(
            post_create(
                owner=user,
                image=astronaut_photo(i),
                prompt="p",
                seed=i,
                generation_settings={},
                model_name="m",
                base_model="builtin:tiny",
            )
        )
    filler = 1000 - Credential.objects.count()
    rng = random.Random(0)
    Credential.objects.bulk_create(
        Credential(variant="display", mime="image/jpeg", phash=f"{rng.getrandbits(64):016x}")
        for _ in range(max(0, filler))
    )
    credentials = Credential.objects.count()

    # Latency through the API, 1024² JPEG.
    big = post_create(
        owner=user,
        image=astronaut_photo(999).resize((1024, 1024)),
        prompt="p",
        seed=1,
        generation_settings={},
        model_name="m",
        base_model="builtin:tiny",
    )
    signed = big.display.read()
    stripped = _jpeg(Image.open(io.BytesIO(signed)), 90)
    client = Client(HTTP_HOST="localhost")  # an allowed host outside the test runner

    def latency(data: bytes) -> tuple[float, str, float]:
        times, verdict = [], ""
        for _ in range(args.requests):
            tick = time.perf_counter()
            response = client.post("/api/verify", {"image": SimpleUploadedFile("x.jpg", data)})
            times.append(time.perf_counter() - tick)
            verdict = response.json()["verdict"]
        return median(times) * 1000, verdict, sum(times)

    with_ms, with_verdict, with_total = latency(signed)
    without_ms, without_verdict, without_total = latency(stripped)

    rows = [
        {
            "what": f"1024² JPEG with a manifest ({with_verdict})",
            "value": f"median {with_ms:.1f} ms, {args.requests / with_total:.1f} req/s "
            "(target <= 50 ms)",
        },
        {
            "what": f"same, stripped ({without_verdict})",
            "value": f"median {without_ms:.1f} ms, {args.requests / without_total:.1f} req/s "
            "(target <= 250 ms)",
        },
        {"what": "credentials in the store", "value": str(credentials)},
    ]
    figures = {
        "credentials": credentials,
        "with_manifest_median_ms": round(with_ms, 2),
        "without_manifest_median_ms": round(without_ms, 2),
        "with_manifest_rps": round(args.requests / with_total, 1),
        "without_manifest_rps": round(args.requests / without_total, 1),
        "recovery": {},
    }
    for name, transform in TRANSFORMS.items():
        recovered = 0
        for post in posts:
            display = Image.open(post.display.open()).convert("RGB")
            verdict = verify_bytes(transform(display))
            own = verdict.credential is not None and verdict.credential.post_id == post.pk
            recovered += (
                verdict.verdict in (RECOVERED_BY_WATERMARK, RECOVERED_BY_SIMILARITY) and own
            )
        share = recovered / len(posts)
        target = "report" if "crop" in name else ">= 95%"
        rows.append(
            {"what": f"recovered after {name}", "value": f"{share:.0%} of {len(posts)} ({target})"}
        )
        figures["recovery"][name] = round(share, 3)
    emit(table(rows, ["what", "value"]), figures, args.json)


if __name__ == "__main__":
    main()
