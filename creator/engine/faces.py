"""Face detection, identity embeddings and likeness, with dlib's offline models.

No Django imports: images in, plain data out. Models come from the `face-recognition-models` package
(HOG detector, 5-point landmarks, ResNet 128-d embedding; the 68-point landmarks the liveness check
reads poses from) and run on the CPU with prebuilt dlib.

dlib fails silently on the wrong input: it needs a C-contiguous RGB uint8 array, after EXIF rotation
(callers pass images that photo intake has already normalised). HOG detections scoring below
~0.3 are often not faces, so they are dropped.
"""

from __future__ import annotations

import importlib.util
import queue
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


Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels


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


def pixels_of(image: Image.Image) -> np.ndarray:
    """The C-contiguous RGB uint8 array dlib needs."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


class FaceEngine:
    """Loaded once per process (~76 MB, ~100 MB more once the 68-point model is used); dlib
    releases the GIL while it works, and may be called from several threads: only the ResNet,
    which keeps its activations in itself (and uses every core already), runs one at a time."""

    _instance: FaceEngine | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import dlib

        models = _models_dir()
        # A HOG detector holds the image it scans, so two threads must not share one (dlib
        # crashes): each call borrows one from this pool, made when none is free (~0.5 s).
        self._detectors: queue.SimpleQueue = queue.SimpleQueue()
        self._detectors.put(dlib.get_frontal_face_detector())
        self._landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._encoder = dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat")
        )
        self._encoder_lock = threading.Lock()
        self._dlib = dlib
        # Only the liveness check needs the 68 points: loaded on first use (~0.5 s, 100 MB).
        self._landmarks68 = None
        self._landmarks68_lock = threading.Lock()

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
        upsample: int = 1,
    ) -> FaceReport:
        """Find faces; when there is exactly one, compute its 128-d identity embedding.

        `upsample` is `detect`'s: each step finds faces half as wide, at four times the cost."""
        scale = min(1.0, max_side / max(image.size))
        small = (
            image
            if scale == 1.0
            else image.resize(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                Image.Resampling.LANCZOS,
            )
        )
        pixels = pixels_of(small)
        found = self.detect(pixels, min_score=min_score, upsample=upsample)
        faces = []
        for rect, score in found:
            embedding = self.embed(pixels, rect) if embed and len(found) == 1 else None
            faces.append(Face(box=clip(rect, small.size), score=score, embedding=embedding))
        return FaceReport(faces=tuple(faces), scale=scale)

    def detect(
        self,
        pixels: np.ndarray,
        *,
        upsample: int = 1,
        min_score: float = MIN_DETECTION_SCORE,
        secondary_score: float = SECONDARY_SCORE_RATIO,
        secondary_size: float = SECONDARY_SIZE_RATIO,
    ) -> list[tuple[Box, float]]:
        """The faces that count in an RGB array, clearest first: (box, HOG score) pairs. A box
        may reach past the image's edges (`clip` keeps it inside); landmarks want it unclipped.

        Each upsampling doubles the size HOG searches (it finds faces from ~80 px wide without,
        ~40 px with one) and costs about four times as much."""
        try:
            detector = self._detectors.get_nowait()
        except queue.Empty:
            detector = self._dlib.get_frontal_face_detector()
        try:
            rects, scores, _ = detector.run(pixels, upsample, 0.0)
        finally:
            self._detectors.put(detector)
        found = sorted(
            (pair for pair in zip(rects, scores, strict=True) if pair[1] >= min_score),
            key=lambda pair: -pair[1],
        )
        if found:
            best_rect, best_score = found[0]
            found = [found[0]] + [
                (rect, score)
                for rect, score in found[1:]
                if score >= secondary_score * best_score
                and rect.width() >= secondary_size * best_rect.width()
            ]
        return [
            ((rect.left(), rect.top(), rect.right(), rect.bottom()), float(score))
            for rect, score in found
        ]

    def embed(self, pixels: np.ndarray, box: Box) -> tuple[float, ...]:
        """The 128-d identity embedding of the face in `box` (5-point alignment)."""
        shape = self._landmarks(pixels, self._dlib.rectangle(*box))
        with self._encoder_lock:
            vector = self._encoder.compute_face_descriptor(pixels, shape)
        return tuple(float(v) for v in vector)

    def landmarks(self, pixels: np.ndarray, box: Box) -> np.ndarray:
        """The 68 landmarks (iBUG 300-W order: jaw 0-16, nose 27-35, mouth 48-67) of the face
        in `box`, as a (68, 2) float array of x, y pixels."""
        shape = self._predictor68()(pixels, self._dlib.rectangle(*box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def _predictor68(self):
        with self._landmarks68_lock:
            if self._landmarks68 is None:
                path = _models_dir() / "shape_predictor_68_face_landmarks.dat"
                self._landmarks68 = self._dlib.shape_predictor(str(path))
            return self._landmarks68


def clip(box: Box, size: tuple[int, int]) -> Box:
    left, top, right, bottom = box
    return max(0, left), max(0, top), min(size[0], right), min(size[1], bottom)


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
