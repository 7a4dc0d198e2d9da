"""Helpers shared by the benchmark scripts: tables, JSON, child processes, training images."""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The public-domain astronaut photo the tests use too (tests/fixtures/SOURCES.md).
ASTRONAUT = ROOT / "tests" / "fixtures" / "faces" / "skimage_astronaut.png"


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    line = "  ".join(c.ljust(widths[c]) for c in columns)
    rule = "  ".join("-" * widths[c] for c in columns)
    body = ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join([line, rule, *body])


def emit(text: str, figures: dict, as_json: bool) -> None:
    print(text)
    if as_json:
        print(json.dumps(figures, sort_keys=True))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run this benchmark script in a fresh process; its last output line is a JSON object."""
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def astronaut():
    from PIL import Image

    return Image.open(ASTRONAUT).convert("RGB")


def astronaut_photo(i: int):
    """A distinct 512² photo of one face: crop, rotation and colour drawn from seed `i`."""
    from PIL import Image, ImageEnhance

    rng = random.Random(i)
    x, y = rng.randint(0, 60), rng.randint(0, 60)
    side = rng.randint(400, 512 - max(x, y))
    image = astronaut().crop((x, y, x + side, y + side))
    image = image.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
    return image.resize((512, 512), Image.Resampling.LANCZOS)


def training_images(folder: Path, count: int) -> list[Path]:
    """Distinct photos of one face, written as JPEG files for a trainer to read."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"face{i}.jpg"
        astronaut_photo(i).save(path, quality=95)
        paths.append(path)
    return paths
