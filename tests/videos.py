"""Test-only face-motion frames for the live consent check, made from the astronaut photo.

The astronaut is the one fixture we may manipulate (tests/fixtures/SOURCES.md): her head "turns"
and her mouth "opens" through smooth displacement warps (numpy bilinear remap), and a printed copy
of her photo is "tilted" with perspective warps of the whole flat image. The Obama and Biden photos
are only ever used unmodified. Everything is seeded: the same call gives the same frames.

Frames are what a browser sends: unmirrored 640×480 camera frames (the person's left is on the
image's right), JPEG-compressed, each with its own sensor noise and a pixel or two of hand shake.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tests.images import astronaut

SIZE = (640, 480)  # a webcam frame
FRAMES = 12
NOISE = 2.0  # sensor noise, grey levels (sigma)
TURN = 0.15  # nose-region shift of a full head turn, in face widths
MOUTH = 0.35  # jaw drop of a fully open mouth, in mouth widths
TILT_DEGREES = 35.0  # how far a printed photo is tilted
Pose = tuple[str, float]  # ("neutral" | "left" | "right" | "mouth", amount 0..1)


@functools.cache
def _landmarks_of(digest: str, image_bytes: bytes, size: tuple[int, int]) -> np.ndarray:
    from creator.engine.faces import FaceEngine, pixels_of

    engine = FaceEngine.get()
    pixels = pixels_of(Image.frombytes("RGB", size, image_bytes))
    box, _ = engine.detect(pixels)[0]
    return engine.landmarks(pixels, box)


def landmarks(image: Image.Image) -> np.ndarray:
    """The 68 landmarks of the (one) face in `image`, computed once per distinct image."""
    data = image.convert("RGB").tobytes()
    return _landmarks_of(hashlib.sha256(data).hexdigest(), data, image.size)


def _remap(pixels: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """out(x, y) = in(x - dx, y - dy), bilinear: a smooth forward shift by (dx, dy)."""
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    sx = np.clip(xs - dx, 0, width - 1.001)
    sy = np.clip(ys - dy, 0, height - 1.001)
    x0, y0 = sx.astype(int), sy.astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    p = pixels.astype(np.float64)
    top = p[y0, x0] * (1 - fx) + p[y0, x0 + 1] * fx
    bottom = p[y0 + 1, x0] * (1 - fx) + p[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _turned(pixels: np.ndarray, points: np.ndarray, shift: float) -> np.ndarray:
    """The nose region shifted sideways by `shift` pixels (positive: toward the image's right),
    fading out (Gaussian, σ = a quarter face width) before the jaw line."""
    height, width = pixels.shape[:2]
    face_width = np.linalg.norm(points[16] - points[0])
    nose_x, nose_y = points[30]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    sigma = 0.25 * face_width
    weight = np.exp(-((xs - nose_x) ** 2 + (ys - nose_y) ** 2) / (2 * sigma**2))
    return _remap(pixels, shift * weight, np.zeros_like(weight))


def _mouth_opened(pixels: np.ndarray, points: np.ndarray, drop: float) -> np.ndarray:
    """The jaw below the lips dropped by `drop` pixels, and the gap this opens darkened."""
    height, width = pixels.shape[:2]
    lip_y = (points[62, 1] + points[66, 1]) / 2
    mouth_x = (points[60, 0] + points[64, 0]) / 2
    half_mouth = 0.6 * np.linalg.norm(points[64] - points[60])
    chin_y = points[8, 1]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    across = np.sqrt(np.clip(1 - ((xs - mouth_x) / half_mouth) ** 2, 0, 1))  # 0 at the corners
    down = np.where(
        ys < lip_y, 0.0, np.where(ys <= chin_y, 1.0, np.exp(-(((ys - chin_y) / 20) ** 2)))
    )
    dy = drop * across * down
    out = _remap(pixels, np.zeros_like(dy), dy)
    gap = (ys >= lip_y) & (ys - dy < lip_y)
    out[gap] = out[gap] * 0.15 + np.array([70.0, 25.0, 30.0]) * 0.85
    return out


def pose_frame(image: Image.Image, pose: str, amount: float = 1.0) -> Image.Image:
    """`image` (one face) with the head turned to the person's left or right, or the mouth open.

    "left" is the person's own left: in an unmirrored camera frame the nose moves toward the
    image's right side."""
    if pose == "neutral" or amount == 0:
        return image.copy()
    points = landmarks(image)
    pixels = np.asarray(image.convert("RGB"))
    face_width = float(np.linalg.norm(points[16] - points[0]))
    if pose in ("left", "right"):
        sign = 1 if pose == "left" else -1
        out = _turned(pixels, points, sign * amount * TURN * face_width)
    elif pose == "mouth":
        mouth_width = float(np.linalg.norm(points[64] - points[60]))
        out = _mouth_opened(pixels, points, amount * MOUTH * mouth_width)
    else:
        raise ValueError(f"unknown pose {pose!r}")
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def schedule(steps: Sequence[str], frames: int = FRAMES) -> list[Pose]:
    """What a person following the prompts shows in each frame: 2 neutral frames, then each
    step for a third of the rest; the first frame of a step catches the move half done."""
    poses: list[Pose] = [("neutral", 0.0), ("neutral", 0.0)]
    rest = frames - len(poses)
    for i, step in enumerate(steps):
        count = rest // len(steps) + (1 if i < rest % len(steps) else 0)
        poses += [(step, 0.5)] + [(step, 1.0)] * (count - 1)
    return poses


def _camera(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A camera's view of `image`: resized to 640 px wide, cropped to 4:3, a little hand shake
    (shift, scale, rotation), sensor noise and JPEG compression."""
    scale = SIZE[0] / image.width * (1 + rng.uniform(-0.01, 0.01))
    angle = np.radians(rng.uniform(-0.7, 0.7))
    shift = rng.uniform(-3, 3, size=2)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    # Output pixel (x, y) -> input pixel (a x + b y + c, d x + e y + f).
    matrix = (cos, sin, -shift[0] / scale, -sin, cos, -shift[1] / scale)
    framed = image.transform(SIZE, Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR)
    pixels = np.asarray(framed, dtype=np.float64) + rng.normal(0, NOISE, (SIZE[1], SIZE[0], 1))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def burst(
    sequence: Sequence[Pose | str], *, image: Image.Image | None = None, seed: int = 0
) -> list[Image.Image]:
    """The frames a browser sends for `sequence` (one pose, or (pose, amount), per frame)."""
    image = image or astronaut()
    rng = np.random.default_rng(seed)
    posed: dict[Pose, Image.Image] = {}
    frames = []
    for item in sequence:
        pose = (item, 1.0) if isinstance(item, str) else item
        if pose not in posed:
            posed[pose] = pose_frame(image, *pose)
        frames.append(_camera(posed[pose], rng))
    return frames


def challenge_burst(steps: Sequence[str], *, seed: int = 0) -> list[Image.Image]:
    """A genuine burst: the astronaut doing `steps` in order."""
    return burst(schedule(steps), seed=seed)


def still_burst(image: Image.Image | None = None, *, seed: int = 0) -> list[Image.Image]:
    """A printed photo held still in front of the camera: only noise and hand shake change."""
    return burst(["neutral"] * FRAMES, image=image, seed=seed)


def _perspective(image: Image.Image, yaw: float, pitch: float = 0.0) -> Image.Image:
    """`image` as a flat print rotated by `yaw` degrees about its vertical axis (and `pitch`
    about its horizontal one), seen by a pinhole camera 1.2 image widths away."""
    width, height = image.size
    distance = 1.2 * width
    a, b = np.radians(yaw), np.radians(pitch)

    def project(x: float, y: float) -> tuple[float, float]:
        px, py = x - width / 2, y - height / 2
        # Rotate the print's plane, then project it back onto the image plane.
        rx, rz = px * np.cos(a), px * np.sin(a)
        ry, rz = py * np.cos(b), rz + py * np.sin(b)
        factor = distance / (distance + rz)
        return width / 2 + rx * factor, height / 2 + ry * factor

    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    seen = [project(x, y) for x, y in corners]
    # Solve the homography that maps each seen (output) corner back to the print (input).
    rows, values = [], []
    for (u, v), (x, y) in zip(seen, corners, strict=True):
        rows.append([u, v, 1, 0, 0, 0, -x * u, -x * v])
        rows.append([0, 0, 0, u, v, 1, -y * u, -y * v])
        values += [x, y]
    coeffs = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(values, dtype=np.float64))
    return image.transform(
        image.size,
        Image.Transform.PERSPECTIVE,
        tuple(coeffs),
        Image.Resampling.BICUBIC,
        fillcolor=(90, 90, 90),
    )


def tilted_print_burst(
    steps: Sequence[str] = ("left", "right", "mouth"),
    *,
    image: Image.Image | None = None,
    degrees: float = TILT_DEGREES,
    seed: int = 0,
) -> list[Image.Image]:
    """A printed photo tilted to mimic each step: swung about its vertical axis for a turn, the
    way that moves the nose (by perspective) toward where a turned head's nose would go, and
    tipped back for the mouth (tipped forward, HOG loses the face)."""
    image = image or astronaut()
    tilts = {"left": (degrees, 0.0), "right": (-degrees, 0.0), "mouth": (0.0, degrees)}
    rng = np.random.default_rng(seed)
    frames = []
    for pose, amount in schedule(steps):
        yaw, pitch = tilts.get(pose, (0.0, 0.0))
        frames.append(_camera(_perspective(image, yaw * amount, pitch * amount), rng))
    return frames


def y4m(
    frames: Sequence[Image.Image] | Sequence[tuple[Image.Image, float]],
    path: Path,
    fps: int = 10,
) -> Path:
    """A Y4M clip (4:2:0, C420jpeg) for Chromium's fake camera, which plays it in a loop.

    `frames` is one image per frame, or (image, seconds) pairs, each held that long."""
    timed = [item if isinstance(item, tuple) else (item, 1 / fps) for item in frames]
    width, height = timed[0][0].size
    half = (width // 2, height // 2)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image, seconds in timed:
            y, cb, cr = image.convert("RGB").resize((width, height)).convert("YCbCr").split()
            frame = (
                b"FRAME\n"
                + y.tobytes()
                + cb.resize(half, Image.Resampling.BILINEAR).tobytes()
                + cr.resize(half, Image.Resampling.BILINEAR).tobytes()
            )
            out.write(frame * max(1, round(seconds * fps)))
    return path


def challenge_video(steps: Sequence[str], path: Path, fps: int = 10, *, seed: int = 0) -> Path:
    """The astronaut following a challenge for the browser's camera, on the consent page's clock
    (static/js/liveness.js): neutral 1.4 s, each step's pose 1.6 s in order, then neutral 3 s,
    so a ~6 s capture started with the clip does not wrap around into its start. A few noisy
    copies of each pose alternate, like a live camera."""
    image = astronaut()
    plan = [("neutral", 1.4)] + [(step, 1.6) for step in steps] + [("neutral", 3.0)]
    rng = np.random.default_rng(seed)
    timed = []
    for pose, seconds in plan:
        posed = pose_frame(image, pose)
        looks = [_camera(posed, rng) for _ in range(3)]
        count = max(1, round(seconds * fps))
        timed += [(looks[i % len(looks)], 1 / fps) for i in range(count)]
    return y4m(timed, path, fps)
