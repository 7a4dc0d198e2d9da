"""IPTC XMP that says, in the file, that an image is AI-generated. No Django imports.

Written before the watermark and the signature: the C2PA hash then covers it, and any later edit
of the metadata breaks the signature.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from PIL import Image, PngImagePlugin

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def xmp_packet(*, description: str, creator_tool: str, author: str = "") -> bytes:
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
    Iptc4xmpExt:DigitalSourceType="{TRAINED_ALGORITHMIC_MEDIA}"
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
