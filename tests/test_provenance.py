"""Signed Content Credentials, XMP and the watermark on every image Candor serves."""

import io
import json
import os
import stat
import subprocess

import pytest
from cryptography import x509
from django.core.management import call_command
from PIL import Image

from gallery import signing
from gallery.models import Credential
from gallery.provenance import c2pa, keys, watermark
from gallery.provenance.manifest import (
    FINGERPRINT_ALG,
    WATERMARK_ALG,
    ImageFacts,
    manifest_definition,
)
from gallery.provenance.pipeline import mark
from gallery.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA
from gallery.services import post_create
from tests import images


@pytest.fixture
def identity(tmp_path):
    return keys.identity_create(tmp_path / "keys", instance_name="Test Candor")


def facts(**overrides) -> ImageFacts:
    values = {
        "title": "image.jpg", "mime": "image/jpeg", "author_handle": "alice",
        "author_url": "http://127.0.0.1:8000/@alice", "instance_name": "Test Candor",
        "software_version": "0.1.0", "base_model": "builtin:tiny", "model_name": "Alice · model 1",
        "lora_sha256": "ab" * 32, "consent_id": 7, "credential_id": "cred-0001",
    }  # fmt: skip
    return ImageFacts(**{**values, **overrides})


def signed(identity, fmt="JPEG", watermark_id=42):
    return mark(
        images.astronaut_variant(0), fmt=fmt, facts=facts(), signer=c2pa.Signer(identity),
        watermark_id=watermark_id, watermark_key=watermark.key_for(identity.key_pem),
    )  # fmt: skip


def test_the_instance_identity_has_the_profile_c2pa_trusts(identity, tmp_path):
    for name in ("root.key", "signer.key"):
        assert stat.S_IMODE(os.stat(tmp_path / "keys" / name).st_mode) == 0o600
    root = x509.load_pem_x509_certificate(identity.root_pem)
    leaf = identity.leaf
    basic = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    leaf_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert leaf_usage.critical and leaf_usage.value.digital_signature
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert leaf.issuer == root.subject


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_signed_image_reads_back_trusted_with_what_it_says(identity, fmt):
    result = c2pa.read(signed(identity, fmt).data, trust_anchors_pem=identity.root_pem)

    assert result.state == "Trusted", result.failures
    actions = c2pa.assertion(result.manifest, "c2pa.actions")["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert actions[0]["parameters"]["lora_sha256"] == "ab" * 32
    assert "prompt" not in actions[0]["parameters"]  # only when the creator opts in
    mining = c2pa.assertion(result.manifest, "cawg.training-mining")["entries"]
    assert set(mining) == {
        "cawg.ai_generative_training", "cawg.ai_inference", "cawg.ai_training", "cawg.data_mining",
    }  # fmt: skip
    assert all(entry["use"] == "notAllowed" for entry in mining.values())
    assert c2pa.assertion(result.manifest, "c2pa.training-mining") is None  # gone in C2PA 2.0
    author = c2pa.assertion(result.manifest, "stds.schema-org.CreativeWork")["author"][0]
    assert author == {"@type": "Person", "name": "@alice", "url": "http://127.0.0.1:8000/@alice"}
    metadata = c2pa.assertion(result.manifest, "cawg.metadata")
    assert metadata["dc:creator"] == ["@alice"]
    assert metadata["Iptc4xmpCore:CreatorContactInfo"] == {
        "Iptc4xmpCore:CiUrlWork": "http://127.0.0.1:8000/@alice"
    }
    assert c2pa.assertion(result.manifest, "org.candor.provenance")["consent_record"] == "7"


def test_what_candor_did_is_created_and_attributed_to_the_signer(identity):
    manifest = c2pa.read(signed(identity).data, trust_anchors_pem=identity.root_pem).manifest
    created = {a["label"].split(".v")[0] for a in manifest["assertions"] if a.get("created")}

    assert created == {
        "c2pa.actions", "cawg.training-mining", "org.candor.provenance", "c2pa.soft-binding",
    }  # fmt: skip
    # The author is relayed, not vouched for: gathered assertions.
    assert not created & {"stds.schema-org.CreativeWork", "cawg.metadata"}


def test_the_watermark_and_the_fingerprint_are_declared_as_soft_bindings(identity):
    marked = mark(
        images.astronaut_variant(0), fmt="JPEG", facts=facts(phash="0123456789abcdef"),
        signer=c2pa.Signer(identity), watermark_id=4242, watermark_key=b"k" * 32,
    )  # fmt: skip
    manifest = c2pa.read(marked.data, trust_anchors_pem=identity.root_pem).manifest

    actions = [a["action"] for a in c2pa.assertion(manifest, "c2pa.actions")["actions"]]
    assert actions == ["c2pa.created", "c2pa.watermarked"]
    bindings = {
        a["data"]["alg"]: a["data"]["blocks"][0]["value"]
        for a in manifest["assertions"]
        if a["label"].startswith("c2pa.soft-binding")
    }
    assert bindings == {WATERMARK_ALG: "4242", FINGERPRINT_ALG: "0123456789abcdef"}


def test_an_image_too_small_for_the_watermark_claims_no_watermark(identity):
    marked = mark(
        Image.new("RGB", (64, 64), (90, 40, 160)), fmt="PNG", facts=facts(),
        signer=c2pa.Signer(identity), watermark_id=4242, watermark_key=b"k" * 32,
    )  # fmt: skip
    manifest = c2pa.read(marked.data, trust_anchors_pem=identity.root_pem).manifest
    actions = [a["action"] for a in c2pa.assertion(manifest, "c2pa.actions")["actions"]]
    assert actions == ["c2pa.created"]
    assert c2pa.assertion(manifest, "c2pa.soft-binding") is None


@pytest.mark.parametrize(
    ("assertion", "before", "after"),
    [
        ("c2pa.actions", b"ab" * 32, b"cd" * 32),
        ("cawg.training-mining", b"cawg.ai_inference", b"cawg.ai_inferencX"),
        ("stds.schema-org.CreativeWork", b"Person", b"Robots"),
        ("cawg.metadata", b"CiUrlWork", b"CiUrlWorX"),
        ("org.candor.provenance", b"cred-0001", b"cred-0002"),
        ("c2pa.soft-binding", b"org.candor.watermark.1", b"org.candor.watermark.2"),
    ],
)
def test_an_edit_to_any_assertion_is_detected(identity, assertion, before, after):
    data = signed(identity).data
    assert data.count(before) == 1, before
    result = c2pa.read(data.replace(before, after), trust_anchors_pem=identity.root_pem)

    assert result.state == "Invalid"
    assert any(
        f["code"] == "assertion.hashedURI.mismatch" and assertion in f.get("url", "")
        for f in result.failures
    ), result.failures


def test_without_the_anchor_the_signature_is_valid_but_untrusted(identity):
    result = c2pa.read(signed(identity).data)
    assert result.state == "Valid"
    assert "signingCredential.untrusted" in result.failure_codes


def test_a_flipped_byte_in_the_image_data_breaks_the_signature(identity):
    data = bytearray(signed(identity).data)
    data[-400] ^= 0xFF
    result = c2pa.read(bytes(data), trust_anchors_pem=identity.root_pem)
    assert result.state == "Invalid"
    assert "assertion.dataHash.mismatch" in result.failure_codes


def test_editing_the_label_after_signing_breaks_the_signature(identity):
    data = signed(identity).data
    assert b"AI-generated image made with Candor" in data
    edited = data.replace(b"AI-generated image made with", b"A real photo, honest, made w")

    result = c2pa.read(edited, trust_anchors_pem=identity.root_pem)

    assert result.state == "Invalid"
    assert "assertion.dataHash.mismatch" in result.failure_codes


@pytest.mark.parametrize(("fmt", "ext"), [("JPEG", "jpg"), ("PNG", "png")])
def test_exiftool_independently_sees_the_credentials_and_the_label(identity, tmp_path, fmt, ext):
    path = tmp_path / f"signed.{ext}"
    path.write_bytes(signed(identity, fmt).data)
    out = subprocess.run(
        ["exiftool", "-json", "-G1", "-a", "-u", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tags = json.loads(out)[0]
    text = json.dumps(tags)
    assert "c2pa.created" in text
    assert TRAINED_ALGORITHMIC_MEDIA in text
    xmp_source = [v for k, v in tags.items() if k.endswith("DigitalSourceType") and "XMP" in k]
    assert xmp_source == [TRAINED_ALGORITHMIC_MEDIA]


def test_the_watermark_carries_the_id_through_jpeg_and_resizing(identity):
    key = watermark.key_for(identity.key_pem)
    marked = Image.open(io.BytesIO(signed(identity, watermark_id=123456).data))
    assert watermark.detect(marked, key=key) == 123456

    for quality in (90, 75, 50):
        buffer = io.BytesIO()
        marked.save(buffer, "JPEG", quality=quality)  # re-encoding strips the manifest
        assert c2pa.read(buffer.getvalue()).state == ""
        reread = Image.open(io.BytesIO(buffer.getvalue()))
        assert watermark.detect(reread, key=key) == 123456, quality
    half = marked.resize((256, 256), Image.Resampling.LANCZOS)
    assert watermark.detect_rescaled(half, [(512, 512)], key=key) == 123456


def test_an_unmarked_image_has_no_watermark_id(identity):
    key = watermark.key_for(identity.key_pem)
    assert watermark.detect(images.astronaut_variant(3), key=key) is None
    assert watermark.detect(Image.new("RGB", (512, 512), (0, 0, 0)), key=key) is None


def test_the_tag_rejects_noise_and_other_keys():
    key = watermark.key_for(b"this instance")
    assert watermark.bits_to_id([0] * watermark.PAYLOAD_BITS, key) is None
    bits = watermark.payload_bits(77, key)
    bits[3] ^= True
    assert watermark.bits_to_id(bits, key) is None
    assert watermark.bits_to_id(watermark.payload_bits(77, key), key) == 77
    assert watermark.bits_to_id(watermark.payload_bits(77, key), b"another") is None


# --- through the gallery ------------------------------------------------------------------------


@pytest.fixture
def instance_keys(settings, tmp_path):
    settings.C2PA_KEYS_DIR = tmp_path / "instance-keys"
    signing.reset()
    yield settings.C2PA_KEYS_DIR
    signing.reset()


def test_post_create_signs_every_file_and_stores_each_credential(
    alice, private_media, instance_keys
):
    post = post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny", consent_id=9,
    )  # fmt: skip
    anchors = signing.trust_anchors_pem()
    credentials = {c.variant: c for c in Credential.objects.filter(post=post)}
    assert set(credentials) == {"original", "display", "thumb", "preview"}
    for field in ("image", "display", "thumb", "preview"):
        data = getattr(post, field).read()
        result = c2pa.read(data, trust_anchors_pem=anchors)
        assert result.state == "Trusted", (field, result.failures)
    preview = Image.open(post.preview.open())
    assert preview.size == (1200, 630)
    key = signing.watermark_key()
    assert watermark.detect(Image.open(post.display.open()), key=key) == credentials["display"].pk
    assert all(c.consent_id == 9 and c.sha256 for c in credentials.values())


def test_each_display_size_is_derived_from_the_signed_original(alice, private_media, instance_keys):
    post = post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny",
    )  # fmt: skip
    anchors = signing.trust_anchors_pem()
    original = c2pa.read(post.image.read(), trust_anchors_pem=anchors).manifest
    assert [a["action"] for a in c2pa.assertion(original, "c2pa.actions")["actions"]] == [
        "c2pa.created", "c2pa.watermarked",
    ]  # fmt: skip
    assert not original.get("ingredients")

    expected = {
        "display": ["c2pa.opened", "c2pa.transcoded", "c2pa.watermarked"],  # already 512 px
        "thumb": ["c2pa.opened", "c2pa.cropped", "c2pa.resized", "c2pa.watermarked"],
        "preview": ["c2pa.opened", "c2pa.resized", "c2pa.edited", "c2pa.watermarked"],
    }
    for field, variant in (("display", "display"), ("thumb", "thumb"), ("preview", "preview")):
        result = c2pa.read(getattr(post, field).read(), trust_anchors_pem=anchors)
        assert result.state == "Trusted", (field, result.failures)
        actions = c2pa.assertion(result.manifest, "c2pa.actions")["actions"]
        assert [a["action"] for a in actions] == expected[variant]
        assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
        [parent] = result.manifest["ingredients"]
        assert parent["relationship"] == "parentOf"
        assert parent["title"] == "original.png"
        assert parent["active_manifest"] == original["label"]


def test_small_model_outputs_get_a_display_size_that_carries_the_watermark(
    alice, private_media, instance_keys
):
    post = post_create(
        owner=alice, image=Image.new("RGB", (64, 64), (90, 40, 160)), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny",
    )  # fmt: skip
    assert Image.open(post.image.open()).size == (64, 64)  # the original keeps its size
    assert Image.open(post.display.open()).size == (512, 512)
    variants = dict(Credential.objects.filter(post=post).values_list("variant", "watermarked"))
    assert variants == {"original": False, "display": True, "thumb": True, "preview": True}


def test_revoking_consent_marks_the_credentials_of_images_made_with_it(
    alice, private_media, instance_keys
):
    from gallery.services import consent_withdrawn

    post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny", consent_id=5,
    )  # fmt: skip
    assert consent_withdrawn(consent_id=5) == 1  # one post taken down
    assert Credential.objects.filter(consent_id=5).count() == 4
    assert not Credential.objects.filter(consent_revoked_at=None).exists()


def test_the_identity_command_shows_exports_and_rotates(instance_keys, tmp_path, capsys):
    call_command("signing_identity", "show")
    first = capsys.readouterr().out
    assert "sha256:" in first and "timestamps:  none" in first
    call_command("signing_identity", "export", str(tmp_path / "out"))
    assert (tmp_path / "out" / "trust-anchor.pem").read_bytes() == signing.identity().root_pem
    call_command("signing_identity", "rotate")
    assert capsys.readouterr().out.split("sha256:")[1] != first.split("sha256:")[1]


def test_the_prompt_is_in_the_credentials_only_when_the_creator_opts_in(
    alice, private_media, instance_keys
):
    def manifest_parameters(**extra):
        post = post_create(
            owner=alice, image=images.astronaut_variant(1), prompt="@me in Paris", seed=5,
            generation_settings={}, model_name="m", base_model="builtin:tiny", **extra,
        )  # fmt: skip
        result = c2pa.read(post.image.read(), trust_anchors_pem=signing.trust_anchors_pem())
        return c2pa.assertion(result.manifest, "c2pa.actions")["actions"][0]["parameters"]

    assert "prompt" not in manifest_parameters()
    assert manifest_parameters(prompt_in_credentials=True)["prompt"] == "@me in Paris"


def test_an_operator_certificate_chain_is_used_when_configured(settings, tmp_path):
    theirs = keys.identity_create(tmp_path / "theirs", instance_name="Operator CA")
    settings.C2PA_CERT_CHAIN_FILE = str(tmp_path / "theirs" / "signer.pem")
    settings.C2PA_PRIVATE_KEY_FILE = str(tmp_path / "theirs" / "signer.key")
    signing.reset()
    try:
        assert signing.identity().source == "operator"
        assert signing.identity().fingerprint == theirs.fingerprint
        jpeg = images.encode(images.astronaut_variant(0))
        data = signing.signer().sign(jpeg, "image/jpeg", manifest_definition(facts()))
        assert c2pa.read(data, trust_anchors_pem=theirs.root_pem).state == "Trusted"
        settings.C2PA_PRIVATE_KEY_FILE = str(tmp_path / "theirs" / "root.key")
        signing.reset()
        with pytest.raises(Exception, match="does not belong"):
            signing.identity()
    finally:
        signing.reset()


def _identity_in_a_process(folder: str) -> str:
    return keys.identity_load_or_create(folder, instance_name="Race").fingerprint


def test_processes_starting_together_make_one_identity(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        prints = set(pool.map(_identity_in_a_process, [str(tmp_path / "keys")] * 8))
    assert len(prints) == 1
