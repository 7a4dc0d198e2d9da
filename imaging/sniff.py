"""What an uploaded file really is, from its first bytes (never its name), and whether it is small
enough to open. Limits are passed in."""

from __future__ import annotations

import io

from PIL import Image

IMAGE_KINDS = {"jpeg", "png", "webp", "heif", "avif", "gif", "tiff", "bmp"}


class ImageRejected(ValueError):
    """An upload that isn't an image this site will open; `message` says why, for a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def sniff(data: bytes) -> str:
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in {
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
    }:  # fmt: skip
        return "heif"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "avif"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "svg"
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return "html"
    try:
        data[:1024].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    return "text"


def declared_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header alone; (0, 0) when they can't be read that way."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # Pillow refuses huge or odd headers in many ways
        return (0, 0)


NOT_AN_IMAGE = "This isn't an image. Upload a JPEG, PNG, WebP, HEIC or AVIF file."
EMPTY = "The file is empty."
TOO_LARGE = "This file is {size} MB; the limit is {limit} MB."
TOO_MANY_PIXELS = (
    "The image declares {width}×{height} pixels, more than the {limit}-megapixel limit."
)


def too_large(size: int, limit: int) -> str:
    """The one "file too large" message, for sizes in bytes."""
    return TOO_LARGE.format(size=f"{size / 1e6:.1f}", limit=f"{limit / 1e6:g}")


def check_image_bytes(data: bytes, *, max_bytes: int, max_pixels: int) -> str:
    """The image kind, or ImageRejected with a plain reason. Opens nothing beyond the header."""
    if not data:
        raise ImageRejected(EMPTY)
    if len(data) > max_bytes:
        raise ImageRejected(too_large(len(data), max_bytes))
    kind = sniff(data)
    if kind not in IMAGE_KINDS:
        raise ImageRejected(NOT_AN_IMAGE)
    width, height = declared_size(data)
    if width * height > max_pixels or (kind == "png" and (width, height) == (0, 0)):
        raise ImageRejected(
            TOO_MANY_PIXELS.format(width=width, height=height, limit=f"{max_pixels / 1e6:g}")
        )
    return kind
