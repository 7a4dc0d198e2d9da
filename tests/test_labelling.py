"""Label an image made elsewhere: declarations, kept credentials, refusals, the page."""

import html
import io
import json
import subprocess

import c2pa as c2pa_lib
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import edits, labelling, signing, verify
from gallery.models import Credential, Post
from gallery.provenance import c2pa, keys
from gallery.provenance.embedded import c2pa_store_bytes
from gallery.provenance.xmp import (
    COMPOSITE_WITH_TRAINED,
    DIGITAL_CAPTURE,
    TRAINED_ALGORITHMIC_MEDIA,
    xmp_packet,
)
from tests import images
from tests.conftest import stored_files

C2PA = images.C2PA


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


@pytest.fixture
def vendor(settings, tmp_path):
    """Another AI company's signing identity, signing the way OpenAI's and Adobe Firefly's
    images are signed (c2pa.created, trained algorithmic media, the model as software agent),
    and trusted here through the operator's extra trust anchors, with the C2PA test roots."""
    identity = keys.identity_load_or_create(tmp_path / "vendor", instance_name="Imagen Corp")
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(identity.root_pem + (C2PA / "c2pa-rs_test_trust_anchors.pem").read_bytes())
    settings.C2PA_TRUST_ANCHORS_FILE = str(anchors)
    return identity


def vendor_signed(identity, *, source_type=TRAINED_ALGORITHMIC_MEDIA, exif: bytes = b"") -> bytes:
    pixels = images.astronaut_variant(5).resize((512, 512))
    buffer = io.BytesIO()
    pixels.save(buffer, "JPEG", quality=90, exif=exif)
    manifest = {
        "claim_generator_info": [{"name": "ChatGPT", "version": "1.0"}],
        "title": "image.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": source_type,
                            "softwareAgent": {"name": "GPT-4o"},
                        },
                        {"action": "c2pa.converted", "softwareAgent": {"name": "OpenAI API"}},
                    ]
                },
            }
        ],
    }
    return c2pa.Signer(identity).sign(buffer.getvalue(), "image/jpeg", manifest)


def plain_jpeg(*, xmp: bytes = b"", exif: bytes = b"", size=(512, 512)) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 90, "exif": exif}
    if xmp:
        options["xmp"] = xmp
    images.astronaut_variant(7).resize(size).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def gps_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    return exif.tobytes()


def label(client, data: bytes, *, declaration="ai", tool="", caption="", name="image.jpg"):
    upload = SimpleUploadedFile(name, data, content_type="image/jpeg")
    return client.post(
        reverse("label_upload"),
        {"image": upload, "declaration": declaration, "tool": tool, "caption": caption},
    )


def signed_original(post: Post) -> bytes:
    post.refresh_from_db()
    with post.image.open("rb") as handle:
        return handle.read()


def read(data: bytes) -> c2pa.ReadResult:
    return c2pa.read(data, trust_anchors_pem=signing.trust_anchors_pem())


def actions(manifest: dict) -> list[dict]:
    return (c2pa.assertion(manifest, "c2pa.actions") or {})["actions"]


def store(data: bytes) -> dict:
    """The whole manifest store, every manifest in the chain."""
    with c2pa_lib.Reader("image/png", io.BytesIO(data)) as reader:
        return json.loads(reader.json())


def exif_tags(data: bytes, tmp_path, ext="png") -> dict:
    path = tmp_path / f"check.{ext}"
    path.write_bytes(data)
    out = subprocess.run(
        ["exiftool", "-json", "-G1", "-a", "-u", str(path)], capture_output=True, text=True
    )
    return json.loads(out.stdout)[0]


def test_a_vendor_signed_ai_image_keeps_its_manifest_as_a_validated_ingredient(
    alice, alice_client, vendor
):
    response = label(alice_client, vendor_signed(vendor), declaration="ai", tool="ChatGPT")

    post = Post.objects.get(owner=alice)
    assert response.status_code == 302
    assert response["Location"] == reverse("post_detail", args=[post.pk])
    assert post.origin == Post.Origin.LABELLED
    assert post.source_type == TRAINED_ALGORITHMIC_MEDIA
    assert post.upload_credentials["state"] == "Trusted"
    assert "Imagen Corp" in post.upload_credentials["signer"]
    data = signed_original(post)
    result = read(data)
    assert result.state == "Trusted"
    first = actions(result.manifest)[0]
    assert first["action"] == "c2pa.opened"
    assert first["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert "Declared by @alice" in first["parameters"]["description"]
    (ingredient,) = result.manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["title"] == "image.jpg"
    # The vendor's own manifest travels in the chain, validated as trusted when it was added.
    vendor_manifest = store(data)["manifests"][ingredient["active_manifest"]]
    assert vendor_manifest["claim_generator_info"][0]["name"] == "ChatGPT"
    ingredient_results = ingredient["validation_results"]["activeManifest"]
    assert not ingredient_results["failure"]
    assert "signingCredential.trusted" in {s["code"] for s in ingredient_results["success"]}


def test_verify_explains_who_declared_what(alice, alice_client, vendor):
    label(alice_client, vendor_signed(vendor), declaration="ai", tool="ChatGPT")
    post = Post.objects.get(owner=alice)

    verdict = verify.verify_bytes(signed_original(post))

    assert verdict.verdict == verify.SIGNED_BY_THIS_INSTANCE
    assert verdict.headline == verify.DECLARED_HEADLINES[verify.SIGNED_BY_THIS_INSTANCE]
    assert "@alice declared it “made by an AI model from a prompt”, made with ChatGPT" in (
        verdict.explanation
    )
    assert "did not make the image" in verdict.explanation
    assert "valid credentials from a trusted signer" in verdict.explanation
    page = Client().post(
        reverse("verify_page"),
        {"image": SimpleUploadedFile("x.png", signed_original(post), "image/png")},
    )
    assert "Labelled by its creator" in page.content.decode()


def test_an_unsigned_upload_declared_ai_gets_a_created_manifest_and_loses_its_gps(
    alice, alice_client, tmp_path
):
    upload = plain_jpeg(exif=gps_exif())
    assert "GPS" in json.dumps(exif_tags(upload, tmp_path, "jpg"))

    label(alice_client, upload, declaration="ai", tool="Midjourney v7", caption="Dunes")

    post = Post.objects.get(owner=alice)
    data = signed_original(post)
    result = read(data)
    assert result.state == "Trusted"
    first = actions(result.manifest)[0]
    assert first["action"] == "c2pa.created"
    assert first["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert first["softwareAgent"]["name"] == "Midjourney v7"
    assert not result.manifest.get("ingredients")
    assert post.upload_credentials == {}
    assert post.caption == "Dunes"
    tags = exif_tags(data, tmp_path)
    assert [
        v for k, v in tags.items() if k.startswith("XMP") and k.endswith("DigitalSourceType")
    ] == [TRAINED_ALGORITHMIC_MEDIA]
    assert not [k for k in tags if "GPS" in k or k.startswith("IFD0")]


@pytest.mark.parametrize(
    ("declaration", "source_type"),
    [("ai_edited_photo", COMPOSITE_WITH_TRAINED), ("photo", DIGITAL_CAPTURE)],
)
def test_each_declaration_is_written_as_its_iptc_source_type(
    alice, alice_client, tmp_path, declaration, source_type
):
    label(alice_client, plain_jpeg(), declaration=declaration)

    post = Post.objects.get(owner=alice)
    tags = exif_tags(signed_original(post), tmp_path)
    assert [
        v for k, v in tags.items() if k.startswith("XMP") and k.endswith("DigitalSourceType")
    ] == [source_type]
    display = post.display.open("rb").read()
    assert actions(read(display).manifest)[0]["digitalSourceType"] == source_type


def test_a_declared_photo_is_not_badged_as_ai(alice, alice_client):
    label(alice_client, plain_jpeg(), declaration="photo")
    post = Post.objects.get(owner=alice)

    page = alice_client.get(reverse("post_detail", args=[post.pk])).content.decode()

    assert post.badge == ""
    assert 'class="ai-badge"' not in page
    assert "A camera photo, not made or edited with AI" in page


def test_it_refuses_to_relabel_a_vendor_signed_ai_image_as_a_photo(
    alice, alice_client, vendor, private_media
):
    response = label(alice_client, vendor_signed(vendor), declaration="photo")

    assert response.status_code == 400
    assert "already labelled as made by AI" in response.content.decode()
    assert "in its Content Credentials" in response.content.decode()
    assert not Post.objects.exists()
    assert not Credential.objects.exists()
    assert stored_files(private_media) == []


def test_it_refuses_to_relabel_an_xmp_labelled_ai_image_and_names_the_declaration_that_fits(
    alice, alice_client, private_media
):
    firefly_like = xmp_packet(
        description="Generated with Firefly", creator_tool="Adobe Firefly",
        source_type=COMPOSITE_WITH_TRAINED,
    )  # fmt: skip
    upload = plain_jpeg(xmp=firefly_like)

    as_photo = label(alice_client, upload, declaration="photo")
    as_other_ai = label(alice_client, upload, declaration="ai")

    assert as_photo.status_code == as_other_ai.status_code == 400
    assert "already labelled as made by AI" in as_photo.content.decode()
    assert "Choose “A photo edited with AI”" in as_other_ai.content.decode().replace(
        "&ldquo;", "“"
    ).replace("&rdquo;", "”")
    assert not Post.objects.exists()
    assert stored_files(private_media) == []
    assert label(alice_client, upload, declaration="ai_edited_photo").status_code == 302


def test_a_broken_manifest_is_kept_but_recorded_as_invalid(alice, alice_client, vendor):
    # XCA.jpg: its pixels changed after signing (assertion.dataHash.mismatch).
    label(alice_client, (C2PA / "XCA.jpg").read_bytes(), declaration="ai_composite")

    post = Post.objects.get(owner=alice)
    assert post.upload_credentials["state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in post.upload_credentials["failures"]
    result = read(signed_original(post))
    assert result.state == "Trusted"  # Candor's own signature over the new file
    (ingredient,) = result.manifest["ingredients"]
    failures = {f["code"] for f in ingredient["validation_results"]["activeManifest"]["failure"]}
    assert "assertion.dataHash.mismatch" in failures
    verdict = verify.verify_bytes(signed_original(post))
    assert "did not validate" in verdict.explanation
    assert "valid credentials" not in verdict.explanation
    page = alice_client.get(reverse("post_detail", args=[post.pk])).content.decode()
    assert "did not validate" in page


def test_unreadable_credentials_are_recorded_and_not_kept(alice, alice_client):
    label(alice_client, (C2PA / "prerelease.jpg").read_bytes(), declaration="ai")

    post = Post.objects.get(owner=alice)
    assert post.upload_credentials["state"] == "Unreadable"
    assert "pre-release" in post.upload_credentials["error"]
    result = read(signed_original(post))
    assert actions(result.manifest)[0]["action"] == "c2pa.created"
    assert not result.manifest.get("ingredients")


def test_a_large_upload_is_kept_at_the_store_size_and_says_it_was_resized(
    alice, alice_client, settings
):
    settings.PHOTO_STORE_MAX_SIDE = 400

    label(alice_client, plain_jpeg(size=(800, 600)), declaration="ai")

    post = Post.objects.get(owner=alice)
    assert (post.width, post.height) == (400, 300)
    steps = [a["action"] for a in actions(read(signed_original(post)).manifest)]
    assert steps == ["c2pa.created", "c2pa.resized", "c2pa.watermarked"]


@pytest.mark.parametrize(
    ("fields", "data", "message"),
    [
        ({"declaration": "art"}, None, labelling.CHOOSE_DECLARATION),
        ({"tool": "x" * 81}, None, labelling.TOOL_TOO_LONG),
        ({}, b"", "The file is empty."),
        ({}, b"<html><body>hi</body></html>", "not an image"),
        ({}, "small", "pixels on the shorter side"),
        ({"caption": "c" * 2001}, None, "The caption is too long"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(
    alice, alice_client, private_media, fields, data, message
):
    if data is None:
        data = plain_jpeg()
    elif data == "small":
        data = plain_jpeg(size=(100, 100))
    values = {"declaration": "ai", **fields}

    response = label(alice_client, data, **values)

    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Post.objects.exists()
    assert not Credential.objects.exists()
    assert stored_files(private_media) == []


def test_the_label_page_needs_a_login_and_csrf(alice, anonymous):
    page = anonymous.get(reverse("label_upload"))
    assert page.status_code == 302 and "/login" in page["Location"]

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(reverse("label_upload")).status_code == 200
    assert label(client, plain_jpeg()).status_code == 403
    assert not Post.objects.exists()


def test_the_label_page_offers_every_declaration_in_plain_words(alice_client):
    page = alice_client.get(reverse("label_upload")).content.decode()

    for words in (
        "Made by an AI model from a prompt",
        "A photo edited with AI",
        "A composite with AI-made parts",
        "A camera photo, not made or edited with AI",
    ):
        assert words in page


def test_an_image_made_elsewhere_is_labelled_through_the_api(alice, vendor):
    from tests.test_api import API, assert_problem, call, token_for

    def upload(declaration, data=None):
        data = data or vendor_signed(vendor)
        image = SimpleUploadedFile("gpt.jpg", data, content_type="image/jpeg")
        return {"image": image, "declaration": declaration, "tool": "ChatGPT"}

    path = f"{API}/posts/labelled"
    assert_problem(call("POST", path, files=upload("ai")), 401, "unauthenticated")
    assert_problem(call("POST", path, token_for(alice, ["read"]), files=upload("ai")), 403,
                   "insufficient_scope")  # fmt: skip
    refused = call("POST", path, token_for(alice), files=upload("photo"))
    assert "already labelled as made by AI" in assert_problem(refused, 400, "refused")["detail"]
    assert not Post.objects.exists()

    response = call("POST", path, token_for(alice), files=upload("ai"))

    assert response.status_code == 201, response.content
    made = response.json()
    assert made["origin"] == "labelled"
    assert made["source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert made["declared"] == {
        "by": "@alice", "declaration": "ai", "words": "Made by an AI model from a prompt",
        "tool": "ChatGPT",
    }  # fmt: skip
    assert made["upload_credentials"]["state"] == "Trusted"
    assert made["credential"]["actions"][0] == "c2pa.opened"


def test_a_copy_of_ones_own_post_is_sent_to_edit_it_instead(alice, alice_client, private_media):
    from tests.test_gallery import make_post

    post = make_post(alice, consent_scope={"publish": "private"})
    files_before = stored_files(private_media)

    signed = label(alice_client, signed_original(post), name="mine.png")
    stripped = label(alice_client, images.encode(Image.open(post.display.open("rb")), quality=85))

    for response in (signed, stripped):
        assert response.status_code == 400
        assert labelling.YOURS_ALREADY in html.unescape(response.content.decode())
    assert Post.objects.count() == 1
    assert stored_files(private_media) == files_before


def test_a_stripped_copy_of_someone_elses_candor_image_cant_be_labelled_again(alice, bob_client):
    from tests.test_gallery import make_post

    post = make_post(alice)
    copy = images.encode(Image.open(post.display.open("rb")), quality=80)

    response = label(bob_client, copy, declaration="photo")

    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    assert "a copy of an image @alice made or labelled with" in text
    assert Post.objects.count() == 1


def test_ai_anywhere_in_the_files_history_counts(alice, alice_client, vendor, tmp_path):
    # An AI image resized and re-signed by an editor: its last step only says "resized".
    editor = keys.identity_load_or_create(tmp_path / "editor", instance_name="Photo Editor")
    ai_image = vendor_signed(vendor)
    with Image.open(io.BytesIO(ai_image)) as opened:
        smaller = images.encode(opened.convert("RGB").resize((400, 400)))
    manifest = {
        "claim_generator_info": [{"name": "Photo Editor", "version": "2"}],
        "title": "export.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["original"]}},
                        {"action": "c2pa.resized"},
                    ]
                },
            }
        ],
    }
    parent = c2pa.Parent(ai_image, "image/jpeg", "gpt.jpg")
    exported = c2pa.Signer(editor).sign(smaller, "image/jpeg", manifest, parent=parent)
    assert c2pa.read(exported).manifest["ingredients"]

    response = label(alice_client, exported, declaration="photo")

    assert response.status_code == 400
    assert "already labelled as made by AI" in html.unescape(response.content.decode())
    assert not Post.objects.exists()


def test_a_declared_photo_gets_no_ai_label_edit(alice, alice_client):
    label(alice_client, plain_jpeg(), declaration="photo")
    photo = Post.objects.get()

    page = alice_client.get(reverse("post_detail", args=[photo.pk])).content.decode()
    refused = alice_client.post(
        reverse("post_edit", args=[photo.pk]), {"op": "label", "style": "text"}, follow=True
    )

    assert "Add a visible label" not in page
    assert edits.NO_AI_LABEL_ON_A_PHOTO in html.unescape(refused.content.decode())
    assert Post.objects.count() == 1


def test_verify_never_says_a_labelled_photo_was_made_with_ai():
    declared = {"by": "@alice", "words": "A camera photo, not made or edited with AI", "tool": ""}
    for verdict in (verify.RELABELLED, verify.MODIFIED_COPY, verify.RECOVERED_BY_WATERMARK):
        text = verify.Verdict(verdict, details={"declared": declared}, why="edited").explanation
        assert "made with AI" not in text and "made by AI" not in text
        assert "@alice declared it" in text


def test_an_oversized_credential_store_is_recorded_not_carried_into_every_copy(
    alice, alice_client, vendor, monkeypatch
):
    monkeypatch.setattr(labelling, "KEEP_STORE_MAX_BYTES", 1000)
    upload = vendor_signed(vendor)
    assert c2pa_store_bytes(upload) > 1000

    label(alice_client, upload, declaration="ai")

    post = Post.objects.get()
    assert post.upload_credentials["state"] == "Trusted"
    assert "more than this site carries" in post.upload_credentials["not_kept"]
    result = read(signed_original(post))
    assert not result.manifest.get("ingredients")
    assert actions(result.manifest)[0]["action"] == "c2pa.created"
    assert "were not kept in the chain" in verify.verify_bytes(signed_original(post)).explanation


def test_the_store_size_is_read_from_each_format():
    assert c2pa_store_bytes((C2PA / "CA.jpg").read_bytes()) > 1000
    assert c2pa_store_bytes((C2PA / "no_manifest.jpg").read_bytes()) == 0
    assert c2pa_store_bytes(b"\xff\xd8\xff\xeb\x00") == 0  # truncated: no crash


def test_the_gallery_card_of_an_uncaptioned_labelled_image_says_what_it_is(alice, alice_client):
    label(alice_client, plain_jpeg(), declaration="ai_edited_photo")

    page = alice_client.get(reverse("gallery")).content.decode()

    assert "A photo edited with AI" in page
    assert '<span class="ai-badge">AI-modified</span>' in page
