"""What an uploaded file itself says it is: IPTC digital source types in its XMP and C2PA actions.

No Django imports: bytes and dicts in, short IPTC names out. A creator's declaration is checked
against these, so an image a vendor labelled as AI cannot be relabelled as a photograph.

The containers are walked by hand (JPEG segments, PNG chunks, WebP RIFF chunks) rather than
scanned as raw bytes, so XMP inside a C2PA store's ingredient thumbnails is not read as the
file's own. Every loop and regex is bounded, and a damaged or hostile file never raises.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
AI_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "algorithmicMedia",
        "compositeSynthetic",
    }
)
# The IPTC vocabulary (current and retired terms), so "TrainedAlgorithmicMedia" or a lower-case
# spelling cannot slip past a comparison with the canonical name.
KNOWN_SOURCE_TYPES = AI_SOURCE_TYPES | {
    "digitalCapture",
    "computationalCapture",
    "negativeFilm",
    "positiveFilm",
    "print",
    "humanEdits",
    "minorHumanEdits",
    "compositeCapture",
    "algorithmicallyEnhanced",
    "dataDrivenMedia",
    "digitalArt",
    "virtualRecording",
    "screenCapture",
    "softwareImage",
    "digitalCreation",
}
_CANONICAL = {name.lower(): name for name in KNOWN_SOURCE_TYPES}

XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_JPEG_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"
XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_XMP_BYTES = 4 * 1024 * 1024  # a compressed PNG packet inflates to no more than this
MAX_PACKETS = 64
MAX_VALUE = 2048  # characters in one source-type value
MAX_TAG = 4096  # characters inside one <...:DigitalSourceType ...> tag

_PREFIX_RE = re.compile(
    r"xmlns:([A-Za-z_][\w.-]{0,63})\s*=\s*[\"']" + re.escape(IPTC_EXT_NS) + r"[\"']"
)
# A quoted attribute value, either quote, no markup inside, of bounded length.
_QUOTED = rf"""(?:"([^"<]{{0,{MAX_VALUE}}})"|'([^'<]{{0,{MAX_VALUE}}})')"""
_RESOURCE_RE = re.compile(r":resource\s*=\s*" + _QUOTED)
_NAME = r"([A-Za-z_][\w.-]{0,63}):DigitalSourceType"
# One pass whatever the number of prefixes; [^<>] stops at the next tag, so work stays linear.
_ATTRIBUTE_RE = re.compile(r"\s" + _NAME + r"\s*=\s*" + _QUOTED)
_ELEMENT_RE = re.compile("<" + _NAME + rf"\b([^<>]{{0,{MAX_TAG}}})>([^<]{{0,{MAX_VALUE}}})")


@dataclass(frozen=True)
class EmbeddedClaim:
    source_type: str  # short IPTC name, e.g. "trainedAlgorithmicMedia"
    where: str  # "XMP" or "C2PA": where the file says it, in words for a message

    @property
    def is_ai(self) -> bool:
        return self.source_type in AI_SOURCE_TYPES


def short_source_type(value: str) -> str:
    """The short IPTC name for a full URL (http or https), a "digitalsourcetype/..." path or a
    bare name. Known names come back in their canonical spelling; others stripped, as they are."""
    text = str(value).strip()
    marker = text.lower().rfind("digitalsourcetype/")
    if marker >= 0:
        text = text[marker + len("digitalsourcetype/") :]
    text = text.strip().strip("/").strip()
    return _CANONICAL.get(text.lower(), text)


def xmp_source_types(data: bytes) -> list[str]:
    """Short IPTC source-type names an image's XMP declares (Iptc4xmpExt:DigitalSourceType),
    in JPEG (APP1), PNG (iTXt/zTXt/tEXt 'XML:com.adobe.xmp') and WebP (XMP chunk)."""
    try:
        found: list[str] = []
        for segment in _xmp_segments(bytes(data)):
            text = segment[:MAX_XMP_BYTES].decode("utf-8", errors="replace")
            for packet in _packets(text):
                for value in _source_types_in_packet(packet):
                    name = short_source_type(value)
                    if name and name not in found:
                        found.append(name)
        return found
    except Exception:  # a hostile file must never break an upload: it says nothing
        return []


def c2pa_source_types(manifest: dict | None) -> list[str]:
    """Short names from every action's digitalSourceType in the manifest's c2pa.actions
    assertions (v1 and v2, and numbered duplicates such as c2pa.actions__1)."""
    found: list[str] = []
    if not isinstance(manifest, dict):
        return found
    assertions = manifest.get("assertions")
    for item in assertions if isinstance(assertions, list) else []:
        if not isinstance(item, dict) or not str(item.get("label", "")).startswith("c2pa.actions"):
            continue
        data = item.get("data")
        if not isinstance(data, dict):
            continue
        # v2 templates give defaults for the actions named in them, so they count too.
        for key in ("actions", "templates"):
            actions = data.get(key)
            for action in actions if isinstance(actions, list) else []:
                if not isinstance(action, dict):
                    continue
                value = action.get("digitalSourceType")
                if isinstance(value, str) and value.strip():
                    name = short_source_type(value)
                    if name not in found:
                        found.append(name)
    return found


def embedded_claims(data: bytes, manifest: dict | None) -> list[EmbeddedClaim]:
    """What the file says about its source: XMP claims, then C2PA claims, without repeats."""
    claims = [EmbeddedClaim(name, "XMP") for name in xmp_source_types(data)]
    claims += [EmbeddedClaim(name, "C2PA") for name in c2pa_source_types(manifest)]
    return list(dict.fromkeys(claims))


def ai_claim(claims: Iterable[EmbeddedClaim]) -> EmbeddedClaim | None:
    """The first claim that says the image is AI-generated, or None."""
    return next((claim for claim in claims if claim.is_ai), None)


# Containers


def _xmp_segments(data: bytes) -> Iterator[bytes]:
    if data.startswith(b"\xff\xd8"):
        yield from _jpeg_xmp(data)
    elif data.startswith(PNG_SIGNATURE):
        yield from _png_xmp(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        yield from _webp_xmp(data)


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, body) of each JPEG segment before the image data; stops at a damaged one."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return  # lost sync: a damaged file
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return
        yield marker, data[pos + 4 : pos + 2 + length]
        pos += 2 + length


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of each PNG chunk up to IEND."""
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IEND":
            return
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def _webp_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(fourcc, body) of each RIFF chunk of a WebP file."""
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)


def _jpeg_xmp(data: bytes) -> Iterator[bytes]:
    extended: list[tuple[int, bytes]] = []
    for marker, body in _jpeg_segments(data):
        if marker != 0xE1:
            continue
        if body.startswith(XMP_JPEG_HEADER):
            yield body[len(XMP_JPEG_HEADER) :]
        elif body.startswith(XMP_JPEG_EXTENSION):
            # GUID (32), full length (4), offset (4), then a piece of the extended packet.
            head = len(XMP_JPEG_EXTENSION)
            (offset,) = struct.unpack(">I", body[head + 36 : head + 40])
            extended.append((offset, body[head + 40 :]))
    if extended:
        extended.sort(key=lambda piece: piece[0])
        yield b"".join(piece for _, piece in extended)[:MAX_XMP_BYTES]


def _png_xmp(data: bytes) -> Iterator[bytes]:
    for kind, body in _png_chunks(data):
        if kind not in (b"iTXt", b"zTXt", b"tEXt"):
            continue
        keyword, _, rest = body.partition(b"\x00")
        if keyword != XMP_PNG_KEYWORD:
            continue
        if kind == b"tEXt":
            yield rest
        elif kind == b"zTXt":
            yield _inflate(rest[1:])
        else:
            compressed, rest = rest[:1], rest[2:]  # flag, method
            _language, _, rest = rest.partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            yield _inflate(text) if compressed == b"\x01" else text


def _inflate(data: bytes) -> bytes:
    """At most MAX_XMP_BYTES of a zlib stream: a small chunk cannot become a bomb."""
    try:
        return zlib.decompressobj().decompress(data, MAX_XMP_BYTES)
    except zlib.error:
        return b""


def _webp_xmp(data: bytes) -> Iterator[bytes]:
    for kind, body in _webp_chunks(data):
        if kind == b"XMP ":
            yield body


# XMP text


def _packets(text: str) -> Iterator[str]:
    """Each x:xmpmeta element, or failing that each <?xpacket begin ... end?> span, or failing
    that a bare rdf:RDF (some libraries write one alone into the file's XMP slot)."""
    found = False
    for start_tag, end_tag in (
        ("<x:xmpmeta", "</x:xmpmeta>"),
        ("<?xpacket begin", "<?xpacket end"),
    ):
        pos = 0
        for _ in range(MAX_PACKETS):
            start = text.find(start_tag, pos)
            if start < 0:
                break
            end = text.find(end_tag, start)
            if end < 0:
                break
            found = True
            yield text[start : end + len(end_tag)]
            pos = end + len(end_tag)
        if found:
            return
    if "<rdf:RDF" in text:
        yield text


def _source_types_in_packet(packet: str) -> Iterator[str]:
    # The conventional prefix counts even if a sloppy writer forgot to bind it.
    prefixes = {"Iptc4xmpExt", *_PREFIX_RE.findall(packet)}
    for match in _ATTRIBUTE_RE.finditer(packet):
        if match.group(1) in prefixes:
            yield html.unescape(match.group(2) or match.group(3) or "")
    for match in _ELEMENT_RE.finditer(packet):
        if match.group(1) not in prefixes:
            continue
        attrs = match.group(2)
        resource = _RESOURCE_RE.search(attrs)
        if resource:  # <...:DigitalSourceType rdf:resource="..."/>
            yield html.unescape(resource.group(1) or resource.group(2) or "")
        elif not attrs.rstrip().endswith("/"):
            yield html.unescape(match.group(3))


def c2pa_store_bytes(data: bytes) -> int:
    """How many bytes of the file its C2PA manifest store takes: JPEG APP11 segments, the PNG
    caBX chunk, the WebP C2PA chunk (0 for other formats or none)."""
    if data.startswith(b"\xff\xd8"):
        return sum(len(body) + 2 for marker, body in _jpeg_segments(data) if marker == 0xEB)
    if data.startswith(PNG_SIGNATURE):
        return sum(len(body) for kind, body in _png_chunks(data) if kind == b"caBX")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return sum(len(body) for kind, body in _webp_chunks(data) if kind == b"C2PA")
    return 0
