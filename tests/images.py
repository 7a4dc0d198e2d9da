"""Test images: the fixtures in tests/fixtures/ (see SOURCES.md there), and variants of them made
with Pillow. Nothing here is shipped."""

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FACES = FIXTURES / "faces"
C2PA = FIXTURES / "c2pa"


def fixture_bytes(name: str) -> bytes:
    return (FACES / name).read_bytes()


def astronaut() -> Image.Image:
    return Image.open(FACES / "skimage_astronaut.png").convert("RGB")


_CROPS = [
    (0, 0, 460, 460), (40, 20, 512, 500), (20, 40, 490, 512), (10, 10, 480, 470),
    (30, 0, 500, 490), (0, 30, 470, 512), (50, 50, 512, 512), (0, 0, 490, 500),
]  # fmt: skip
_ANGLES = [-8, 6, -4, 5, -5, 3, 7, -6]
_COLOUR = [0.6, 1.3, 0.8, 1.5, 0.7, 1.2, 0.9, 1.4]
_LIGHT = [1.1, 0.9, 1.15, 0.85, 1.05, 0.95, 1.2, 0.8]


def astronaut_variant(i: int) -> Image.Image:
    """One of 8 distinct photos of one person: crops, small rotations, colour and light shifts.

    They pass the identity check (0.2 apart) and are not near-duplicates of each other.
    """
    k = i % 8
    image = astronaut().crop(_CROPS[k])
    image = image.rotate(_ANGLES[k], resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    image = ImageEnhance.Color(image).enhance(_COLOUR[k])
    image = ImageEnhance.Brightness(image).enhance(_LIGHT[k])
    if k % 2:
        image = ImageOps.mirror(image)
    return image.resize((512, 512), Image.Resampling.LANCZOS)


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_with_gps(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.5)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 40.2)
    return encode(image, "JPEG", exif=exif, quality=92)


def exif_rotated(image: Image.Image) -> bytes:
    """Stored sideways with EXIF Orientation 6, as phones do: upright only once rotated."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    return encode(image.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif, quality=92)


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims an enormous size (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [astronaut_variant(i).convert("P") for i in range(2)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg(image: Image.Image) -> bytes:
    return encode(image.convert("CMYK"), "JPEG", quality=92)


def png_16bit_grey(image: Image.Image) -> bytes:
    import numpy as np

    grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    image16 = Image.fromarray(grey)
    assert image16.mode == "I;16"
    return encode(image16, "PNG")


def palette_png(image: Image.Image) -> bytes:
    return encode(image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG")


def blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(1.3))
