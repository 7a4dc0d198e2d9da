"""Watermark robustness, cost and false decodes: Candor's keyed luma watermark against the chroma
DWT-DCT-SVD it replaced and invisible-watermark's own methods when that package is installed
(pip install -e '.[bench]').

For each method: encode/decode milliseconds at 512² and 1024² (decode of a marked image, and of an
unmarked 1024² image, which runs the whole search), PSNR, the share of photos whose id comes back
after each kind of handling, and the share of unrelated images (crops of the fixture photos,
noise, gradients, synthetic scenes, several sizes) that decode to an id at all. The first method
is read by its own search (sizes, mirrors, shifts, angles); the others get the marked size to
scale back to, which is all they can use.

    python bench/watermark.py [--json] [--photos 20] [--unrelated 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import math
import random
import subprocess
import sys
import time
import types

import numpy as np
from _common import ROOT, astronaut_photo, emit, median, table
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from gallery.provenance import watermark as ours
from gallery.renditions import decode_sizes
from imaging.phash import hamming, phash

KEY = ours.key_for(b"bench instance signing key")
# The chroma watermark this one replaced, read from the commit before the change.
V1_COMMIT = "15b5e53"
FACES = ROOT / "tests" / "fixtures" / "faces"


def _reencode(image: Image.Image, fmt: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * share), int(h * share), w - int(w * share), h - int(h * share)))


def _scale(image: Image.Image, factor: float) -> Image.Image:
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice((-1, 1)) * rng.uniform(0.5, 3.0)
    return image.rotate(angle, resample=Image.Resampling.BICUBIC)


# name -> transform(image, rng); each photo gets its own rng, so every method sees the same copy.
TRANSFORMS = {
    "jpeg q60": lambda im, rng: _reencode(im, "JPEG", quality=60),
    "webp q80": lambda im, rng: _reencode(im, "WEBP", quality=80),
    "png (screenshot)": lambda im, rng: _reencode(im, "PNG"),
    "scale 50%": lambda im, rng: _scale(im, 0.5),
    "scale 150%": lambda im, rng: _scale(im, 1.5),
    "crop 10%/side": lambda im, rng: _crop(im, 0.10),
    "crop 3-10% uneven": lambda im, rng: im.crop(
        (
            int(im.width * rng.uniform(0.03, 0.1)),
            int(im.height * rng.uniform(0.03, 0.1)),
            im.width - int(im.width * rng.uniform(0.03, 0.1)),
            im.height - int(im.height * rng.uniform(0.03, 0.1)),
        )
    ),
    "rotate 0.5-3°": _rotate,
    "mirror": lambda im, rng: ImageOps.mirror(im),
    "grayscale": lambda im, rng: im.convert("L").convert("RGB"),
    "brightness ±20%": lambda im, rng: ImageEnhance.Brightness(im).enhance(rng.choice((0.8, 1.2))),
    "contrast ±20%": lambda im, rng: ImageEnhance.Contrast(im).enhance(rng.choice((0.8, 1.2))),
    "mirror+crop5%+jpeg75": lambda im, rng: _reencode(
        ImageOps.mirror(_crop(im, 0.05)), "JPEG", quality=75
    ),
}


class Ours:
    name = "candor v2 keyed luma SS"

    def embed(self, image, watermark_id):
        return ours.embed(image, watermark_id, key=KEY)

    def decode(self, image, marked_size):
        found = ours.find(image, [marked_size], key=KEY)
        return found.watermark_id if found else None


def _load_v1():
    """The previous watermark module, from git (None when the history is not there)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{V1_COMMIT}:gallery/provenance/watermark.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("watermark_v1")
    exec(compile(source, "watermark_v1.py", "exec"), module.__dict__)  # our own code, from git
    sys.modules["watermark_v1"] = module
    return module


class Previous:
    name = "candor v1 chroma dwtDctSvd"

    def __init__(self, module):
        self.v1 = module

    def embed(self, image, watermark_id):
        return self.v1.embed(image, watermark_id)

    def decode(self, image, marked_size):
        return self.v1.detect_rescaled(image, [marked_size])


class Library:
    """invisible-watermark with the v1 payload (24-bit id + CRC-8), read as is and at the marked
    size."""

    def __init__(self, method: str, v1):
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.method, self.name, self.v1 = method, f"invisible-watermark {method}", v1
        self._enc, self._dec = WatermarkEncoder, WatermarkDecoder

    def embed(self, image, watermark_id):
        encoder = self._enc()
        encoder.set_watermark("bits", self.v1.payload_bits(watermark_id))
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        return Image.fromarray(np.ascontiguousarray(encoder.encode(bgr, self.method)[:, :, ::-1]))

    def _read(self, image):
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        try:
            bits = self._dec("bits", self.v1.PAYLOAD_BITS).decode(bgr, self.method)
        except Exception:  # a failed decode is a failed decode, whatever it raised
            return None
        return self.v1.bits_to_id(bits)

    def decode(self, image, marked_size):
        found = self._read(image)
        if found is None and image.size != marked_size:
            found = self._read(image.resize(marked_size, Image.Resampling.LANCZOS))
        return found


def methods():
    found = [Ours()]
    v1 = _load_v1()
    if v1 is not None:
        found.append(Previous(v1))
        with contextlib.suppress(ImportError):  # optional: pip install -e '.[bench]'
            found += [Library("dwtDct", v1), Library("dwtDctSvd", v1)]
    return found


def photos(count: int) -> list[Image.Image]:
    """Distinct 512² photos: astronaut variants, then crops of the other fixture photos."""
    found = [astronaut_photo(i) for i in range(min(count, 12))]
    others = sorted(p for p in FACES.iterdir() if p.suffix in {".jpg", ".png"})
    rng = random.Random(7)
    while len(found) < count:
        image = Image.open(rng.choice(others)).convert("RGB")
        side = rng.randint(min(image.size) * 2 // 3, min(image.size))
        x, y = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
        found.append(image.crop((x, y, x + side, y + side)).resize((512, 512)))
    return found


def unrelated(count: int, seed: int = 1):
    """Images no Candor instance marked: crops of the fixture photos (some mirrored, blurred or
    recompressed), noise, gradients and drawn scenes, 256 to 1024 px a side."""
    rng = random.Random(seed)
    sources = [Image.open(p).convert("RGB") for p in sorted(FACES.iterdir()) if p.suffix != ".md"]
    for i in range(count):
        w, h = rng.randint(256, 1024), rng.randint(256, 1024)
        kind = i % 5
        if kind in (0, 1):
            src = rng.choice(sources)
            cw, ch = rng.randint(64, src.width), rng.randint(64, src.height)
            x, y = rng.randint(0, src.width - cw), rng.randint(0, src.height - ch)
            image = src.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BICUBIC)
            if kind == 1:
                image = _reencode(ImageOps.mirror(image), "JPEG", quality=rng.randint(40, 95))
        elif kind == 2:
            sigma = rng.uniform(2, 80)
            noise = np.random.default_rng(i).normal(128, sigma, (h, w, 3))
            image = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
            if rng.random() < 0.5:
                image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
        elif kind == 3:
            yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
            a, b, c = (rng.uniform(-300, 300) for _ in range(3))
            grad = np.stack([a * xx + b * yy, b * xx - c * yy, c * xx + a * yy], -1) + 128
            image = Image.fromarray(np.clip(grad, 0, 255).astype(np.uint8))
        else:
            image = Image.new("RGB", (w, h), tuple(rng.randint(0, 255) for _ in range(3)))
            draw = ImageDraw.Draw(image)
            for _ in range(rng.randint(3, 40)):
                box = sorted(rng.sample(range(w), 2)), sorted(rng.sample(range(h), 2))
                shape = rng.choice((draw.rectangle, draw.ellipse))
                fill = tuple(rng.randint(0, 255) for _ in range(3))
                shape((box[0][0], box[1][0], box[0][1], box[1][1]), fill=fill)
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2)))
        yield image


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean()
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def timing(method, base: Image.Image, side: int) -> tuple[float, float]:
    image = base.resize((side, side), Image.Resampling.LANCZOS)
    encode, decode = [], []
    for i in range(3):
        tick = time.perf_counter()
        marked = method.embed(image, 100 + i)
        encode.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        method.decode(marked, marked.size)
        decode.append(time.perf_counter() - tick)
    return median(encode) * 1000, median(decode) * 1000


def verify_search_ms(base: Image.Image) -> dict:
    """What verify's watermark search costs on a 1024² upload: a marked JPEG (found at once),
    a rotated one (found after the angle search) and an unmarked one (every hypothesis)."""
    sizes = decode_sizes((1024, 1024))
    image = base.resize((1024, 1024), Image.Resampling.LANCZOS)
    marked = _reencode(ours.embed(image, 9, key=KEY), "JPEG", quality=80)
    cases = {
        "marked": marked,
        "marked, rotated 2°": marked.rotate(2, resample=Image.Resampling.BICUBIC),
        "unmarked": _reencode(image, "JPEG", quality=80),
    }
    result = {}
    for name, case in cases.items():
        times = []
        for _ in range(5):
            tick = time.perf_counter()
            ours.find(case, sizes, key=KEY)
            times.append(time.perf_counter() - tick)
        result[name] = round(median(times) * 1000, 1)
    return result


def phash_distances(sample: list[Image.Image]) -> dict:
    """How far a handled copy's pHash, turned back by what the decoder found (watermark.
    undone_phash), is from the marked image's; and how often unrelated images or distinct photos
    of one face come as close as PHASH_BITS (what the second factor lets through)."""
    worst = {}
    for name, transform in TRANSFORMS.items():
        distances = []
        for i, photo in enumerate(sample):
            marked = ours.embed(photo, 500 + i, key=KEY)
            copy = transform(marked, random.Random(i))
            found = ours.find(copy, [marked.size], key=KEY)
            if found is not None:
                distances.append(hamming(ours.undone_phash(copy, found), phash(marked)))
        worst[name] = max(distances, default=None)

    def share_within(images: list[Image.Image]) -> float:
        hashes = [phash(image) for image in images]
        pairs = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
        return round(sum(d <= ours.PHASH_BITS for d in pairs) / len(pairs), 4)

    return {
        "threshold_bits": ours.PHASH_BITS,
        "worst_after_handling": worst,
        "unrelated_pairs_within": share_within(list(unrelated(300, seed=5))),
        "same_face_photo_pairs_within": share_within(sample),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--unrelated", type=int, default=1000)
    args = parser.parse_args()
    sample = photos(args.photos)
    rows, figures = [], {}
    for method in methods():
        enc512, dec512 = timing(method, sample[0], 512)
        enc1024, dec1024 = timing(method, sample[0], 1024)
        marked = [method.embed(photo, 1000 + i) for i, photo in enumerate(sample)]
        quality = float(np.mean([psnr(m, p) for m, p in zip(marked, sample, strict=True)]))
        row = {
            "method": method.name,
            "PSNR dB": f"{quality:.1f}",
            "enc/dec 512² ms": f"{enc512:.0f} / {dec512:.0f}",
            "enc/dec 1024² ms": f"{enc1024:.0f} / {dec1024:.0f}",
        }
        result = {
            "psnr_db": round(quality, 2),
            "encode_512_ms": round(enc512, 1),
            "decode_512_ms": round(dec512, 1),
            "encode_1024_ms": round(enc1024, 1),
            "decode_1024_ms": round(dec1024, 1),
            "recovered": {},
        }
        for name, transform in TRANSFORMS.items():
            hits = sum(
                method.decode(transform(m, random.Random(i)), m.size) == 1000 + i
                for i, m in enumerate(marked)
            )
            row[name] = f"{hits / len(marked):.0%}"
            result["recovered"][name] = hits / len(marked)
        tick, decoded = time.perf_counter(), 0
        for image in unrelated(args.unrelated):
            decoded += method.decode(image, (512, 512)) is not None
        row["false decodes"] = f"{decoded}/{args.unrelated}"
        result["false_decodes"] = decoded
        result["unrelated"] = args.unrelated
        result["unrelated_ms_each"] = round((time.perf_counter() - tick) * 1000 / args.unrelated)
        rows.append(row)
        figures[method.name] = result
        print(f"... {method.name} done", file=sys.stderr)
    figures["verify_search_1024_ms"] = verify_search_ms(sample[0])
    figures["phash"] = phash_distances(sample)
    hypotheses = 2 * (len(set(decode_sizes((1024, 1024)))) + 2)
    hypotheses *= ours.PEAKS * 2**ours.SOFT_BITS
    figures["design"] = {
        "mac_bits": ours.MAC_BITS,
        "hypotheses_per_image_max": hypotheses,
        "false_decode_bound": hypotheses * 2.0**-ours.MAC_BITS,
        "key_id": hashlib.sha256(KEY).hexdigest()[:8],
    }
    columns = ["method", "PSNR dB", "enc/dec 512² ms", "enc/dec 1024² ms", *TRANSFORMS]
    columns.append("false decodes")
    header = (
        f"id recovered over {len(sample)} photos (512²); false decodes over {args.unrelated} "
        "unrelated images. Transposed: one column per method."
    )
    transposed = [
        {"": c, **{r["method"]: r.get(c, "") for r in rows}} for c in columns if c != "method"
    ]
    text = header + "\n" + table(transposed, ["", *(r["method"] for r in rows)])
    text += f"\nverify's search on a 1024² upload, median ms: {figures['verify_search_1024_ms']}"
    text += f"\nsecond factor, pHash bits after undoing: {figures['phash']}"
    text += f"\ndesign: {figures['design']}"
    emit(text, figures, args.json)


if __name__ == "__main__":
    main()
