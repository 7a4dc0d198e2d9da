"""The live consent check: a burst of camera frames in which one person follows a random challenge.

The browser shows the steps of `random_steps()` one after the other and sends `FRAMES` JPEG frames
(unmirrored, 640 px wide, ~0.45 s apart): the first `NEUTRAL_FRAMES` while the person looks straight
at the camera, then a few per step. `check_burst` then asks, in this order:

1. enough frames? ("too_few_frames")
2. exactly one face in every frame? ("no_face", "several_faces", with the frame)
3. the same person throughout, and the person in the reference photos? ("different_person",
   "not_reference")
4. did anything move at all? ("still": the same picture over and over, or a face whose pose never
   changes, like a printed photo held in front of the camera)
5. did each step happen, far enough? ("not_left", "not_right", "not_mouth")
6. did the steps first happen in the order asked? ("order")

Poses come from dlib's 68 landmarks, relative to the neutral frames, so a face's own asymmetry and
a smile at rest cancel out:

- yaw: where the nose tip (point 30) lies along the jaw line from point 0 (the person's right
  jaw, on the image's left) to point 16, as a share of that line; 0.5 is straight ahead. A head
  turned to the person's OWN LEFT moves the nose toward the image's RIGHT side in an unmirrored
  frame, so the share grows: yaw here is positive for "left" and negative for "right".
  A flat photo tilted in front of the camera moves nose and jaw together, so the share barely
  changes: only the perspective of a steep, close tilt shifts it a little (see YAW_TURN).
- mouth: the inner-lip gap (62 to 66) over the mouth's width (60 to 64), minus the same at rest.

No Django: images in, plain data out (the consent services turn problems into messages).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from creator.engine.faces import Box, FaceEngine, distance, pixels_of

STEPS = ("left", "right", "mouth")
"""What a challenge can ask: turn the head to the person's own left, to their right, open the
mouth. A challenge is a random order of all three."""

FRAMES = 12
"""Frames the browser captures: 2 neutral, then 3-4 per step (~0.45 s apart, ~5.5 s in all)."""
MIN_FRAMES = 8
"""Fewer frames than this can't show 2 neutral frames and every step: "too_few_frames"."""
MAX_FRAMES = 16
"""Callers refuse more than this before decoding anything (`check_burst` raises ValueError)."""
NEUTRAL_FRAMES = 2
"""The first frames, taken while the person looks straight at the camera: the pose baseline and
the face signature."""

# Thresholds, measured on the astronaut fixture through tests/videos.py (640×480 JPEG frames with
# sensor noise and hand shake; bench/liveness.py repeats the measurement):
# - at rest the yaw share wanders ±0.012 and the mouth ratio ±0.03 around their medians;
# - the synthetic head turn (nose region shifted by 0.15 face widths) gives yaw ±0.13–0.15, half
#   of it ±0.07–0.08; a real head has a 3-D nose, so a ~10° turn already gives ~0.1;
# - a printed photo tilted 35° / 40° / 45° about its vertical axis, 1.2 image widths from the
#   camera, the way that helps it most, gives yaw up to 0.058 / 0.059 / 0.077 (perspective alone)
#   and raises the mouth ratio by up to 0.05 / 0.06 / 0.09 (the mouth looks narrower); from 45°
#   on, HOG loses the foreshortened face in some frames ("no_face");
# - the synthetic open mouth gives +0.15 (half open) to +0.30–0.35 (open); a real open mouth
#   +0.3 and more.
YAW_TURN = 0.10
"""A turn counts from this yaw on: over a tilted print's 0.08, below the synthetic turn's 0.13."""
MOUTH_OPEN = 0.15
"""An open mouth counts from this rise of the mouth ratio: over a tilted print's 0.09, half the
synthetic open mouth's."""
STILL_SHARE = 0.5
"""Below this share of both thresholds in every frame, the face never moved: "still"."""
PIXEL_FLOOR = 0.5
"""Mean absolute grey-level difference between consecutive frames below which they are the same
picture: a camera's sensor noise alone gives ~2, re-encoding one JPEG ~1."""

# Another face counts from half the main face's HOG score and width (photo intake asks for 0.6):
# in a live selfie the person is the nearest face, and anyone else in the picture, or a photo held
# up beside them, must refuse the check. Without upsampling, HOG's box sizes and scores are
# coarser: the smaller face of two_faces_composite.jpg at 640 px scores 0.57 of the larger and
# is 0.58 as wide.
SECONDARY_SHARE = 0.5
DETECT_WORKERS = 2  # dlib's HOG releases the GIL: two threads halve the detection time here


@dataclass(frozen=True)
class LivenessResult:
    passed: bool
    problem: str  # "" when passed, else one of the codes in the module docstring
    frame: int | None = None  # 1-based index of the frame the problem is about
    step: str | None = None  # the step the problem is about
    embedding: list[float] | None = None  # mean of the neutral frames: the face signature
    distances: dict[str, float] = field(default_factory=dict)  # reference key -> distance
    strangers: list[str] = field(default_factory=list)  # reference keys that don't match
    evidence: dict = field(default_factory=dict)  # JSON-safe scores, never image data


@dataclass(frozen=True)
class _Frame:
    """What one frame showed: its face (when exactly one) and that face's pose."""

    faces: int
    box: Box | None = None
    score: float = 0.0
    yaw: float = 0.0  # the nose's share along the jaw line (0.5: straight ahead)
    mouth: float = 0.0  # inner-lip gap over mouth width


def random_steps() -> tuple[str, ...]:
    """A fresh challenge: all of STEPS in an order drawn with `secrets`."""
    return tuple(secrets.SystemRandom().sample(STEPS, len(STEPS)))


def check_burst(
    frames: list[Image.Image],
    steps: Sequence[str],
    *,
    references: dict[str, Sequence[float]],
    threshold: float,
    engine: FaceEngine | None = None,
) -> LivenessResult:
    """Whether `frames` show one live person, the one in `references`, doing `steps` in order.

    `threshold` is the face distance above which two faces are different people (the operator's
    FACE_MATCH_THRESHOLD). Frames are RGB images as the browser captured them (unmirrored)."""
    if len(frames) > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames, got {len(frames)}")
    if any(step not in STEPS for step in steps):
        raise ValueError(f"unknown step in {list(steps)}")
    if len(frames) < MIN_FRAMES:
        return LivenessResult(False, "too_few_frames")
    engine = engine or FaceEngine.get()
    started = time.perf_counter()
    pixels = [pixels_of(frame) for frame in frames]
    with ThreadPoolExecutor(DETECT_WORKERS) as pool:
        seen = list(pool.map(lambda p: _look(engine, p), pixels))
    evidence: dict = {"faces": [f.faces for f in seen], "score": [round(f.score, 2) for f in seen]}
    timings = {"faces": time.perf_counter() - started}
    result = _check(engine, pixels, seen, list(steps), references, threshold, evidence)
    timings["total"] = time.perf_counter() - started
    evidence["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    return result


def _check(engine, pixels, seen, steps, references, threshold, evidence) -> LivenessResult:
    def refuse(problem: str, **details) -> LivenessResult:
        return LivenessResult(False, problem, evidence=evidence, **details)

    for index, frame in enumerate(seen, start=1):
        if frame.faces != 1:
            return refuse("no_face" if frame.faces == 0 else "several_faces", frame=index)

    yaw, mouth = _poses(seen)
    first = {step: _first_frame(step, yaw, mouth) for step in steps}
    evidence["yaw"] = [round(v, 3) for v in yaw]
    evidence["mouth"] = [round(v, 3) for v in mouth]
    evidence["first"] = {step: (None if i is None else i + 1) for step, i in first.items()}

    # The neutral frames make the signature; each step's first frame must show the same person.
    # Other frames are not embedded: at ~0.15 s each, all 12 would miss the time budget.
    shown = sorted({*range(NEUTRAL_FRAMES), *(i for i in first.values() if i is not None)})
    identity = _identity(engine, pixels, seen, shown, references, threshold)
    evidence["identity"] = identity.pop("apart")
    farthest = max(evidence["identity"], key=evidence["identity"].__getitem__)
    if evidence["identity"][farthest] > threshold:
        return refuse("different_person", frame=int(farthest), **identity)
    if identity["strangers"]:
        return refuse("not_reference", **identity)

    evidence["motion"] = _motion(pixels, yaw, mouth)
    if evidence["motion"]["pixels"] < PIXEL_FLOOR or evidence["motion"]["pose"] < STILL_SHARE:
        return refuse("still", **identity)
    for step in steps:
        if first[step] is None:
            return refuse(f"not_{step}", step=step, **identity)
    happened = sorted(steps, key=lambda step: first[step])
    for asked, came in zip(steps, happened, strict=True):
        if asked != came:
            return refuse("order", step=came, frame=first[came] + 1, **identity)
    return LivenessResult(True, "", evidence=evidence, **identity)


def _identity(engine, pixels, seen, shown, references, threshold) -> dict:
    """The face signature (mean embedding of the neutral frames), its distance to each
    reference, the references it doesn't match, and each shown frame's distance to it
    ("apart", keyed by 1-based frame number as text, for JSON)."""
    embeddings = {i: engine.embed(pixels[i], seen[i].box) for i in shown}
    signature = np.mean([embeddings[i] for i in range(NEUTRAL_FRAMES)], axis=0)
    distances = {key: round(distance(signature, ref), 4) for key, ref in references.items()}
    return {
        "embedding": [float(v) for v in signature],
        "distances": distances,
        "strangers": sorted(key for key, d in distances.items() if d > threshold),
        "apart": {str(i + 1): round(distance(signature, e), 4) for i, e in embeddings.items()},
    }


def _look(engine: FaceEngine, pixels: np.ndarray) -> _Frame:
    """Find the faces in one frame; for a single face, read its pose from 68 landmarks."""
    shares = {"secondary_score": SECONDARY_SHARE, "secondary_size": SECONDARY_SHARE}
    found = engine.detect(pixels, upsample=0, **shares)  # faces from ~80 px wide, in ~50 ms
    if not found:  # a small face: search again at double size (~4× slower)
        found = engine.detect(pixels, upsample=1, **shares)
    if len(found) != 1:
        return _Frame(faces=len(found))
    box, score = found[0]
    points = engine.landmarks(pixels, box)
    jaw = points[16] - points[0]
    yaw = float(np.dot(points[30] - points[0], jaw) / np.dot(jaw, jaw))
    width = np.linalg.norm(points[64] - points[60])
    mouth = float(np.linalg.norm(points[66] - points[62]) / width) if width else 0.0
    return _Frame(faces=1, box=box, score=score, yaw=yaw, mouth=mouth)


def _poses(seen: list[_Frame]) -> tuple[list[float], list[float]]:
    """Each frame's yaw and mouth opening relative to the neutral frames' medians."""
    rest_yaw = float(np.median([f.yaw for f in seen[:NEUTRAL_FRAMES]]))
    rest_mouth = float(np.median([f.mouth for f in seen[:NEUTRAL_FRAMES]]))
    return [f.yaw - rest_yaw for f in seen], [f.mouth - rest_mouth for f in seen]


def _first_frame(step: str, yaw: list[float], mouth: list[float]) -> int | None:
    """The 0-based index of the first frame where `step`'s pose passes its threshold."""
    scores = {
        "left": [v / YAW_TURN for v in yaw],
        "right": [-v / YAW_TURN for v in yaw],
        "mouth": [v / MOUTH_OPEN for v in mouth],
    }[step]
    return next((i for i, score in enumerate(scores) if score >= 1), None)


def _motion(pixels: list[np.ndarray], yaw: list[float], mouth: list[float]) -> dict:
    """How much changed: "pixels", the median mean grey-level difference between consecutive
    frames (0 when all are identical); "pose", the largest pose change as a share of its
    threshold."""
    return {
        "pixels": round(_pixel_change(pixels), 2),
        "pose": round(max(max(abs(v) for v in yaw) / YAW_TURN, max(mouth) / MOUTH_OPEN), 3),
    }


def _pixel_change(pixels: list[np.ndarray]) -> float:
    if len({hashlib.sha256(p.tobytes()).digest() for p in pixels}) == 1:
        return 0.0
    if any(p.shape != pixels[0].shape for p in pixels):
        return 255.0  # frames of different sizes are not one picture repeated
    # Every other pixel each way: the same mean difference, a quarter of the work.
    grey = [p[::2, ::2].astype(np.float32) @ np.float32([0.299, 0.587, 0.114]) for p in pixels]
    return float(np.median([np.abs(a - b).mean() for a, b in itertools.pairwise(grey)]))
