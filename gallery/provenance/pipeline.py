"""The marking pipeline every served image passes through, in this order:
IPTC XMP -> invisible watermark with the credential's id -> C2PA manifest, signed last.
No Django imports."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from gallery.provenance import watermark
from gallery.provenance.c2pa import Signer
from gallery.provenance.manifest import ImageFacts, manifest_definition
from gallery.provenance.xmp import AI_MADE, encode_with_xmp, xmp_packet

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def describe(facts: ImageFacts) -> str:
    declared = facts.declared
    if not declared:
        return (
            f"AI-generated image made with Candor ({facts.instance_name}) by "
            f"@{facts.author_handle} from a personal model. Not a photograph."
        )
    tool = f", made with {declared['tool']}" if declared.get("tool") else ""
    said = f"{declared['words']}{tool}, as declared by {declared['by']}"
    labelled = f"Labelled with Candor ({facts.instance_name})."
    if facts.source_type in AI_MADE:
        return f"AI-generated or AI-edited image: {said}. {labelled}"
    return f"{said}. {labelled}"


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
    quality: int = 92,
) -> Marked:
    mime = MIME[fmt]
    facts = replace(facts, mime=mime)
    xmp = xmp_packet(
        description=describe(facts),
        creator_tool=f"Candor {facts.software_version}",
        author=f"@{facts.author_handle}",
        source_type=facts.source_type,
    )
    watermarked = watermark_id is not None and watermark.can_carry(image)
    pixels = watermark.embed(image, watermark_id, key=watermark_key) if watermarked else image
    encoded = encode_with_xmp(pixels, fmt, xmp, quality=quality)
    definition = manifest_definition(
        replace(facts, watermark_id=watermark_id if watermarked else None)
    )
    return Marked(signer.sign(encoded, mime, definition), watermarked, definition)
