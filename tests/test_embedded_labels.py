"""What an uploaded file says it is: IPTC digital source types in its XMP and C2PA actions."""

import io
import os
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from gallery.provenance import c2pa
from gallery.provenance.embedded import (
    IPTC_PREFIX,
    PNG_SIGNATURE,
    EmbeddedClaim,
    ai_claim,
    c2pa_source_types,
    embedded_claims,
    short_source_type,
    xmp_source_types,
)
from gallery.provenance.keys import identity_load_or_create

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "c2pa"
IPTC_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"


def packet(description: str, *, prefix: str = "Iptc4xmpExt", attributes: str = "") -> bytes:
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 6.0.0">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:{prefix}="{IPTC_NS}"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:CreatorTool="Some Tool 1.0"{attributes}>
   {description}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


# An attribute-form packet like Google's, with the full URL.
ATTRIBUTE_FORM = packet(
    "", attributes=f'\n    Iptc4xmpExt:DigitalSourceType="{IPTC_PREFIX}trainedAlgorithmicMedia"'
)
# An element-form packet like Adobe's generative fill, the value on its own lines.
ELEMENT_FORM = packet(
    "<Iptc4xmpExt:DigitalSourceType>\n    "
    f"{IPTC_PREFIX}compositeWithTrainedAlgorithmicMedia\n   </Iptc4xmpExt:DigitalSourceType>"
)
# rdf:resource form, with a bare name, as some generators write it.
RESOURCE_FORM = packet(
    f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{IPTC_PREFIX}algorithmicMedia"/>'
)
BARE_NAME = packet(
    "<Iptc4xmpExt:DigitalSourceType>trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>"
)
CAMERA = packet(
    f"<Iptc4xmpExt:DigitalSourceType>{IPTC_PREFIX}digitalCapture</Iptc4xmpExt:DigitalSourceType>"
)


def image() -> Image.Image:
    return Image.new("RGB", (16, 16), (120, 80, 40))


def jpeg(xmp: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    image().save(buffer, "JPEG", quality=80, **({"xmp": xmp} if xmp else {}))
    return buffer.getvalue()


def png(xmp: bytes, *, zip: bool) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=zip)
    buffer = io.BytesIO()
    image().save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def webp(xmp: bytes) -> bytes:
    buffer = io.BytesIO()
    image().save(buffer, "WEBP", xmp=xmp)
    return buffer.getvalue()


def test_it_finds_the_source_type_in_a_jpegs_xmp():
    assert xmp_source_types(jpeg(ATTRIBUTE_FORM)) == ["trainedAlgorithmicMedia"]


def test_it_reads_the_element_form_with_whitespace_around_the_value():
    assert xmp_source_types(jpeg(ELEMENT_FORM)) == ["compositeWithTrainedAlgorithmicMedia"]


def test_it_reads_the_rdf_resource_form():
    assert xmp_source_types(jpeg(RESOURCE_FORM)) == ["algorithmicMedia"]


def test_it_reads_a_bare_name():
    assert xmp_source_types(jpeg(BARE_NAME)) == ["trainedAlgorithmicMedia"]


@pytest.mark.parametrize("zip", [True, False])
def test_it_finds_the_source_type_in_a_pngs_itxt_compressed_or_not(zip):
    assert xmp_source_types(png(ELEMENT_FORM, zip=zip)) == ["compositeWithTrainedAlgorithmicMedia"]


def test_it_finds_the_source_type_in_a_pngs_ztxt():
    # Pillow writes XMP only as iTXt; older tools wrote zTXt, so build one by hand.
    body = b"XML:com.adobe.xmp\x00\x00" + zlib.compress(ATTRIBUTE_FORM)
    chunk = (
        len(body).to_bytes(4, "big")
        + b"zTXt"
        + body
        + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    )
    plain = png_without_text(png(CAMERA, zip=False))
    data = plain[:33] + chunk + plain[33:]  # after the signature and IHDR
    assert xmp_source_types(data) == ["trainedAlgorithmicMedia"]
    assert Image.open(io.BytesIO(data)).size == (16, 16)


def png_without_text(data: bytes) -> bytes:
    out, pos = data[:8], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk = data[pos : pos + 12 + length]
        if chunk[4:8] != b"iTXt":
            out += chunk
        pos += 12 + length
    return out


def test_it_finds_the_source_type_in_a_webps_xmp():
    assert xmp_source_types(webp(RESOURCE_FORM)) == ["algorithmicMedia"]


def test_it_reads_a_bare_rdf_without_a_packet_wrapper():
    xmp = (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        f'xmlns:Iptc4xmpExt="{IPTC_NS}"><rdf:Description>'
        f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{IPTC_PREFIX}trainedAlgorithmicMedia" />'
        "</rdf:Description></rdf:RDF>"
    )
    assert xmp_source_types(jpeg(xmp.encode())) == ["trainedAlgorithmicMedia"]


def test_it_reads_extended_xmp_split_across_jpeg_segments():
    extension = b"http://ns.adobe.com/xmp/extension/\x00"
    guid = b"0" * 32
    halves = [ELEMENT_FORM[:200], ELEMENT_FORM[200:]]
    segments = b""
    for offset, piece in reversed(list(zip((0, 200), halves, strict=True))):
        body = extension + guid + len(ELEMENT_FORM).to_bytes(4, "big")
        body += offset.to_bytes(4, "big") + piece
        segments += b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    plain = jpeg()
    data = plain[:2] + segments + plain[2:]
    assert xmp_source_types(data) == ["compositeWithTrainedAlgorithmicMedia"]


def test_it_accepts_any_prefix_bound_to_the_iptc_namespace():
    xmp = packet(
        f"<ext:DigitalSourceType>{IPTC_PREFIX}trainedAlgorithmicMedia</ext:DigitalSourceType>",
        prefix="ext",
    )
    assert xmp_source_types(jpeg(xmp)) == ["trainedAlgorithmicMedia"]


def test_it_ignores_the_same_name_in_another_namespace():
    xmp = packet(
        "<other:DigitalSourceType>trainedAlgorithmicMedia</other:DigitalSourceType>",
        attributes='\n    xmlns:other="http://example.com/not-iptc/"',
    )
    assert xmp_source_types(jpeg(xmp)) == []


def test_an_image_without_xmp_says_nothing():
    assert xmp_source_types(jpeg()) == []
    assert embedded_claims(jpeg(), None) == []


def test_a_camera_capture_is_found_but_is_not_ai():
    claims = embedded_claims(jpeg(CAMERA), None)
    assert claims == [EmbeddedClaim("digitalCapture", "XMP")]
    assert not claims[0].is_ai
    assert ai_claim(claims) is None


@pytest.mark.parametrize(
    "value",
    [
        f"{IPTC_PREFIX}trainedAlgorithmicMedia",
        "https://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        "digitalsourcetype/trainedAlgorithmicMedia",
        "  trainedAlgorithmicMedia \n",
        "TrainedAlgorithmicMedia",
        f"{IPTC_PREFIX}trainedAlgorithmicMedia/",
    ],
)
def test_it_shortens_every_spelling_of_a_source_type(value):
    assert short_source_type(value) == "trainedAlgorithmicMedia"


def test_it_keeps_an_unknown_source_type_as_written():
    assert short_source_type(" somethingNew ") == "somethingNew"
    assert short_source_type(f"{IPTC_PREFIX}somethingNew") == "somethingNew"


def test_a_damaged_file_says_nothing_and_does_not_raise():
    data = jpeg(ATTRIBUTE_FORM)
    # Cut inside the XMP segment: its length now points past the end.
    cut = data[: data.index(b"trainedAlgorithmic")]
    assert xmp_source_types(cut) == []
    assert xmp_source_types(png(ELEMENT_FORM, zip=True)[:60]) == []
    assert xmp_source_types(webp(RESOURCE_FORM)[:30]) == []


def test_random_bytes_say_nothing():
    for seed in range(20):
        noise = os.urandom(2000 + seed)
        for head in (b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"):
            assert xmp_source_types(head + noise) == []
    assert xmp_source_types(b"") == []


def test_a_hostile_packet_is_read_in_bounded_time():
    # Many openings and no closing: a backtracking pattern would take minutes on this.
    body = (
        b"<Iptc4xmpExt:DigitalSourceType " * 60_000 + b'Iptc4xmpExt:DigitalSourceType="x' * 60_000
    )
    hostile = webp(b"<x:xmpmeta>" + body + b"</x:xmpmeta>")
    many_prefixes = b"".join(b' xmlns:p%d="%s"' % (n, IPTC_NS.encode()) for n in range(20_000))
    prefixed = webp(b"<x:xmpmeta" + many_prefixes + b">" + body + b"</x:xmpmeta>")
    started = time.monotonic()
    assert isinstance(xmp_source_types(hostile), list)
    assert isinstance(xmp_source_types(prefixed), list)
    assert time.monotonic() - started < 1


def test_a_compressed_packet_cannot_inflate_without_limit():
    bomb = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(b"<" * 100_000_000, 1)
    data = PNG_SIGNATURE + len(bomb).to_bytes(4, "big") + b"iTXt" + bomb + b"\x00" * 4
    started = time.monotonic()
    assert xmp_source_types(data) == []
    assert time.monotonic() - started < 1


def test_a_25_mb_file_stuffed_with_packet_openings_is_read_quickly():
    stuffed = b"<x:xmpmeta <?xpacket begin <rdf:RDF " * 700_000
    big = webp(stuffed)
    assert len(big) > 25_000_000
    started = time.monotonic()
    assert xmp_source_types(big) == []
    assert xmp_source_types(jpeg() + os.urandom(25_000_000)) == []
    assert time.monotonic() - started < 2


def test_it_reads_the_source_type_of_a_signed_c2pa_file(tmp_path):
    identity = identity_load_or_create(tmp_path, instance_name="Vendor")
    definition = {
        "claim_generator_info": [{"name": "Vendor", "version": "1"}],
        "title": "x.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": IPTC_PREFIX + "trainedAlgorithmicMedia",
                        }
                    ]
                },
            }
        ],
    }
    signed = c2pa.Signer(identity).sign(jpeg(), "image/jpeg", definition)
    result = c2pa.read(signed, "image/jpeg")
    assert c2pa_source_types(result.manifest) == ["trainedAlgorithmicMedia"]
    claim = ai_claim(embedded_claims(signed, result.manifest))
    assert claim == EmbeddedClaim("trainedAlgorithmicMedia", "C2PA")
    assert claim.is_ai


def test_xmp_claims_come_before_c2pa_claims_without_repeats():
    manifest = {
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened"},
                        {"action": "c2pa.edited", "digitalSourceType": "digitalCapture"},
                    ],
                    "templates": [{"action": "c2pa.edited", "digitalSourceType": "digitalArt"}],
                },
            },
            {
                "label": "c2pa.actions__1",
                "data": {"actions": [{"digitalSourceType": f"{IPTC_PREFIX}digitalCapture"}]},
            },
            {"label": "c2pa.hash.data", "data": {"actions": [{"digitalSourceType": "print"}]}},
        ]
    }
    assert embedded_claims(jpeg(CAMERA), manifest) == [
        EmbeddedClaim("digitalCapture", "XMP"),
        EmbeddedClaim("digitalCapture", "C2PA"),
        EmbeddedClaim("digitalArt", "C2PA"),
    ]


def test_a_malformed_manifest_says_nothing():
    for manifest in (
        None,
        {},
        {"assertions": "x"},
        {"assertions": [None, {"label": "c2pa.actions"}]},
    ):
        assert c2pa_source_types(manifest) == []
    bad = {
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [1, {"digitalSourceType": 2}]}}
        ]
    }
    assert c2pa_source_types(bad) == []


def test_the_c2pa_rs_test_image_reads_without_error():
    data = (FIXTURES / "CA.jpg").read_bytes()
    result = c2pa.read(data, "image/jpeg")
    assert result.manifest is not None
    assert c2pa_source_types(result.manifest) == []
    assert ai_claim(embedded_claims(data, result.manifest)) is None


def test_the_c2pa_rs_generated_image_says_it_is_algorithmic_media():
    # c2pa-rs's make_test_images draws a gradient and labels it algorithmicMedia.
    data = (FIXTURES / "C.jpg").read_bytes()
    result = c2pa.read(data, "image/jpeg")
    assert ai_claim(embedded_claims(data, result.manifest)) == EmbeddedClaim(
        "algorithmicMedia", "C2PA"
    )
