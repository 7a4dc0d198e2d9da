"""What an uploaded file really is, and what its header declares, from its bytes alone (never its
name, never a decoder): the kind, the width and height, and the few format details that make a
small file expensive to decode. imaging.limits decides what to refuse."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

IMAGE_KINDS = frozenset({"jpeg", "png", "webp", "heif", "avif", "gif", "tiff", "bmp"})
# Kinds whose size is read here; HEIF and AVIF (ISO boxes) are left to their lazy opener.
PARSED_KINDS = frozenset({"jpeg", "png", "webp", "gif", "tiff", "bmp"})

TOO_LARGE = "This file is {size} MB; the limit is {limit} MB."


def too_large(size: int, limit: int) -> str:
    """The one "file too large" message, for sizes in bytes."""
    return TOO_LARGE.format(size=f"{size / 1e6:.1f}", limit=f"{limit / 1e6:g}")


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
    return "text" if _looks_like_text(data[:1024]) else "unknown"


def _looks_like_text(head: bytes) -> bool:
    # Incremental, so a character cut in two at the 1024th byte is not taken for binary; control
    # bytes (a zip's NULs, say) are valid UTF-8 but never in a text file.
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    jpeg_scans: int = 0  # SOS markers in a JPEG's first image: progressive files have ~10
    bmp_rle: bool = False  # run-length-compressed BMP, which Pillow decodes in Python


def read_header(data: bytes, kind: str) -> Header | None:
    """The declared size (and cost details) of a PARSED_KINDS file; None when the header is cut
    short or malformed."""
    try:
        return _READERS[kind](data)
    except (IndexError, KeyError, ValueError):
        return None


def _u16(data: bytes, at: int, order: str) -> int:
    if at + 2 > len(data):
        raise IndexError(at)
    return int.from_bytes(data[at : at + 2], order)


def _u32(data: bytes, at: int, order: str) -> int:
    if at + 4 > len(data):
        raise IndexError(at)
    return int.from_bytes(data[at : at + 4], order)


def _png(data: bytes) -> Header | None:
    if data[12:16] != b"IHDR":  # the first chunk, always
        return None
    return Header(_u32(data, 16, "big"), _u32(data, 20, "big"))


def _jpeg(data: bytes) -> Header | None:
    at, size, scans = 2, None, 0
    while at + 4 <= len(data):
        if data[at] != 0xFF:  # junk between segments: skipped, as libjpeg and Pillow do
            at = data.find(b"\xff", at)
            if at < 0:
                break
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD9:  # end of the (first) image
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length
            at += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and size is None:  # SOFn
            size = (_u16(data, at + 7, "big"), _u16(data, at + 5, "big"))
        at += 2 + _u16(data, at + 2, "big")
        if marker == 0xDA:  # a scan: count it, then skip its entropy-coded data
            if size is None:
                return None
            scans += 1
            found = _NEXT_MARKER.search(data, at)
            if found is None:
                break
            at = found.start()
    return Header(*size, jpeg_scans=scans) if size else None


# Inside entropy-coded data 0xFF is followed only by a stuffed 0x00 or a restart marker (D0-D7).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _gif(data: bytes) -> Header | None:
    width, height = _u16(data, 6, "little"), _u16(data, 8, "little")
    at = 13
    if data[10] & 0x80:  # global colour table
        at += 3 << ((data[10] & 7) + 1)
    # Pillow grows the canvas to the first frame when that frame reaches past it.
    while at < len(data):
        block = data[at]
        if block == 0x2C:  # image descriptor
            left, top = _u16(data, at + 1, "little"), _u16(data, at + 3, "little")
            right = left + _u16(data, at + 5, "little")
            bottom = top + _u16(data, at + 7, "little")
            return Header(max(width, right), max(height, bottom))
        if block != 0x21:  # not an extension either: the trailer, or junk
            break
        at += 2
        while data[at]:  # sub-blocks, each led by its length
            at += data[at] + 1
        at += 1
    return Header(width, height)


def _bmp(data: bytes) -> Header | None:
    header_size = _u32(data, 14, "little")
    if header_size == 12:  # OS/2 1.x
        return Header(_u16(data, 18, "little"), _u16(data, 20, "little"))
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = int.from_bytes(data[22:26], "little", signed=True)  # negative: stored top-down
    compression = _u32(data, 30, "little")
    return Header(abs(width), abs(height), bmp_rle=compression in (1, 2))


def _webp(data: bytes) -> Header | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return Header(
            int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        )
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = _u32(data, 21, "little")
        return Header((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        return Header(_u16(data, 26, "little") & 0x3FFF, _u16(data, 28, "little") & 0x3FFF)
    return None


def _tiff(data: bytes) -> Header | None:
    order = "little" if data[:2] == b"II" else "big"
    ifd = _u32(data, 4, order)
    size = {}
    for entry in range(_u16(data, ifd, order)):
        at = ifd + 2 + 12 * entry
        tag, kind = _u16(data, at, order), _u16(data, at + 2, order)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG, held in the entry
            size[tag] = _u16(data, at + 8, order) if kind == 3 else _u32(data, at + 8, order)
    return Header(size[256], size[257])


_READERS = {"png": _png, "jpeg": _jpeg, "gif": _gif, "bmp": _bmp, "webp": _webp, "tiff": _tiff}
