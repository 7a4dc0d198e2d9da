"""Verify any image: the C2PA fixtures, Candor's own images, stripped copies, bad input."""

import io
import socket
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import signing, verify
from gallery.services import credentials_mark_consent_revoked, post_create
from tests import images

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
def _setup(db, settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    settings.VERIFY_RATE_LIMIT = 1000
    signing.reset()
    from django.core.cache import cache

    cache.clear()
    yield
    signing.reset()


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


def test_an_unrelated_photo_has_no_credentials(alice):
    candor_post(alice)
    result = check(images.fixture_bytes("skimage_coffee.png"), "coffee.png")
    assert result["verdict"] == verify.NO_CREDENTIALS
    assert "not real" in result["explanation"]


def test_a_post_whose_consent_was_revoked_says_so(alice):
    post = candor_post(alice)
    credentials_mark_consent_revoked(consent_id=11)
    result = check(post.display.read())
    assert result["consent_revoked"] is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "This isn't an image."),
        (images.png_declaring(50000, 50000), "more than the 50-megapixel limit"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_reason(db, data, message):
    response = Client().post(reverse("verify_api"), {"image": SimpleUploadedFile("x.png", data)})
    assert 400 <= response.status_code < 500
    assert message in response.json()["error"]


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
