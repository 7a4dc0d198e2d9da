"""Verify any image: the C2PA fixtures, Candor's own images, stripped copies, bad input."""

import html
import io
import socket
import threading

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import signing, verify
from gallery.services import consent_withdrawn, post_create
from imaging import decode
from tests import images
from tests.test_imaging import BAD_INPUTS, imaging_pattern

C2PA = images.C2PA

EXPECTED = {
    "C.jpg": verify.VALID_UNKNOWN_SIGNER,
    "CA.jpg": verify.VALID_UNKNOWN_SIGNER,
    "CACA.jpg": verify.VALID_UNKNOWN_SIGNER,
    "boxhash.jpg": verify.VALID_UNKNOWN_SIGNER,
    "update_manifest.jpg": verify.VALID_UNKNOWN_SIGNER,
    "XCA.jpg": verify.TAMPERED,
    "E-sig-CA.jpg": verify.TAMPERED,
    "adobe-20220124-E-clm-CAICAI.jpg": verify.TAMPERED,
    "no_alg.jpg": verify.UNREADABLE,
    "prerelease.jpg": verify.UNREADABLE,
    "cloud.jpg": verify.UNREADABLE,
    "no_manifest.jpg": verify.NO_CREDENTIALS,
}
TRUSTED_WITH_FIXTURE_ANCHORS = ("C.jpg", "CA.jpg", "boxhash.jpg")


@pytest.fixture(autouse=True)
def _setup(verifier):
    """Every test here verifies with a fresh instance identity and no rate limit in the way."""


def check(data: bytes, name="image.jpg", client=None) -> dict:
    client = client or Client()
    response = client.post(reverse("verify_api"), {"image": SimpleUploadedFile(name, data)})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(("name", "verdict"), EXPECTED.items())
def test_the_c2pa_fixtures_get_the_verdict_their_readme_expects(db, name, verdict):
    assert check((C2PA / name).read_bytes(), name)["verdict"] == verdict


@pytest.mark.parametrize("name", TRUSTED_WITH_FIXTURE_ANCHORS)
def test_with_the_fixture_anchors_configured_valid_ones_are_trusted(db, settings, name):
    settings.C2PA_TRUST_ANCHORS_FILE = str(C2PA / "c2pa-rs_test_trust_anchors.pem")
    assert check((C2PA / name).read_bytes(), name)["verdict"] == verify.VALID_TRUSTED_SIGNER


def test_a_tampered_image_names_what_changed(db):
    result = check((C2PA / "XCA.jpg").read_bytes())
    assert "the image data (its pixels or bytes) was changed" in result["explanation"]
    assert "untrusted" not in result["explanation"]  # an unknown signer is not a change
    assert "assertion.dataHash.mismatch" in result["details"]["failures"]


def test_the_url_inside_an_uploaded_file_is_never_fetched(db):
    """libpng-test_with_url.png names http://localhost:5000/...; nothing may connect there."""
    connections = []
    listeners = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            listeners.append(socket.create_server((host, 5000), family=family))
        except OSError as exc:
            if family == socket.AF_INET:
                pytest.fail(f"port 5000 is busy ({exc}); this test needs it to watch for requests")
    stop = threading.Event()

    def watch(listener):
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                connections.append(conn)
            except TimeoutError:
                continue

    watchers = [threading.Thread(target=watch, args=(ln,), daemon=True) for ln in listeners]
    for watcher in watchers:
        watcher.start()
    try:
        result = check((C2PA / "libpng-test_with_url.png").read_bytes(), "x.png")
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join()
        for listener in listeners:
            listener.close()
    assert connections == []
    assert result["verdict"] == verify.UNREADABLE


def candor_post(alice):
    return post_create(
        owner=alice, image=images.astronaut_variant(6), prompt="p", seed=1,
        generation_settings={}, model_name="Alice · model 1", base_model="builtin:tiny",
        consent_id=11,
    )  # fmt: skip


def test_a_candor_image_is_signed_by_this_instance(alice):
    post = candor_post(alice)
    result = check(post.display.read())
    assert result["verdict"] == verify.SIGNED_BY_THIS_INSTANCE
    assert result["consent_revoked"] is False
    assert result["details"]["author"] == "@alice"
    assert result["details"]["digital_source_type"].endswith("trainedAlgorithmicMedia")


def test_a_stripped_jpeg_is_recovered_by_its_watermark(alice):
    post = candor_post(alice)
    buffer = io.BytesIO()
    Image.open(post.display.open()).save(buffer, "JPEG", quality=80)
    result = check(buffer.getvalue())
    assert result["verdict"] == verify.RECOVERED_BY_WATERMARK
    assert result["share_url"].endswith("/")
    shared = Client().get(result["share_url"].split("testserver")[1])
    assert shared.status_code == 200


def test_a_half_size_copy_is_recovered_by_its_watermark_at_the_size_it_was_marked(alice):
    post = candor_post(alice)
    half = Image.open(post.display.open()).resize((256, 256), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    half.save(buffer, "PNG")
    assert check(buffer.getvalue(), "x.png")["verdict"] == verify.RECOVERED_BY_WATERMARK


def test_a_copy_without_a_watermark_is_recovered_by_similarity(alice):
    # An original smaller than the watermark needs carries none; stripped of its manifest, only
    # its perceptual hash can lead back to its credentials.
    small = images.astronaut_variant(6).resize((200, 200), Image.Resampling.LANCZOS)
    post = post_create(
        owner=alice, image=small, prompt="p", seed=1, generation_settings={},
        model_name="Alice · model 1", base_model="builtin:tiny", consent_id=11,
    )  # fmt: skip
    original = post.credentials.get(variant="original")
    assert not original.watermarked
    buffer = io.BytesIO()
    Image.open(post.image.open()).save(buffer, "PNG")  # pixels only: no manifest, no XMP
    result = check(buffer.getvalue(), "x.png")
    assert result["verdict"] == verify.RECOVERED_BY_SIMILARITY
    assert result["details"]["credential_id"] in {str(c.uuid) for c in post.credentials.all()}
    assert result["details"]["similarity_bits_apart"] <= verify.SIMILARITY_BITS


def test_the_shared_link_shows_the_verdict_that_was_reached(alice):
    post = candor_post(alice)
    intact = check(post.display.read())
    assert intact["verdict"] == verify.SIGNED_BY_THIS_INSTANCE
    page = html.unescape(Client().get(intact["share_url"].split("testserver")[1]).content.decode())
    assert verify.HEADLINES[verify.SIGNED_BY_THIS_INSTANCE] in page
    assert verify.HEADLINES[verify.RECOVERED_BY_WATERMARK] not in page

    buffer = io.BytesIO()
    Image.open(post.display.open()).save(buffer, "JPEG", quality=80)
    stripped = check(buffer.getvalue())
    page = html.unescape(
        Client().get(stripped["share_url"].split("testserver")[1]).content.decode()
    )
    assert verify.HEADLINES[verify.RECOVERED_BY_WATERMARK] in page


def test_a_shared_link_cannot_be_edited_to_claim_another_verdict(alice):
    post = candor_post(alice)
    path = check(post.display.read())["share_url"].split("testserver")[1]
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = token.replace(token[5], "A" if token[5] != "A" else "B", 1)
    assert Client().get(path.replace(token, forged)).status_code == 404


def test_an_unrelated_photo_has_no_credentials(alice):
    candor_post(alice)
    result = check(images.fixture_bytes("skimage_coffee.png"), "coffee.png")
    assert result["verdict"] == verify.NO_CREDENTIALS
    assert "not real" in result["explanation"]


def test_a_post_whose_consent_was_revoked_says_so(alice):
    post = candor_post(alice)
    consent_withdrawn(consent_id=11)
    result = check(post.display.read())
    assert result["consent_revoked"] is True


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_no_input_gets_a_5xx_from_the_api_or_the_page(db, name):
    data, refused, _ = BAD_INPUTS[name]
    api = Client().post(reverse("verify_api"), {"image": SimpleUploadedFile("x", data)})
    page = Client().post(reverse("verify_page"), {"image": SimpleUploadedFile("x", data)})
    if refused is None:
        assert (api.status_code, page.status_code) == (200, 200)
        assert api.json()["verdict"] == verify.NO_CREDENTIALS
        return
    assert (api.status_code, page.status_code) == (400, 400)
    message = api.json()["error"]
    assert imaging_pattern(refused).fullmatch(message), message
    assert html.escape(message) in page.content.decode()


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("BMP", "RGB"),  # c2pa can't read BMP at all: that means none, not unreadable
        ("GIF", "P"),
        ("TIFF", "RGB"),
        ("TIFF", "I;16"),
        ("WEBP", "RGB"),
        ("HEIF", "RGB"),
        ("AVIF", "RGB"),
    ],
)
def test_an_image_without_a_manifest_has_no_credentials_in_any_format(db, fmt, mode):
    data = images.encode(images.astronaut().convert(mode), fmt)
    result = check(data)
    assert result["verdict"] == verify.NO_CREDENTIALS


def test_a_candor_image_saved_as_bmp_is_still_recovered_by_its_watermark(alice):
    post = candor_post(alice)
    data = images.encode(Image.open(post.display.open()).convert("RGB"), "BMP")
    assert check(data)["verdict"] == verify.RECOVERED_BY_WATERMARK


def test_a_16_bit_grey_copy_is_recovered_not_clipped_to_white(alice):
    post = candor_post(alice)
    grey = np.asarray(Image.open(post.image.open()).convert("L"), dtype=np.uint16) * 257
    data = images.encode(Image.fromarray(grey), "PNG")  # Pillow opens it as I;16
    result = check(data)
    # The watermark lives in luma, so a grey copy still carries it (a clipped one would not).
    assert result["verdict"] == verify.RECOVERED_BY_WATERMARK


def test_a_large_copy_is_decoded_small_and_still_recovered(alice, monkeypatch):
    post = candor_post(alice)
    display = Image.open(post.display.open()).convert("RGB")
    big = display.resize((display.width * 6, display.height * 6), Image.Resampling.LANCZOS)
    decoded = []
    real_load = decode.load

    def spy(image, **kwargs):
        decoded.append(real_load(image, **kwargs).size)
        return image

    monkeypatch.setattr(decode, "load", spy)
    assert check(images.encode(big, quality=95))["verdict"] == verify.RECOVERED_BY_WATERMARK
    assert decoded == [(big.width // 2, big.height // 2)]  # libjpeg's 1/2 scale


def test_an_image_too_large_to_search_says_so_after_its_manifest_is_read(db, settings):
    settings.VERIFY_DECODE_MAX_PIXELS = 100_000
    signed = check((C2PA / "C.jpg").read_bytes())  # the manifest is read at any allowed size
    assert signed["verdict"] == verify.VALID_UNKNOWN_SIGNER
    data = images.encode(Image.new("RGB", (400, 300), "grey"), "PNG")
    response = Client().post(reverse("verify_api"), {"image": SimpleUploadedFile("x", data)})
    assert response.status_code == 400
    assert response.json()["error"] == verify.TOO_LARGE_TO_SEARCH.format(
        width=400, height=300, limit="0.1"
    )


def test_a_verify_over_the_pixel_budget_decodes_nothing(db, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(verify, "decode_srgb", fail)
    data = images.png_declaring(7000, 7000)  # 49 MP: within the upload limit, a few bytes long
    response = Client().post(reverse("verify_api"), {"image": SimpleUploadedFile("x", data)})
    assert response.status_code == 400
    assert "too large to search for a Candor watermark" in response.json()["error"]


@pytest.mark.parametrize("url", ["verify_api", "verify_page"])
def test_when_every_slot_is_busy_the_answer_is_503_with_retry_after(db, url):
    taken = 0
    while verify._slots.acquire(blocking=False):
        taken += 1
    try:
        data = (C2PA / "C.jpg").read_bytes()
        response = Client().post(reverse(url), {"image": SimpleUploadedFile("x.jpg", data)})
    finally:
        for _ in range(taken):
            verify._slots.release()
    assert taken == django_settings.VERIFY_CONCURRENCY
    assert response.status_code == 503
    assert response["Retry-After"] == str(verify.BUSY_RETRY_AFTER)
    assert html.escape(verify.BUSY) in response.content.decode()
    assert check(data)["verdict"] == verify.VALID_UNKNOWN_SIGNER  # the slots are free again


def test_bad_input_is_refused_without_taking_a_slot(db):
    taken = 0
    while verify._slots.acquire(blocking=False):
        taken += 1
    try:
        response = Client().post(reverse("verify_api"), {"image": SimpleUploadedFile("x", b"")})
    finally:
        for _ in range(taken):
            verify._slots.release()
    assert response.status_code == 400


def test_the_api_needs_no_session_or_csrf_token(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("verify_api"), {"image": SimpleUploadedFile("x.jpg", (C2PA / "C.jpg").read_bytes())}
    )
    assert response.status_code == 200


def test_the_page_shows_the_answer_in_words(db):
    response = Client().post(
        reverse("verify_page"),
        {"image": SimpleUploadedFile("x.jpg", (C2PA / "XCA.jpg").read_bytes())},
    )
    html = response.content.decode()
    assert "Tampered" in html and "the image data" in html


def test_verification_is_rate_limited_per_client(db, settings):
    settings.VERIFY_RATE_LIMIT = 2
    client = Client()
    data = (C2PA / "no_manifest.jpg").read_bytes()
    for _ in range(2):
        assert (
            client.post(
                reverse("verify_api"), {"image": SimpleUploadedFile("x.jpg", data)}
            ).status_code
            == 200
        )
    assert (
        client.post(reverse("verify_api"), {"image": SimpleUploadedFile("x.jpg", data)}).status_code
        == 429
    )


# --- verify tells the whole truth -------------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_from(chunks: list[tuple[bytes, bytes]]) -> bytes:
    import zlib

    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        out += len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")
    return out


def test_a_candor_file_with_its_xmp_removed_is_a_modified_copy_with_the_same_pixels(alice):
    post = candor_post(alice)
    chunks = png_chunks(post.image.read())
    assert any(kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp") for kind, body in chunks)
    stripped = png_from(
        [(k, b) for k, b in chunks if not (k == b"iTXt" and b.startswith(b"XML:com.adobe.xmp"))]
    )
    result = check(stripped, "x.png")
    assert result["verdict"] == verify.MODIFIED_COPY
    assert result["details"]["what_changed"].startswith("only its metadata changed")
    original = post.credentials.get(variant="original")
    assert result["details"]["credential_id"] == str(original.uuid)


def test_a_candor_file_with_changed_pixels_is_a_modified_copy_that_says_so(alice):
    import zlib

    post = candor_post(alice)
    chunks = png_chunks(post.image.read())
    raw = bytearray(zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT")))
    ihdr = dict(chunks)[b"IHDR"]
    width, height = int.from_bytes(ihdr[:4], "big"), int.from_bytes(ihdr[4:8], "big")
    row = 1 + 3 * width  # a filter-type byte, then RGB
    raw[row * (height // 2) + 1 + 3 * (width // 2)] ^= 0x40  # one pixel value, mid-image
    first = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    rest = [(k, b) for k, b in chunks if k != b"IDAT"]
    edited = png_from([*rest[:first], (b"IDAT", zlib.compress(bytes(raw))), *rest[first:]])
    result = check(edited, "x.png")
    assert result["verdict"] == verify.MODIFIED_COPY
    assert result["details"]["what_changed"] == "its pixels changed"


CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def test_a_stripped_candor_image_resigned_as_a_camera_photo_is_called_relabelled(alice, tmp_path):
    from gallery.provenance import c2pa, keys

    post = candor_post(alice)
    pixels_only = images.encode(Image.open(post.display.open()), quality=95)
    other = keys.identity_create(tmp_path / "elsewhere", instance_name="Elsewhere")
    claim = {
        "claim_generator_info": [{"name": "Some Camera App", "version": "1.0"}],
        "title": "holiday.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": CAPTURE,
                        }
                    ]
                },
            }
        ],
    }
    relabelled = c2pa.Signer(other).sign(pixels_only, "image/jpeg", claim)
    result = check(relabelled)
    assert result["verdict"] == verify.RELABELLED
    assert "digitalCapture" in result["explanation"]
    assert result["details"]["credential_id"] in {str(c.uuid) for c in post.credentials.all()}


def test_a_signature_whose_certificate_expired_is_not_called_tampered(alice, settings):
    import datetime as dt
    import time

    from gallery.provenance import keys

    short = keys.identity_create(
        settings.C2PA_KEYS_DIR, instance_name="Candor", leaf_lifetime=dt.timedelta(seconds=2)
    )
    signing.reset()
    post = candor_post(alice)
    time.sleep(max(0.0, (short.not_after - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    result = check(post.display.read())
    assert result["verdict"] == verify.EXPIRED_SIGNER
    assert "signingCredential.expired" in result["details"]["failures"]
