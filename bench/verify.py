"""Verify speed and robustness.

Sets up a throwaway Candor (SQLite in a temp folder) with 1,000 credentials in the store, then:
- median latency and requests/second of POST /api/verify (in-process test client) for a 1024²
  JPEG with a manifest and for the same image stripped (watermark + similarity path);
  targets: median <= 50 ms with a manifest, <= 250 ms without;
- the share of 50 Candor images whose credentials come back after JPEG q90/75/50, a 50% resize,
  a 10% crop and a screenshot-like PNG re-encode; target >= 95% for all but the crop;
- worst cases: the costliest files within the upload limits (highly compressible images just
  under the pixel caps, a JPEG declaring a huge size, the most progressive scans allowed, ...),
  median and max latency of verify_bytes each; target <= 1 s. Then four clients verify the worst
  one at once, over and over, while a fifth fetches the verify page: its median and max latency,
  target <= 200 ms (with this process's verify slots, and without them for comparison).
- scale: the no-manifest path (verify_bytes) with 1,000 and then 100,000 credentials in the store
  (filler rows: bulk-created random pHashes, nothing signed), for a stripped Candor image (found by
  its watermark) and an unmarked one found by pHash through the band indexes
  (recovered_by_similarity); target median <= 250 ms at 100,000. Baseline, same store: the old
  Python scan of every stored pHash, timed alone.

    python bench/verify.py [--images 50] [--requests 30] [--worst-runs 5] [--seconds 8]
                           [--scale 1000,100000] [--worst-only | --scale-only] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import ROOT, astronaut_photo, emit, median, run_child, table
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


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (16, 16), "grey"), "JPEG"))
    at = 2
    while data[at + 1] != 0xC0:  # SOF0
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    data[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _jpeg_with_scans(image: Image.Image, scans: int) -> bytes:
    """A progressive JPEG with its last scan repeated up to `scans`: each is a pass to decode."""
    data = _encode(image, "JPEG", progressive=True)
    last = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + last * (scans - data.count(b"\xff\xda")) + b"\xff\xd9"


def worst_inputs(*, max_pixels: int, decode_max_pixels: int, max_scans: int) -> dict[str, bytes]:
    """The costliest files to verify within the limits, one per kind of cost."""
    big = math.isqrt(max_pixels - 1)  # just under the upload cap
    side = math.isqrt(decode_max_pixels)  # just at the decode cap
    flat = Image.new("RGB", (side, side), (120, 130, 140))
    rng = np.random.default_rng(0)
    # Busy enough that JPEG keeps ~20 MB of it, under the 25 MB upload limit.
    coarse = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
    photo = Image.fromarray(coarse).resize((8000, 6000), Image.Resampling.BILINEAR)
    noise = Image.fromarray(rng.integers(0, 255, (1200, 1200, 3), dtype=np.uint8))
    grey16 = Image.fromarray(np.full((side, side), 30000, dtype=np.uint16))
    inputs = {
        f"PNG {big}² flat (the reported case)": _encode(Image.new("RGB", (big, big)), "PNG"),
        f"PNG {side}² flat": _encode(flat, "PNG"),
        f"PNG {side}² 16-bit grey": _encode(grey16, "PNG"),
        f"TIFF {side}² deflate": _encode(flat, "TIFF", compression="tiff_adobe_deflate"),
        f"GIF {side}²": _encode(flat.convert("P"), "GIF"),
        f"WebP {side}² lossless": _encode(flat, "WEBP", lossless=True, method=0),
        f"JPEG {side}², {max_scans} progressive scans": _jpeg_with_scans(flat, max_scans),
        "JPEG 8000×6000 photo-like": _encode(photo, "JPEG", quality=90),
        "JPEG declaring 65000²": _jpeg_declaring(65000, 65000),
        "PNG 1200² noise (every watermark size)": _encode(noise, "PNG"),
    }
    with contextlib.suppress(KeyError, OSError, ValueError):  # unless no HEIF encoder here
        inputs[f"HEIC {side}²"] = _encode(flat, "HEIF", quality=50)
    return inputs


def _peak_rss_mb() -> float:
    """This process's peak RSS from /proc (VmHWM). Not getrusage: after a fork and exec, Linux
    reports the parent's peak there."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory_child(path: str) -> None:
    """Child mode: how far one verification of the file at `path` raises the peak RSS of a fresh
    process (after a warm-up, so c2pa, numpy and the database are already loaded)."""
    import django

    django.setup()
    from gallery.verify import verify_bytes
    from imaging.limits import ImageRejected

    verify_bytes(_encode(Image.new("RGB", (64, 64), "grey"), "PNG"))
    data = Path(path).read_bytes()  # the upload itself is held by the request either way
    before = _peak_rss_mb()
    with contextlib.suppress(ImageRejected):
        verify_bytes(data)
    print(json.dumps({"peak_growth_mb": round(_peak_rss_mb() - before, 1)}))


def time_worst(inputs: dict[str, bytes], runs: int, verify_bytes, rejected, work: Path):
    rows = []
    for name, data in inputs.items():
        path = work / f"worst-{len(rows)}"
        path.write_bytes(data)
        memory = run_child([__file__, "--peak-memory-of", str(path)])["peak_growth_mb"]
        times, outcome = [], ""
        for _ in range(runs):
            tick = time.perf_counter()
            try:
                outcome = verify_bytes(data).verdict
            except rejected as exc:
                outcome = f"refused: {exc.message[:48]}…"
            times.append(time.perf_counter() - tick)
        rows.append(
            {
                "input": name,
                "MB": f"{len(data) / 1e6:.2f}",
                "median": f"{median(times) * 1000:.0f} ms",
                "max": f"{max(times) * 1000:.0f} ms",
                "peak memory": f"+{memory:.0f} MB",
                "outcome": outcome,
                "_median": median(times),
                "_max": max(times),
                "_memory": memory,
            }
        )
    return rows


def page_while_verifying(data: bytes, *, clients: int, seconds: float) -> dict:
    """`clients` threads post `data` to /api/verify over and over (waiting 0.1 s after a 503)
    while this thread fetches the verify page; the page's latency and what the clients got."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection
    from django.test import Client

    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # a 503 logs an error each
    stop = threading.Event()
    statuses: list[int] = []

    def hammer():
        client = Client(HTTP_HOST="localhost")
        while not stop.is_set():
            upload = SimpleUploadedFile("x.png", data)
            status = client.post("/api/verify", {"image": upload}).status_code
            statuses.append(status)
            if status == 503:
                time.sleep(0.1)
        connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for thread in threads:
        thread.start()
    page = Client(HTTP_HOST="localhost")
    latencies = []
    end = time.perf_counter() + seconds
    time.sleep(0.5)  # let the verifications get going
    while time.perf_counter() < end:
        tick = time.perf_counter()
        assert page.get("/verify/").status_code == 200
        latencies.append(time.perf_counter() - tick)
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "page_median_ms": round(median(latencies) * 1000, 1),
        "page_max_ms": round(max(latencies) * 1000, 1),
        "pages": len(latencies),
        "verified": statuses.count(200) + statuses.count(400),
        "busy_503": statuses.count(503),
        "other": len([s for s in statuses if s not in (200, 400, 503)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--worst-runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="of concurrent verifying")
    parser.add_argument("--worst-only", action="store_true", help="skip latency and recovery")
    parser.add_argument("--scale", default="1000,100000", help="store sizes for the scale rows")
    parser.add_argument("--scale-only", action="store_true", help="only the scale rows")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--peak-memory-of", help=argparse.SUPPRESS)  # child mode, see below
    args = parser.parse_args()
    if args.peak_memory_of:
        peak_memory_child(args.peak_memory_of)
        return

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
    from gallery import verify
    from gallery.models import Credential
    from gallery.services import post_create
    from gallery.verify import RECOVERED_BY_SIMILARITY, RECOVERED_BY_WATERMARK, verify_bytes
    from imaging.limits import MAX_JPEG_SCANS, ImageRejected

    call_command("migrate", verbosity=0)
    if args.worst_only:
        emit(*run_worst(args, verify, ImageRejected, MAX_JPEG_SCANS), args.json)
        return
    user = User.objects.create_user("bench", "bench@example.com", "bench bench bench 1")
    if args.scale_only:
        text, figures = run_scale(args, user, verify_bytes)
        emit(text, {"scale": figures}, args.json)
        return
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
    worst_text, figures["worst"] = run_worst(args, verify, ImageRejected, MAX_JPEG_SCANS)
    scale_text, figures["scale"] = run_scale(args, user, verify_bytes)
    emit(
        table(rows, ["what", "value"]) + "\n\n" + worst_text + "\n\n" + scale_text,
        figures,
        args.json,
    )


def run_scale(args, user, verify_bytes) -> tuple[str, list[dict]]:
    """The no-manifest path as the store grows: filler credentials are bulk-created (random
    pHashes, bands filled by Credential's bulk_create, nothing signed)."""
    from gallery import fingerprints
    from gallery.models import Credential
    from gallery.services import post_create
    from gallery.verify import SIMILARITY_BITS
    from imaging.phash import hamming, phash

    post = post_create(
        owner=user,
        image=astronaut_photo(998).resize((1024, 1024)),
        prompt="p",
        seed=2,
        generation_settings={},
        model_name="m",
        base_model="builtin:tiny",
    )
    marked = _jpeg(Image.open(post.display.open()).convert("RGB"), 90)
    # A picture Candor never marked, whose pHash one stored credential has: found by similarity.
    unmarked_image = astronaut_photo(997).resize((1024, 1024))
    unmarked = _jpeg(unmarked_image, 90)
    Credential.objects.create(variant="display", mime="image/jpeg", phash=phash(unmarked_image))
    rng = random.Random(1)
    rows, figures = [], []
    for size in (int(n) for n in args.scale.split(",")):
        filler = size - Credential.objects.count()
        while filler > 0:
            batch = min(filler, 5000)
            Credential.objects.bulk_create(
                Credential(
                    variant="display", mime="image/jpeg", phash=f"{rng.getrandbits(64):016x}"
                )
                for _ in range(batch)
            )
            filler -= batch
        stored = Credential.objects.count()
        row = {"credentials": f"{stored:,}"}
        figure = {"credentials": stored}
        for label, data in (("stripped, watermark", marked), ("unmarked, pHash", unmarked)):
            times, verdict = [], ""
            for _ in range(args.requests):
                tick = time.perf_counter()
                verdict = verify_bytes(data).verdict
                times.append(time.perf_counter() - tick)
            row[label] = f"{median(times) * 1000:.0f} ms ({verdict})"
            figure[label] = {"median_ms": round(median(times) * 1000, 1), "verdict": verdict}
        wanted = phash(unmarked_image)
        times = []
        for _ in range(3):
            tick = time.perf_counter()
            for _pk, other in Credential.objects.exclude(phash="").values_list("pk", "phash"):
                hamming(wanted, other)
            times.append(time.perf_counter() - tick)
        row["baseline: old full scan alone"] = f"{median(times) * 1000:.0f} ms"
        figure["old_scan_ms"] = round(median(times) * 1000, 1)
        times = []
        for _ in range(args.requests):
            tick = time.perf_counter()
            fingerprints.nearest(wanted, max_bits=SIMILARITY_BITS)
            times.append(time.perf_counter() - tick)
        row["index lookup alone"] = f"{median(times) * 1000:.1f} ms"
        figure["index_lookup_ms"] = round(median(times) * 1000, 2)
        rows.append(row)
        figures.append(figure)
    columns = ["credentials", "stripped, watermark", "unmarked, pHash"]
    columns += ["index lookup alone", "baseline: old full scan alone"]
    text = "No-manifest verify (verify_bytes, median; target <= 250 ms at 100,000)\n"
    return text + table(rows, columns), figures


def run_worst(args, verify, rejected, max_scans: int) -> tuple[str, dict]:
    """Worst-case latency per input, then the page's latency while four clients verify."""
    from django.conf import settings

    inputs = worst_inputs(
        max_pixels=settings.PHOTO_MAX_PIXELS,
        decode_max_pixels=settings.VERIFY_DECODE_MAX_PIXELS,
        max_scans=max_scans,
    )
    work = Path(os.environ["CANDOR_VAR_DIR"])
    rows = time_worst(inputs, args.worst_runs, verify.verify_bytes, rejected, work)
    worst = max(rows, key=lambda row: row["_median"])
    figures = {
        "worst_input": worst["input"],
        "worst_median_ms": round(worst["_median"] * 1000, 1),
        "worst_max_ms": round(max(row["_max"] for row in rows) * 1000, 1),
        "inputs": {
            row["input"]: {
                "median_ms": round(row["_median"] * 1000, 1),
                "max_ms": round(row["_max"] * 1000, 1),
                "peak_memory_mb": round(row["_memory"], 1),
            }
            for row in rows
        },
    }
    text = table(rows, ["input", "MB", "median", "max", "peak memory", "outcome"])
    decoded = [row for row in rows if not row["outcome"].startswith("refused")]
    heaviest = max(decoded, key=lambda row: row["_median"])
    gated = page_while_verifying(inputs[heaviest["input"]], clients=4, seconds=args.seconds)
    slots = verify._slots
    verify._slots = threading.BoundedSemaphore(4)  # every client verifies at once
    try:
        open_ = page_while_verifying(inputs[heaviest["input"]], clients=4, seconds=args.seconds)
    finally:
        verify._slots = slots
    figures["concurrent_input"] = heaviest["input"]
    figures["page_with_slots"] = gated
    figures["page_without_slots"] = open_
    summary = [
        {
            "what": f"worst case: {worst['input']}",
            "value": f"median {worst['median']}, max of all {figures['worst_max_ms']:.0f} ms "
            "(target <= 1 s)",
        },
        {
            "what": "most memory one verification took",
            "value": f"{max(row['_memory'] for row in rows):.0f} MB more peak RSS, each measured "
            "in a fresh process",
        },
    ]
    for label, result in (
        (f"{settings.VERIFY_CONCURRENCY} slots", gated),
        ("no slots (all 4 at once)", open_),
    ):
        summary.append(
            {
                "what": f"verify page while 4 clients verify {heaviest['input']}, {label}",
                "value": f"median {result['page_median_ms']:.0f} ms, max "
                f"{result['page_max_ms']:.0f} ms over {result['pages']} fetches "
                f"(target <= 200 ms); {result['verified']} verified, "
                f"{result['busy_503']} told 503",
            }
        )
    return text + "\n\n" + table(summary, ["what", "value"]), figures


if __name__ == "__main__":
    main()
