"""Watermark robustness and cost: Candor's DWT-DCT-SVD (numpy) against invisible-watermark's own
methods when that package is installed (pip install -e '.[bench]').

For each method: encode/decode milliseconds at 512² and 1024², and over 8 distinct photos the share
whose id comes back (and the mean bit accuracy) after JPEG q90/75/50, a 50% resize decoded after
scaling back, the same decoded as is, and a 10% crop.

    python bench/watermark.py [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
from _common import astronaut, astronaut_photo, emit, median, table
from PIL import Image

from gallery.provenance import watermark as ours

TRANSFORMS = {
    "jpeg90": lambda im: _jpeg(im, 90),
    "jpeg75": lambda im: _jpeg(im, 75),
    "jpeg50": lambda im: _jpeg(im, 50),
    "half_back": lambda im: im.resize(
        (im.width // 2, im.height // 2), Image.Resampling.LANCZOS
    ).resize(im.size, Image.Resampling.LANCZOS),
    "half_as_is": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "crop10": lambda im: im.crop(
        (im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20)
    ),
}


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


class Ours:
    name = "candor dwtDctSvd (numpy)"

    def embed(self, image, bits_id):
        return ours.embed(image, bits_id)

    def bits(self, image):
        if not ours.can_carry(image):
            return np.zeros(ours.PAYLOAD_BITS, bool)
        return ours.read_bits(image) > 0


class Library:
    def __init__(self, method: str):
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.method, self.name = method, f"invisible-watermark {method}"
        self._enc, self._dec = WatermarkEncoder, WatermarkDecoder

    def embed(self, image, bits_id):
        encoder = self._enc()
        encoder.set_watermark("bits", ours.payload_bits(bits_id))
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        return Image.fromarray(np.ascontiguousarray(encoder.encode(bgr, self.method)[:, :, ::-1]))

    def bits(self, image):
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        try:
            return np.array(self._dec("bits", ours.PAYLOAD_BITS).decode(bgr, self.method), bool)
        except Exception:  # a failed decode is a failed decode, whatever it raised
            return np.zeros(ours.PAYLOAD_BITS, bool)


def methods():
    found = [Ours()]
    with contextlib.suppress(ImportError):  # the library is optional: pip install -e '.[bench]'
        found += [Library("dwtDct"), Library("dwtDctSvd")]
    return found


def timing(method, side: int) -> tuple[float, float]:
    image = astronaut().resize((side, side), Image.Resampling.LANCZOS)
    method.embed(image, 1)
    encode, decode = [], []
    for i in range(3):
        tick = time.perf_counter()
        marked = method.embed(image, 100 + i)
        encode.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        method.bits(marked)
        decode.append(time.perf_counter() - tick)
    return median(encode) * 1000, median(decode) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, figures = [], {}
    photos = [astronaut_photo(i) for i in range(8)]
    for method in methods():
        enc512, dec512 = timing(method, 512)
        enc1024, dec1024 = timing(method, 1024)
        row = {
            "method": method.name,
            "enc/dec 512² ms": f"{enc512:.0f} / {dec512:.0f}",
            "enc/dec 1024² ms": f"{enc1024:.0f} / {dec1024:.0f}",
        }
        result = {
            "encode_512_ms": round(enc512, 1),
            "encode_1024_ms": round(enc1024, 1),
            "decode_1024_ms": round(dec1024, 1),
        }
        for name, transform in TRANSFORMS.items():
            recovered, accuracy = 0, []
            for i, photo in enumerate(photos):
                wanted = np.array(ours.payload_bits(1000 + i), bool)
                got = method.bits(transform(method.embed(photo, 1000 + i)))
                accuracy.append(float((got == wanted).mean()))
                recovered += ours.bits_to_id(got) == 1000 + i
            row[name] = f"{recovered / len(photos):.0%} ({np.mean(accuracy):.2f})"
            result[name] = {
                "recovered": recovered / len(photos),
                "bit_accuracy": round(float(np.mean(accuracy)), 3),
            }
        rows.append(row)
        figures[method.name] = result
    header = "id recovered over 8 photos (mean bit accuracy); 32-bit payload = 24-bit id + CRC-8"
    emit(header + "\n" + table(rows, list(rows[0])), figures, args.json)


if __name__ == "__main__":
    main()
