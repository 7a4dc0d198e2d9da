"""Face detection, identity embeddings and likeness, with dlib's offline models.

No Django imports: images in, plain data out. Models come from the `face-recognition-models` package
(HOG detector, 5-point landmarks, ResNet 128-d embedding) and run on the CPU with prebuilt dlib.

dlib fails silently on the wrong input: it needs a C-contiguous RGB uint8 array, after EXIF rotation
(callers pass images that photo intake has already normalised). HOG detections scoring below
~0.3 are often not faces, so they are dropped.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# Detection and embedding run on a copy no larger than this (speed: ~0.2 s at 512² here).
ANALYSIS_MAX_SIDE = 640
MIN_DETECTION_SCORE = 0.3
# Another face counts only when it is about as clear and as large as the main one: faint or small
# detections are background faces or HOG's false positives (a rotated space suit gave one at 0.5).
SECONDARY_SCORE_RATIO = 0.6
SECONDARY_SIZE_RATIO = 0.6


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the analysed image's pixels
    score: float
    embedding: tuple[float, ...] | None = None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


@dataclass(frozen=True)
class FaceReport:
    faces: tuple[Face, ...]
    scale: float  # analysed size / original size

    @property
    def face(self) -> Face | None:
        return self.faces[0] if len(self.faces) == 1 else None

    def box_in_original(self, face: Face) -> tuple[int, int, int, int]:
        return tuple(round(v / self.scale) for v in face.box)  # type: ignore[return-value]


def _models_dir() -> Path:
    # face_recognition_models finds its files with pkg_resources, gone from recent setuptools.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The face models are missing: pip install face-recognition-models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceEngine:
    """Loaded once per process (~76 MB); dlib releases the GIL while it works."""

    _instance: FaceEngine | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import dlib

        models = _models_dir()
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._encoder = dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat")
        )
        self._dlib = dlib

    @classmethod
    def get(cls) -> FaceEngine:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def analyse(
        self,
        image: Image.Image,
        *,
        min_score: float = MIN_DETECTION_SCORE,
        max_side: int = ANALYSIS_MAX_SIDE,
        embed: bool = True,
    ) -> FaceReport:
        """Find faces; when there is exactly one, compute its 128-d identity embedding."""
        scale = min(1.0, max_side / max(image.size))
        small = (
            image
            if scale == 1.0
            else image.resize(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                Image.Resampling.LANCZOS,
            )
        )
        pixels = np.ascontiguousarray(np.asarray(small.convert("RGB"), dtype=np.uint8))
        rects, scores, _ = self._detector.run(pixels, 1, 0.0)
        found = sorted(
            (
                (rect, score)
                for rect, score in zip(rects, scores, strict=True)
                if score >= min_score
            ),
            key=lambda pair: -pair[1],
        )
        if found:
            best_rect, best_score = found[0]
            found = [found[0]] + [
                (rect, score)
                for rect, score in found[1:]
                if score >= SECONDARY_SCORE_RATIO * best_score
                and rect.width() >= SECONDARY_SIZE_RATIO * best_rect.width()
            ]
        faces = []
        for rect, score in found:
            box = (
                max(0, rect.left()),
                max(0, rect.top()),
                min(small.width, rect.right()),
                min(small.height, rect.bottom()),
            )
            embedding = None
            if embed and len(found) == 1:
                shape = self._landmarks(pixels, rect)
                vector = self._encoder.compute_face_descriptor(pixels, shape)
                embedding = tuple(float(v) for v in vector)
            faces.append(Face(box=box, score=float(score), embedding=embedding))
        return FaceReport(faces=tuple(faces), scale=scale)


def distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def same_person(a, b, *, threshold: float) -> bool:
    return distance(a, b) <= threshold


def identity_outliers(embeddings: dict, *, threshold: float, anchor=None) -> dict:
    """Which photos look like someone else: {key: reason} with reason "anchor" or "set".
    Two faces further apart than `threshold` (the operator's FACE_MATCH_THRESHOLD; dlib's
    authors use 0.6) are different people.

    With an anchor (the consent selfie) every photo must match it. Without one, a photo is an
    outlier when it matches fewer than half of the others; two photos that differ are both
    flagged, since nothing tells which one is the odd one out.
    """
    if anchor is not None:
        return {k: "anchor" for k, e in embeddings.items() if distance(anchor, e) > threshold}
    keys = list(embeddings)
    if len(keys) < 2:
        return {}
    outliers = {}
    for key in keys:
        matches = sum(
            1
            for other in keys
            if other != key and same_person(embeddings[key], embeddings[other], threshold=threshold)
        )
        if matches * 2 < len(keys) - 1 or (len(keys) == 2 and matches == 0):
            outliers[key] = "set"
    return outliers


def sharpness(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> float:
    """Variance of the Laplacian of the (face) region at a fixed size: low means blurred."""
    region = image.crop(box) if box else image
    gray = np.asarray(
        region.convert("L").resize((256, 256), Image.Resampling.BILINEAR), dtype=np.float64
    )
    laplacian = (
        -4 * gray[1:-1, 1:-1] + gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:]
    )
    return float(laplacian.var())


def face_crop_box(
    size: tuple[int, int], box: tuple[int, int, int, int], *, context: float = 2.2
) -> tuple[int, int, int, int]:
    """A square around the face with room for hair and shoulders, kept inside the image."""
    width, height = size
    left, top, right, bottom = box
    cx, cy = (left + right) / 2, (top + bottom) / 2 + 0.1 * (bottom - top)
    side = min(max(right - left, bottom - top) * context, width, height)
    x0 = min(max(0.0, cx - side / 2), width - side)
    y0 = min(max(0.0, cy - side / 2), height - side)
    return round(x0), round(y0), round(x0 + side), round(y0 + side)
