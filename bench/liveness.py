"""The live consent check: its server-side time, and what it accepts and refuses.

Time: one 12-frame 640×480 burst, median of a few runs, for a naive baseline (one thread, full
detection with upsampling and a 128-d embedding on every frame, 68 landmarks for the poses) and
for Candor's `check_burst` (no upsampling unless a frame needs it, two detection threads,
embeddings only for the neutral frames and each step's first frame). Target: <= 1.5 s.

Verdicts: the test videos of tests/videos.py. Genuine bursts in each of the 6 orders should be
accepted; a still photo, a tilted print, the wrong order, a missing step, another person (a
still of the Biden fixture, unmodified) and the genuine burst replayed backwards should be
refused.

    python bench/liveness.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import time

from _common import ROOT, emit, median, table
from PIL import Image

from creator.engine import liveness
from creator.engine.faces import FaceEngine, distance, pixels_of
from tests import images, videos

THRESHOLD = 0.6  # FACE_MATCH_THRESHOLD's default
TARGET_SECONDS = 1.5
ASKED = ("left", "right", "mouth")


def naive(engine: FaceEngine, frames: list[Image.Image], references: dict) -> list:
    """The obvious check: every frame analysed in full, one after the other."""
    found = []
    for frame in frames:
        report = engine.analyse(frame)  # upsampled HOG and the embedding
        pixels = pixels_of(frame)
        rect, _ = engine.detect(pixels)[0]
        points = engine.landmarks(pixels, rect)
        found.append((report.face.embedding, points))
    signature = found[0][0]
    return [distance(signature, ref) for ref in references.values()]


def timed(fn, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return median(seconds)


def cases() -> list[tuple[str, list[Image.Image], tuple[str, ...], bool]]:
    """(name, frames, steps asked, should pass)."""
    genuine = videos.challenge_burst(ASKED)
    biden = Image.open(ROOT / "tests" / "fixtures" / "faces" / "biden.jpg").convert("RGB")
    biden = biden.resize((640, round(biden.height * 640 / biden.width)), Image.Resampling.LANCZOS)
    found = [
        (f"genuine {'/'.join(steps)}", videos.challenge_burst(steps, seed=7), steps, True)
        for steps in itertools.permutations(ASKED)
    ]
    return [
        *found,
        ("still photo (noise, shake)", videos.still_burst(), ASKED, False),
        ("one frame sent 12 times", [genuine[0]] * 12, ASKED, False),
        ("tilted print 35°", videos.tilted_print_burst(ASKED), ASKED, False),
        ("tilted print 40°", videos.tilted_print_burst(ASKED, degrees=40), ASKED, False),
        ("wrong order", genuine, ("right", "left", "mouth"), False),
        (
            "mouth step missing",
            videos.burst(videos.schedule(("left", "right", "neutral"))),
            ASKED,
            False,
        ),
        ("another person (still)", [biden] * 12, ASKED, False),
        ("replayed backwards", genuine[::-1], ASKED, False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    engine = FaceEngine.get()
    references = {
        f"photo{i}": engine.analyse(images.astronaut_variant(i)).face.embedding for i in range(4)
    }
    burst = videos.challenge_burst(ASKED)

    def ours():
        liveness.check_burst(
            burst, ASKED, references=references, threshold=THRESHOLD, engine=engine
        )

    ours()  # loads the 68-point model and a second HOG detector, once per process
    baseline_s = timed(lambda: naive(engine, burst, references), args.runs)
    ours_s = timed(ours, args.runs)
    timing = [
        {"check": "naive: 1 thread, upsampled HOG + embedding per frame", "seconds": baseline_s},
        {"check": "candor check_burst", "seconds": ours_s},
    ]
    for row in timing:
        row["vs target"] = f"{row['seconds'] / TARGET_SECONDS:.0%} of {TARGET_SECONDS} s"
        row["seconds"] = f"{row['seconds']:.3f}"

    rows, false_accepts, false_rejects = [], 0, 0
    for name, frames, steps, should_pass in cases():
        result = liveness.check_burst(
            frames, steps, references=references, threshold=THRESHOLD, engine=engine
        )
        false_accepts += result.passed and not should_pass
        false_rejects += should_pass and not result.passed
        rows.append(
            {
                "burst": name,
                "expected": "accept" if should_pass else "refuse",
                "verdict": "accept" if result.passed else f"refuse: {result.problem}",
                "ok": "yes" if result.passed == should_pass else "NO",
                "first l/r/m": "/".join(
                    str(result.evidence.get("first", {}).get(s)) for s in ASKED
                ),
                "max |yaw|": max((abs(v) for v in result.evidence.get("yaw", [0])), default=0),
                "max mouth": max(result.evidence.get("mouth", [0])),
            }
        )
    text = "\n\n".join(
        [
            table(timing, ["check", "seconds", "vs target"]),
            f"speed-up: {baseline_s / ours_s:.2f}× (median of {args.runs} runs, 12 frames 640×480)",
            table(
                rows,
                ["burst", "expected", "verdict", "ok", "first l/r/m", "max |yaw|", "max mouth"],
            ),
            f"false accepts: {false_accepts}   false rejects: {false_rejects}   "
            f"(thresholds: yaw {liveness.YAW_TURN}, mouth {liveness.MOUTH_OPEN})",
        ]
    )
    figures = {
        "baseline_seconds": round(baseline_s, 3),
        "check_seconds": round(ours_s, 3),
        "speedup": round(baseline_s / ours_s, 2),
        "target_seconds": TARGET_SECONDS,
        "false_accepts": false_accepts,
        "false_rejects": false_rejects,
        "cases": len(rows),
    }
    emit(text, figures, args.json)


if __name__ == "__main__":
    main()
