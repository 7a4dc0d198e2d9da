"""Building a whole post kit for a 1024² post: every format cropped, resized, labelled where it
is meant for a stripping platform, watermarked, signed with the original as its parent, stored,
with its credential row. Target: <= 2 s on this CPU. Baseline in the same run: the same kit built
one format after another (workers=1) against the thread pool kit_build uses by default.

Sets up a throwaway Candor (SQLite in a temp folder) with one 1024² post.

    python bench/postkit.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import ROOT, astronaut, emit, median, table

TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="candor-postkit-"))
    os.environ.update(
        CANDOR_VAR_DIR=str(work),
        DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=str(ROOT),
    )
    import django

    django.setup()
    from django.core.management import call_command
    from PIL import Image

    from creator.accounts.models import User
    from gallery import postkit
    from gallery.services import post_create

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", "bench@example.com", "bench bench bench 1")
    post = post_create(
        owner=user,
        image=astronaut().resize((1024, 1024), Image.Resampling.LANCZOS),
        prompt="p",
        seed=0,
        generation_settings={},
        model_name="m",
        base_model="builtin:tiny",
    )

    # Each format's own work (pixels, pHash, watermark, XMP, sign), timed where it runs.
    per_format: dict[str, list[float]] = {f.key: [] for f in postkit.FORMATS}
    real_mark = postkit._mark

    def timed_mark(source, job, **kwargs):
        tick = time.perf_counter()
        made = real_mark(source, job, **kwargs)
        per_format[job.format.key].append((time.perf_counter() - tick) * 1000)
        return made

    postkit._mark = timed_mark
    pool = postkit._workers()
    postkit.kit_build(post=post, workers=1)  # warm up: keys, fonts, the watermark layout
    for samples in per_format.values():
        samples.clear()
    totals: dict[str, list[float]] = {"sequential": [], "pool": []}
    for workers, name in ((1, "sequential"), (pool, "pool")):
        for _ in range(args.runs):
            tick = time.perf_counter()
            postkit.kit_build(post=post, workers=workers)
            totals[name].append(time.perf_counter() - tick)
        if name == "sequential":
            # Each format's time alone: in the pool, formats share the CPUs.
            sequential_marks = {k: list(v) for k, v in per_format.items()}
    postkit._mark = real_mark
    zip_ms = []
    for _ in range(args.runs):
        tick = time.perf_counter()
        postkit.kit_zip(post)
        zip_ms.append((time.perf_counter() - tick) * 1000)

    rows = []
    for fmt in postkit.FORMATS:
        samples = sequential_marks[fmt.key]
        rows.append(
            {
                "step": f"{fmt.key} {fmt.size[0]}×{fmt.size[1]}" + (" +label" if fmt.label else ""),
                "ms": f"{median(samples):.0f}",
            }
        )
    sequential_s, pooled_s = median(totals["sequential"]), median(totals["pool"])
    rows += [
        {"step": "whole kit, one format at a time (baseline)", "ms": f"{sequential_s * 1000:.0f}"},
        {"step": f"whole kit, {pool} threads (kit_build)", "ms": f"{pooled_s * 1000:.0f}"},
        {"step": "ZIP of the kit, built on the fly", "ms": f"{median(zip_ms):.0f}"},
    ]
    figures = {
        "post_side": 1024,
        "formats": len(postkit.FORMATS),
        "workers": pool,
        "cpus": os.cpu_count(),
        "per_format_ms": {
            f.key: round(median(sequential_marks[f.key]), 1) for f in postkit.FORMATS
        },
        "kit_sequential_s": round(sequential_s, 3),
        "kit_s": round(pooled_s, 3),
        "kit_vs_target": round(pooled_s / TARGET_S, 3),
        "speedup": round(sequential_s / pooled_s, 2),
        "zip_ms": round(median(zip_ms), 1),
        "target_s": TARGET_S,
    }
    note = (
        f"whole kit for a 1024² post: {pooled_s:.2f} s with {pool} threads "
        f"({pooled_s / TARGET_S:.0%} of the {TARGET_S:.0f} s target), {sequential_s:.2f} s one "
        f"format at a time (×{sequential_s / pooled_s:.2f}); median of {args.runs} runs on "
        f"{os.cpu_count()} CPUs"
    )
    emit(note + "\n" + table(rows, ["step", "ms"]), figures, args.json)


if __name__ == "__main__":
    main()
