"""IPTC XMP that says, in the file, what made an image (Candor's own: AI). No Django imports.

Written before the watermark and the signature: the C2PA hash then covers it, and any later edit
of the metadata breaks the signature.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from PIL import Image, PngImagePlugin

IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPES + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED = IPTC_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"
COMPOSITE_SYNTHETIC = IPTC_SOURCE_TYPES + "compositeSynthetic"
DIGITAL_CAPTURE = IPTC_SOURCE_TYPES + "digitalCapture"

# What a creator may declare an image made elsewhere to be, in their words, and the IPTC digital
# source type each maps to (https://cv.iptc.org/newscodes/digitalsourcetype/). The key is what
# forms and the API send; the order is the form's.
DECLARATIONS = {
    "ai": ("Made by an AI model from a prompt", TRAINED_ALGORITHMIC_MEDIA),
    "ai_edited_photo": ("A photo edited with AI", COMPOSITE_WITH_TRAINED),
    "ai_composite": ("A composite with AI-made parts", COMPOSITE_SYNTHETIC),
    "photo": ("A camera photo, not made or edited with AI", DIGITAL_CAPTURE),
}
# Source types that say AI made all or part of an image.
AI_MADE = frozenset({TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED, COMPOSITE_SYNTHETIC})


def in_a_sentence(words: str) -> str:
    """Declaration words to go mid-sentence: "Made by an AI model" -> "made by an AI model"."""
    return words[:1].lower() + words[1:]


def declaration_for(source_type: str) -> str:
    """The declaration key whose source type this is ("" when none is)."""
    return next((key for key, (_, url) in DECLARATIONS.items() if url == source_type), "")


def xmp_packet(
    *,
    description: str,
    creator_tool: str,
    author: str = "",
    source_type: str = TRAINED_ALGORITHMIC_MEDIA,
) -> bytes:
    creator = (
        f"<dc:creator><rdf:Seq><rdf:li>{escape(author)}</rdf:li></rdf:Seq></dc:creator>"
        if author
        else ""
    )
    body = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    Iptc4xmpExt:DigitalSourceType="{escape(source_type)}"
    xmp:CreatorTool="{escape(creator_tool, {'"': "&quot;"})}">
   <dc:description><rdf:Alt>
    <rdf:li xml:lang="x-default">{escape(description)}</rdf:li>
   </rdf:Alt></dc:description>
   {creator}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return body.encode("utf-8")


def encode_with_xmp(image: Image.Image, fmt: str, xmp: bytes, *, quality: int = 92) -> bytes:
    """Encode `image` as JPEG, PNG or WebP with the XMP packet embedded."""
    buffer = io.BytesIO()
    rgb = image.convert("RGB")
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
        rgb.save(buffer, "PNG", pnginfo=info, optimize=True)
    elif fmt in ("JPEG", "WEBP"):
        rgb.save(buffer, fmt, quality=quality, xmp=xmp)
    else:
        raise ValueError(f"Unsupported format {fmt!r}.")
    return buffer.getvalue()
