"""The marking pipeline every served image passes through, in this order:
IPTC XMP -> invisible watermark with the credential's id -> C2PA manifest, signed last.
No Django imports."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from gallery.provenance import watermark
from gallery.provenance.c2pa import Signer
from gallery.provenance.manifest import ImageFacts, manifest_definition
from gallery.provenance.xmp import encode_with_xmp, xmp_packet

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def describe(facts: ImageFacts) -> str:
    return (
        f"AI-generated image made with Candor ({facts.instance_name}) by @{facts.author_handle} "
        f"from a personal model. Not a photograph."
    )


@dataclass(frozen=True)
class Marked:
    data: bytes  # the signed file
    watermarked: bool  # small images can't carry the watermark
    manifest: dict  # the manifest definition that was signed


def mark(
    image: Image.Image,
    *,
    fmt: str,
    facts: ImageFacts,
    signer: Signer,
    watermark_id: int | None,
    watermark_key: bytes,
) -> Marked:
    mime = MIME[fmt]
    facts = replace(facts, mime=mime)
    xmp = xmp_packet(
        description=describe(facts),
        creator_tool=f"Candor {facts.software_version}",
        author=f"@{facts.author_handle}",
    )
    watermarked = watermark_id is not None and watermark.can_carry(image)
    pixels = watermark.embed(image, watermark_id, key=watermark_key) if watermarked else image
    encoded = encode_with_xmp(pixels, fmt, xmp)
    definition = manifest_definition(
        replace(facts, watermark_id=watermark_id if watermarked else None)
    )
    return Marked(signer.sign(encoded, mime, definition), watermarked, definition)
