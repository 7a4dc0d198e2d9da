"""The image helpers alone (no Django): sniffing, header sizes, the limits checked before decoding,
reduced decoding and 8-bit sRGB. BAD_INPUTS is the corpus the upload and verify tests reuse."""

import io
import random
import re
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from imaging.decode import load, shrink, to_srgb
from imaging.limits import (
    MESSAGES,
    TOO_MANY_PIXELS_UNKNOWN,
    ImageLimits,
    ImageRejected,
    Reason,
    check_image,
    open_image,
)
from imaging.sniff import read_header, sniff
from tests import images

# --- building odd files -------------------------------------------------------------------------


def _flat(width: int, height: int, fmt: str, mode: str = "RGB", **options) -> bytes:
    return images.encode(Image.new(mode, (width, height), "grey"), fmt, **options)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size."""
    data = bytearray(_flat(16, 16, "JPEG"))
    at = 2
    while data[at + 1] != 0xC0:  # SOF0
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int, *, screen: tuple[int, int] | None = None) -> bytes:
    """A small GIF whose first frame (and screen, unless given) claims another size."""
    data = bytearray(_flat(16, 16, "GIF", "P"))
    data[6:10] = struct.pack("<HH", *(screen or (width, height)))
    frame = data.index(b",", 13)  # the image descriptor
    data[frame + 5 : frame + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(_flat(16, 16, "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff_declaring(width: int, height: int) -> bytes:
    data = bytearray(_flat(16, 16, "TIFF", "L"))
    ifd = int.from_bytes(data[4:8], "little")
    for entry in range(int.from_bytes(data[ifd : ifd + 2], "little")):
        at = ifd + 2 + 12 * entry
        tag = int.from_bytes(data[at : at + 2], "little")
        if tag in (256, 257):  # as a LONG, so any size fits
            data[at + 2 : at + 4] = struct.pack("<H", 4)
            data[at + 8 : at + 12] = struct.pack("<I", width if tag == 256 else height)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header claims another size (up to 16384 a side)."""
    data = bytearray(_flat(16, 16, "WEBP", lossless=True))
    bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
    data[21:25] = (bits | (width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    return bytes(data)


def jpeg_with_scans(count: int) -> bytes:
    """A progressive JPEG with its last scan repeated: each repeat is one more pass to decode."""
    data = _flat(300, 300, "JPEG", progressive=True)
    last = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + last * (count - data.count(b"\xff\xda")) + b"\xff\xd9"


def rle_bmp(width: int, height: int) -> bytes:
    """An 8-bit run-length-compressed BMP of one-pixel runs: Pillow decodes each in Python."""
    pixels = (b"\x01\x01" * width + b"\x00\x00") * height + b"\x00\x01"
    palette = bytes(4 * 256)
    offset = 14 + 40 + len(palette)
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 0, 0, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + palette + pixels


def a_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello " * 100)
    return buffer.getvalue()


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (300, 300), colour) for colour in ("red", "blue")]
    return images.encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])


R = Reason
# name: (bytes, refusal under verify's limits, refusal under photo intake's limits); None: accepted.
BAD_INPUTS = {
    "empty": (b"", R.EMPTY, R.EMPTY),
    "cut-off JPEG": (images.encode(images.astronaut())[:5000], R.DAMAGED, R.DAMAGED),
    "cut-off PNG": (images.encode(images.astronaut(), "PNG")[:5000], R.DAMAGED, R.DAMAGED),
    "text": (b"Just some text, honestly.\n" * 10, R.TEXT, R.TEXT),
    "HTML": (b"<!doctype html><html><body>hi</body></html>", R.TEXT, R.TEXT),
    "SVG": (b"<svg xmlns='http://www.w3.org/2000/svg' width='10'/>", R.SVG, R.SVG),
    "zip": (a_zip(), R.NOT_AN_IMAGE, R.NOT_AN_IMAGE),
    "zip header and NULs": (b"PK\x03\x04" + bytes(200), R.NOT_AN_IMAGE, R.NOT_AN_IMAGE),
    "random bytes": (random.Random(0).randbytes(4096), R.NOT_AN_IMAGE, R.NOT_AN_IMAGE),
    "PNG declaring 50000²": (images.png_declaring(50000, 50000), *[R.TOO_MANY_PIXELS] * 2),
    "JPEG declaring 65000²": (jpeg_declaring(65000, 65000), *[R.TOO_MANY_PIXELS] * 2),
    "JPEG declaring 10000²": (jpeg_declaring(10000, 10000), *[R.TOO_MANY_PIXELS] * 2),
    "GIF declaring 65000²": (gif_declaring(65000, 65000), *[R.TOO_MANY_PIXELS] * 2),
    "GIF frame past its screen": (
        gif_declaring(20000, 20000, screen=(16, 16)),
        *[R.TOO_MANY_PIXELS] * 2,
    ),
    "BMP declaring 100000²": (bmp_declaring(100000, 100000), *[R.TOO_MANY_PIXELS] * 2),
    "BMP declaring 10000² top-down": (bmp_declaring(10000, -10000), *[R.TOO_MANY_PIXELS] * 2),
    "TIFF declaring 100000²": (tiff_declaring(100000, 100000), *[R.TOO_MANY_PIXELS] * 2),
    "WebP declaring 16384²": (webp_declaring(16384, 16384), *[R.TOO_MANY_PIXELS] * 2),
    # Under Pillow's own cap, so Pillow would allocate its 400 MB canvas on open.
    "WebP declaring 10000²": (webp_declaring(10000, 10000), *[R.TOO_MANY_PIXELS] * 2),
    "1×60000": (_flat(1, 60000, "PNG"), R.TOO_SMALL, R.TOO_SMALL),
    "60000×1": (_flat(60000, 1, "PNG"), R.TOO_SMALL, R.TOO_SMALL),
    "40×4000": (_flat(40, 4000, "PNG"), R.TOO_NARROW, R.TOO_SMALL),
    "6000×280 JPEG": (_flat(6000, 280, "JPEG"), R.TOO_NARROW, R.TOO_NARROW),
    "JPEG of 1000 scans": (jpeg_with_scans(1000), R.TOO_MANY_SCANS, R.TOO_MANY_SCANS),
    "run-length BMP": (rle_bmp(300, 300), R.UNSUPPORTED, R.UNSUPPORTED),
    "small BMP": (_flat(300, 300, "BMP"), None, R.UNSUPPORTED),
    "TIFF": (_flat(300, 300, "TIFF"), None, R.UNSUPPORTED),
    "animated GIF": (images.animated_gif(), None, R.ANIMATED),
    "animated WebP": (animated_webp(), None, R.ANIMATED),
    "CMYK JPEG": (images.cmyk_jpeg(images.astronaut_variant(3)), None, None),
    "16-bit PNG": (images.png_16bit_grey(images.astronaut_variant(3)), None, None),
    "palette PNG": (images.palette_png(images.astronaut_variant(3)), None, None),
}
VERIFY_LIKE = ImageLimits(max_bytes=25_000_000, max_pixels=50_000_000, min_side=32)
PHOTO_LIKE = ImageLimits(
    max_bytes=25_000_000,
    max_pixels=50_000_000,
    min_side=256,
    kinds=frozenset({"jpeg", "png", "webp", "heif"}),
    animated=False,
)


def message_pattern(template: str) -> re.Pattern:
    """A message template as a pattern: each {field} stands for any text."""
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.compile(".+".join(re.escape(part) for part in parts))


def imaging_pattern(reason: Reason) -> re.Pattern:
    if reason == Reason.TOO_MANY_PIXELS:  # with or without the size, as the header allows
        return re.compile(
            f"{message_pattern(MESSAGES[reason]).pattern}|"
            f"{message_pattern(TOO_MANY_PIXELS_UNKNOWN).pattern}"
        )
    return message_pattern(MESSAGES[reason])


def refusal(data: bytes, limits: ImageLimits) -> Reason | None:
    """What the checks and a decode make of `data`: the reason it is refused, or None."""
    try:
        checked = check_image(data, limits)
        load(open_image(data, checked, limits))
    except ImageRejected as exc:
        assert imaging_pattern(exc.reason).fullmatch(exc.message), exc.message
        return exc.reason
    return None


# --- the limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_each_bad_input_is_refused_for_a_specific_reason(name):
    data, for_verify, for_photos = BAD_INPUTS[name]
    assert refusal(data, VERIFY_LIKE) == for_verify
    assert refusal(data, PHOTO_LIKE) == for_photos


def test_it_refuses_a_bomb_before_pillow_opens_it(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("Pillow was asked to open a file over the pixel limit")

    monkeypatch.setattr(Image, "open", fail)
    for name in ("PNG declaring 50000²", "JPEG declaring 10000²", "WebP declaring 10000²"):
        with pytest.raises(ImageRejected) as refused:
            check_image(BAD_INPUTS[name][0], VERIFY_LIKE)
        assert refused.value.reason == Reason.TOO_MANY_PIXELS
        assert "10000×10000" in refused.value.message or "50000×50000" in refused.value.message


def test_it_names_the_size_and_the_limit():
    with pytest.raises(ImageRejected) as refused:
        check_image(jpeg_declaring(9000, 7000), VERIFY_LIKE)
    assert refused.value.message == (
        "The image declares 9000×7000 pixels, more than the 50-megapixel limit, "
        "so it was not opened."
    )


def test_a_normal_progressive_jpeg_passes():
    data = images.encode(images.astronaut(), "JPEG", progressive=True)
    assert read_header(data, "jpeg").jpeg_scans == 10
    assert check_image(data, VERIFY_LIKE).kind == "jpeg"


def test_bytes_after_the_image_are_not_counted_as_scans():
    # A phone's motion photo appends a video after the JPEG; its bytes may contain FF DA.
    data = images.encode(images.astronaut(), "JPEG") + b"\xff\xda\x00\x08" * 500
    assert read_header(data, "jpeg").jpeg_scans == 1
    assert check_image(data, VERIFY_LIKE).kind == "jpeg"


def test_junk_between_jpeg_segments_is_skipped_as_pillow_does():
    data = _flat(301, 203, "JPEG")
    data = data[:20] + b"\x00\x00junk" + data[20:]  # after the APP0 segment
    assert Image.open(io.BytesIO(data)).size == (301, 203)
    assert check_image(data, VERIFY_LIKE).width == 301


def test_the_bytes_limit_uses_the_one_message():
    with pytest.raises(ImageRejected) as refused:
        check_image(b"\x89PNG" + bytes(2000), ImageLimits(max_bytes=1000, max_pixels=10))
    assert refused.value.reason == Reason.TOO_LARGE
    assert refused.value.message == "This file is 0.0 MB; the limit is 0.001 MB."


def test_an_unsupported_kind_names_what_is_accepted():
    limits = ImageLimits(max_bytes=10**6, max_pixels=10**6, kinds=frozenset({"jpeg", "png"}))
    with pytest.raises(ImageRejected) as refused:
        check_image(_flat(64, 64, "GIF", "P"), limits)
    assert refused.value.message == "GIF images aren't supported here. Upload a JPEG or PNG image."


def test_the_sniffer_tells_a_zip_from_text():
    assert sniff(a_zip()) == "unknown"
    assert sniff(b"PK\x03\x04" + bytes(200)) == "unknown"  # NULs are valid UTF-8, not text
    assert sniff("Grüße, ".encode() * 200) == "text"  # a character cut at byte 1024 is still text


# --- header sizes agree with Pillow -------------------------------------------------------------


def _webp_vp8x() -> bytes:
    image = Image.new("RGBA", (301, 203), (10, 20, 30, 128))
    return images.encode(image, "WEBP", exif=Image.Exif().tobytes())


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("png", _flat(301, 203, "PNG")),
        ("jpeg", _flat(301, 203, "JPEG")),
        ("jpeg", _flat(301, 203, "JPEG", progressive=True)),
        ("jpeg", images.jpeg_with_gps(Image.new("RGB", (301, 203)))),  # EXIF before the frame
        ("gif", _flat(301, 203, "GIF", "P")),
        ("bmp", _flat(301, 203, "BMP")),
        ("webp", _flat(301, 203, "WEBP")),
        ("webp", _flat(301, 203, "WEBP", lossless=True)),
        ("webp", _webp_vp8x()),
        ("tiff", _flat(301, 203, "TIFF")),
        ("tiff", _flat(301, 203, "TIFF", "I;16B")),
    ],
)
def test_the_header_size_is_the_size_pillow_reads(kind, data):
    assert sniff(data) == kind
    header = read_header(data, kind)
    assert (header.width, header.height) == Image.open(io.BytesIO(data)).size == (301, 203)


# --- decoding no more than needed ---------------------------------------------------------------


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    data = _flat(4000, 3000, "JPEG")
    image = load(Image.open(io.BytesIO(data)), at_least=1200)
    assert image.size == (2000, 1500)  # libjpeg's 1/2 scale: still at least 1200 long
    assert shrink(image, 1200).size == (1200, 900)


def test_a_small_image_is_decoded_as_it_is():
    data = _flat(800, 600, "JPEG")
    assert load(Image.open(io.BytesIO(data)), at_least=1200).size == (800, 600)


# --- 16-bit and float images keep their tones ---------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_16bit(colour_type: int, sample: bytes) -> bytes:
    """A 16×16 PNG of 16-bit samples: colour type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA."""
    import zlib

    ihdr = struct.pack(">IIBBBBB", 16, 16, 16, colour_type, 0, 0, 0)
    raw = (b"\x00" + sample * 16) * 16
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def tiff_rgb_16bit() -> bytes:
    """A 16×16 uncompressed little-endian TIFF of 16-bit RGB samples (Pillow can't write one)."""
    width = height = 16
    pixels = struct.pack("<HHH", 0x8000, 0x8000, 0x8000) * width * height
    entries = [
        (256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 0), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 3), (278, 3, 1, height),
        (279, 4, 1, len(pixels)), (284, 3, 1, 1),
    ]  # fmt: skip
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = 8 + ifd_size
    pixels_at = bits_at + 6
    values = {258: bits_at, 273: pixels_at}
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = values.get(tag, value)
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 16, 16, 16) + pixels


def _tiff(mode: str, value) -> bytes:
    return images.encode(Image.new(mode, (16, 16), value), "TIFF")


MID = struct.pack(">H", 0x8000)  # half of 16-bit full scale
OPAQUE = b"\xff\xff"
MID_GREY_16_BIT = {
    # what the file is: (its bytes, the mode Pillow opens it in)
    "PNG 16-bit grey": (png_16bit(0, MID), "I;16"),
    "PNG 16-bit RGB": (png_16bit(2, MID * 3), "RGB"),
    "PNG 16-bit grey + alpha": (png_16bit(4, MID + OPAQUE), "RGBA"),
    "PNG 16-bit RGBA": (png_16bit(6, MID * 3 + OPAQUE), "RGBA"),
    "TIFF 16-bit grey, little-endian": (_tiff("I;16", 0x8000), "I;16"),
    "TIFF 16-bit grey, big-endian": (_tiff("I;16B", 0x8000), "I;16B"),
    "TIFF 16-bit RGB": (tiff_rgb_16bit(), "RGB"),
    "TIFF 32-bit integer grey": (_tiff("I", 2**30), "I"),
    "TIFF 32-bit integer holding 16-bit data": (_tiff("I", 0x8000), "I"),
    "TIFF 32-bit float grey": (_tiff("F", 0.5), "F"),
}


@pytest.mark.parametrize("name", MID_GREY_16_BIT)
def test_mid_grey_stays_mid_grey_in_every_deep_mode_pillow_opens(name):
    data, mode = MID_GREY_16_BIT[name]
    image = Image.open(io.BytesIO(data))
    assert image.mode == mode
    rgb = np.asarray(to_srgb(image))
    assert rgb.shape[2] == 3
    assert np.abs(rgb.astype(int) - 128).max() <= 1, rgb[0, 0]


def test_deep_grey_keeps_its_gradient():
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16)[None, :].repeat(4, axis=0)
    rgb = np.asarray(to_srgb(Image.fromarray(ramp)))
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert np.all(np.diff(rgb[0, :, 0].astype(int)) >= 0)


def test_a_float_image_with_nan_does_not_fail():
    array = np.full((8, 8), 0.5, dtype=np.float32)
    array[0, 0] = np.nan
    rgb = np.asarray(to_srgb(Image.fromarray(array, "F")))
    assert rgb[0, 0, 0] == 0 and rgb[1, 1, 0] == 128
