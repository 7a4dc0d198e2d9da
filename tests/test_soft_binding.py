"""The C2PA Soft Binding Resolution API: platforms find a Candor credential by watermark,
fingerprint or content, and learn no more than the public post shows."""

import base64
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import soft_binding
from gallery.services import consent_withdrawn, post_create, post_publish
from tests import images

WATERMARK = soft_binding.WATERMARK_ALG
PHASH = soft_binding.PHASH_ALG
SECRET_PROMPT = "a secret prompt only alice knows"


@pytest.fixture(autouse=True)
def _setup(verifier):
    """Every test here verifies with a fresh instance identity and no rate limit in the way."""


def make_post(alice, *, public: bool, seed: int = 1):
    post = post_create(
        owner=alice, image=images.astronaut_variant(seed), prompt=SECRET_PROMPT, seed=seed,
        generation_settings={}, model_name="Alice · model 1", base_model="builtin:tiny",
        consent_id=11,
    )  # fmt: skip
    return post_publish(post=post) if public else post


def stripped(post) -> bytes:
    """The display file re-encoded: pixels only, no manifest or XMP."""
    buffer = io.BytesIO()
    Image.open(post.display.open()).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def by_binding(client, alg, value, **extra):
    return client.get(reverse("sb_matches_by_binding"), {"alg": alg, "value": value, **extra})


def manifest_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [match["manifestId"] for match in response.json()["matches"]]


def test_it_lists_the_algorithms_it_resolves(anonymous):
    response = anonymous.get(reverse("sb_supported_algorithms"))
    assert response.json() == {
        "watermarks": [{"alg": "org.candor.watermark.1"}],
        "fingerprints": [{"alg": "org.candor.phash.1"}],
    }
    assert anonymous.head(reverse("sb_supported_algorithms")).status_code == 200


def test_a_public_credential_is_found_by_its_watermark(alice, anonymous):
    post = make_post(alice, public=True)
    display = post.credentials.get(variant="display")
    response = by_binding(anonymous, WATERMARK, str(display.pk))
    assert response.json() == {
        "matches": [{"manifestId": str(display.uuid), "similarityScore": 100}]
    }
    # The specification's form: the value in base64.
    encoded = base64.b64encode(display.pk.to_bytes(3, "big")).decode()
    assert manifest_ids(by_binding(anonymous, WATERMARK, encoded)) == [str(display.uuid)]


def test_a_public_credential_is_found_by_a_near_fingerprint_get_and_post(alice, anonymous):
    post = make_post(alice, public=True)
    display = post.credentials.get(variant="display")
    near = f"{int(display.phash, 16) ^ 0b101:016x}"  # 2 bits apart
    assert str(display.uuid) in manifest_ids(by_binding(anonymous, PHASH, near))
    response = anonymous.post(
        reverse("sb_matches_by_binding"),
        {"alg": PHASH, "value": base64.b64encode(bytes.fromhex(near)).decode()},
        content_type="application/json",
    )
    match = next(m for m in response.json()["matches"] if m["manifestId"] == str(display.uuid))
    assert match["similarityScore"] == 97  # 2 of 64 bits apart
    assert manifest_ids(by_binding(anonymous, PHASH, near, maxResults=1)) == [
        manifest_ids(by_binding(anonymous, PHASH, near))[0]
    ]


def test_the_manifest_comes_with_the_consent_status_and_the_public_post(alice, anonymous):
    post = make_post(alice, public=True)
    display = post.credentials.get(variant="display")
    url = reverse("sb_manifest", args=[display.uuid])
    body = anonymous.get(url).json()
    assert body["manifest"] == display.manifest
    assert body["manifest"]  # the stored manifest, not an empty shell
    assert body["consentRevoked"] is False
    assert body["postUrl"].endswith(f"/p/{post.pk}/")
    assert SECRET_PROMPT not in anonymous.get(url).content.decode()  # not opted in
    assert anonymous.head(url).status_code == 200

    consent_withdrawn(consent_id=11)  # the post is taken down: no longer public
    assert anonymous.get(url).status_code == 404
    # Whoever holds a copy still learns that the consent was withdrawn.
    matches = anonymous.post(
        reverse("sb_matches_by_content"), stripped(post), content_type="image/jpeg"
    ).json()["matches"]
    (signed,) = [m["manifestId"] for m in matches if m["manifestId"].startswith(str(display.uuid))]
    body = anonymous.get(reverse("sb_manifest", args=[signed])).json()
    assert body["consentRevoked"] is True and body["postUrl"] == ""


def test_a_drafts_credential_is_not_found_by_binding_nor_its_manifest_by_id(alice, anonymous):
    post = make_post(alice, public=False)
    display = post.credentials.get(variant="display")
    assert manifest_ids(by_binding(anonymous, WATERMARK, str(display.pk))) == []
    assert manifest_ids(by_binding(anonymous, PHASH, display.phash)) == []
    assert anonymous.get(reverse("sb_manifest", args=[display.uuid])).status_code == 404


def test_whoever_has_a_drafts_image_finds_its_manifest_by_content(alice):
    post = make_post(alice, public=False)
    display = post.credentials.get(variant="display")
    client = Client(enforce_csrf_checks=True)  # no session, no token
    response = client.post(
        reverse("sb_matches_by_content"), stripped(post), content_type="image/jpeg"
    )
    matches = response.json()["matches"]
    assert matches[0]["similarityScore"] == 100  # its watermark
    (signed,) = [m["manifestId"] for m in matches if m["manifestId"].startswith(str(display.uuid))]
    assert signed != str(display.uuid)  # a proof of having the image, not the bare id
    body = client.get(reverse("sb_manifest", args=[signed])).json()
    assert body["manifest"] == display.manifest
    assert body["postUrl"] == ""  # the draft has no public page
    assert client.get(reverse("sb_manifest", args=[signed[:-2] + "xx"])).status_code == 404


def test_a_content_proof_expires(alice, anonymous, monkeypatch):
    post = make_post(alice, public=False)
    response = anonymous.post(
        reverse("sb_matches_by_content"),
        {"image": SimpleUploadedFile("x.jpg", stripped(post))},
    )
    signed = response.json()["matches"][0]["manifestId"]
    monkeypatch.setattr(soft_binding, "CONTENT_PROOF_MAX_AGE", -1)
    assert anonymous.get(reverse("sb_manifest", args=[signed])).status_code == 404


def test_by_content_a_public_image_gets_its_plain_id_and_one_alg_can_be_asked(alice, anonymous):
    post = make_post(alice, public=True)
    display = post.credentials.get(variant="display")
    url = reverse("sb_matches_by_content") + f"?alg={WATERMARK}"
    response = anonymous.post(url, stripped(post), content_type="image/jpeg")
    assert response.json() == {
        "matches": [{"manifestId": str(display.uuid), "similarityScore": 100}]
    }


def test_an_image_candor_never_made_matches_nothing(anonymous):
    data = (images.C2PA / "no_manifest.jpg").read_bytes()
    response = anonymous.post(reverse("sb_matches_by_content"), data, content_type="image/jpeg")
    assert response.json() == {"matches": []}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"alg": "com.example.other.1", "value": "AAAA"}, 400),
        ({"alg": PHASH, "value": "not a hash"}, 400),
        ({"alg": WATERMARK, "value": "!!"}, 400),
        ({"alg": PHASH}, 400),
        ({"alg": PHASH, "value": "0123456789abcdef", "maxResults": "0"}, 400),
        ({"alg": PHASH, "value": "0123456789abcdef", "maxResults": "²"}, 400),
        ({"alg": WATERMARK, "value": "²"}, 400),
        ({"alg": WATERMARK, "value": "9" * 5000}, 400),
    ],
)
def test_it_refuses_bad_queries(anonymous, query, status):
    response = anonymous.get(reverse("sb_matches_by_binding"), query)
    assert response.status_code == status
    assert response.json()["error"]


def test_it_refuses_a_bad_manifest_id_and_a_bad_post_body(anonymous):
    assert anonymous.get(reverse("sb_manifest", args=["nope"])).status_code == 400
    response = anonymous.post(
        reverse("sb_matches_by_binding"), "[1]", content_type="application/json"
    )
    assert response.status_code == 400


def test_by_content_refuses_what_verify_refuses(anonymous, settings):
    url = reverse("sb_matches_by_content")
    assert anonymous.post(url, b"hello", content_type="text/plain").status_code == 415
    assert anonymous.post(url, b"hello", content_type="image/png").status_code == 415
    tiny = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiny, "PNG")
    response = anonymous.post(url, tiny.getvalue(), content_type="image/png")
    assert response.status_code == 400
    assert "at least 32 pixels" in response.json()["error"]
    settings.PHOTO_MAX_BYTES = 10
    response = anonymous.post(url, b"x" * 11, content_type="image/png")
    assert response.status_code == 413


def test_by_content_shares_verifys_rate_limit(anonymous, settings):
    settings.VERIFY_RATE_LIMIT = 1
    data = (images.C2PA / "no_manifest.jpg").read_bytes()
    anonymous.post(reverse("verify_api"), {"image": SimpleUploadedFile("x.jpg", data)})
    response = anonymous.post(reverse("sb_matches_by_content"), data, content_type="image/jpeg")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_lookups_by_binding_are_rate_limited(anonymous, settings):
    settings.VERIFY_RATE_LIMIT = 2
    for _ in range(2):
        assert by_binding(anonymous, PHASH, "0123456789abcdef").status_code == 200
    response = by_binding(anonymous, PHASH, "0123456789abcdef")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
