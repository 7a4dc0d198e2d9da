"""The post kit: one signed, watermarked file per platform size, captions and alt text, a ZIP."""

import io
import json
import subprocess
import zipfile

import pytest
from django.contrib.messages import get_messages
from django.core.files.storage import FileSystemStorage
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageChops, ImageOps

from gallery import labelling, postkit, services, signing, verify
from gallery.labels import LABEL_STYLES
from gallery.models import Credential, KitFile, Post
from gallery.provenance import c2pa
from gallery.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA
from gallery.renditions import KIT_MAX_SIDE
from tests import images
from tests.conftest import CONFIRM, committing, stored_files
from tests.test_gallery import make_post


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path, private_media, monkeypatch):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    # The verifier reads files as large as the kit's largest side (gallery/verify.py).
    monkeypatch.setattr(verify, "MARKED_MAX_SIDE", max(verify.MARKED_MAX_SIDE, KIT_MAX_SIDE))
    signing.reset()
    yield
    signing.reset()


@pytest.fixture
def post(alice) -> Post:
    return services.post_update_caption(post=make_post(alice), caption="Sunset over the harbour")


def build(client, post, **data):
    return client.post(reverse("post_kit_build", args=[post.pk]), data)


def kit_bytes(post) -> dict[str, bytes]:
    return {f.key: f.file.open("rb").read() for f in post.kit_files.all()}


def manifest_of(data: bytes) -> c2pa.ReadResult:
    return c2pa.read(data, trust_anchors_pem=signing.trust_anchors_pem())


def stripped(data: bytes, size: tuple[int, int] | None = None) -> bytes:
    """What a platform that strips metadata serves: decoded, maybe shrunk, re-encoded as a JPEG
    at quality 85 with no XMP, EXIF or C2PA."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_building_a_kit_makes_every_format_signed_from_the_original(alice_client, post):
    response = build(alice_client, post)

    assert response.status_code == 302
    assert response["Location"] == reverse("post_detail", args=[post.pk]) + "#kit"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Post kit ready: one download per platform, each signed and watermarked."
    ]
    files = kit_bytes(post)
    assert sorted(files) == sorted(f.key for f in postkit.FORMATS)
    original = Credential.objects.get(post=post, variant="original")
    for fmt in postkit.FORMATS:
        data = files[fmt.key]
        assert Image.open(io.BytesIO(data)).size == fmt.size, fmt.key
        result = manifest_of(data)
        assert result.state == "Trusted", fmt.key
        parents = [i for i in result.manifest["ingredients"] if i["relationship"] == "parentOf"]
        assert [p["title"] for p in parents] == [services.original_parent(post).title]
        actions = verify.manifest_details(result.manifest)["actions"]
        assert actions[0] == "c2pa.opened" and "c2pa.resized" in actions, fmt.key
        assert ("c2pa.cropped" in actions) == (fmt.size[0] != fmt.size[1]), fmt.key
        assert actions[-1] == "c2pa.watermarked", fmt.key

        verdict = verify.verify_bytes(data)
        assert verdict.verdict == verify.SIGNED_BY_THIS_INSTANCE, fmt.key
        assert verdict.credential.post == post
        assert verdict.credential.variant == f"kit:{fmt.key}"
    assert original.pk not in [f.credential_id for f in post.kit_files.all()]


def test_exiftool_shows_the_declared_source_type_on_every_kit_file(alice, tmp_path):
    post = make_post(alice)
    kit = postkit.kit_build(post=post, label_style="badge")
    paths = []
    for kit_file in kit:
        path = tmp_path / f"{kit_file.key}.jpg"
        path.write_bytes(kit_file.file.open("rb").read())
        paths.append(path)
    out = subprocess.run(
        ["exiftool", "-json", "-G1", "-a", "-u", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for tags in json.loads(out):
        xmp_source = [v for k, v in tags.items() if k.endswith("DigitalSourceType") and "XMP" in k]
        assert xmp_source == [TRAINED_ALGORITHMIC_MEDIA], tags["SourceFile"]


def test_each_file_is_recovered_after_the_handling_its_platform_gives_it(alice_client, post):
    build(alice_client, post)
    files = kit_bytes(post)
    credentials = {f.key: f.credential for f in post.kit_files.select_related("credential")}
    for fmt in postkit.FORMATS:
        # Every platform re-encodes; the stripping ones drop the metadata, and some shrink.
        copies = {"recompressed": stripped(files[fmt.key])}
        if fmt.key in ("square", "portrait"):
            w, h = fmt.size
            copies["shrunk to 640 wide"] = stripped(files[fmt.key], (640, round(640 * h / w)))
        for handling, copy in copies.items():
            assert manifest_of(copy).state == "", (fmt.key, handling)
            verdict = verify.verify_bytes(copy)
            assert verdict.verdict == verify.RECOVERED_BY_WATERMARK, (fmt.key, handling)
            assert verdict.credential.post == post, (fmt.key, handling)
            if handling == "recompressed":
                assert verdict.credential == credentials[fmt.key], fmt.key
    for destination in postkit.DESTINATIONS:
        if destination.credentials in (postkit.KEEPS, postkit.READS):
            for key in destination.formats:  # what they read at upload, as it is
                assert verify.verify_bytes(files[key]).verdict == verify.SIGNED_BY_THIS_INSTANCE


def test_files_for_stripping_platforms_carry_the_visible_label(alice, alice_client, post):
    build(alice_client, post, label_style="eu")
    stored = {f.key: f for f in post.kit_files.all()}
    source = services.original_image(services.original_parent(post))
    for fmt in postkit.FORMATS:
        data = stored[fmt.key].file.open("rb").read()
        label = (c2pa.assertion(manifest_of(data).manifest, "org.candor.provenance") or {}).get(
            "visible_label"
        )
        pixels = Image.open(io.BytesIO(data)).convert("RGB")
        plain = ImageOps.fit(source, fmt.size, Image.Resampling.LANCZOS)
        if not fmt.label:
            assert label is None and stored[fmt.key].label_style == "", fmt.key
            continue
        assert stored[fmt.key].label_style == "eu"
        assert label["style"] == "eu" and label["text"] == "AI + GENERATED", fmt.key
        box = label["box"]  # as c2pa reads it back: a mapping
        box = tuple(box[side] for side in ("left", "top", "right", "bottom"))
        inside = ImageChops.difference(pixels.crop(box), plain.crop(box)).getextrema()
        assert max(high for _, high in inside) > 200, fmt.key  # the mark, not JPEG noise
        page = alice_client.get(reverse("post_kit_file", args=[post.pk, fmt.key, "jpg"]))
        assert page["Cache-Control"] == "private, no-store"
        assert b"".join(page.streaming_content) == data


def test_captions_disclose_ai_and_link_to_the_verify_result_within_each_limit(
    alice, alice_client, post
):
    post = services.post_update_caption(post=post, caption="word " * 400)
    context = postkit.kit_context(post)["kit"]
    link = context["verify_url"]
    assert link.startswith("http") and "/v/" in link and len(link) < 80
    result = alice_client.get(link.split("8000", 1)[-1])
    assert result.status_code == 200
    assert "AI-generated, signed by this Candor instance" in result.content.decode()
    assert Client().get("/v/00000000-0000-4000-8000-000000000000/").status_code == 404
    captions = {d["key"]: d["caption"] for d in context["destinations"]}
    for destination in postkit.DESTINATIONS:
        caption = captions[destination.key]
        counted = len(caption)
        if destination.key == "x":  # X counts every link as 23 characters (t.co)
            counted = len(caption.replace(link, "x" * 23))
        assert counted <= destination.caption_max, destination.key
        assert caption.startswith("word word")
        assert f"AI-generated with Candor. Verify: {link} #AIgenerated" in caption
    assert "…" in captions["x"]
    # X gets the room its link-counting gives: more of the creator's words than a plain count.
    assert len(captions["x"]) > 280 - 23 + len(link) - 5
    x = next(d for d in context["destinations"] if d["key"] == "x")
    assert x["caption_length"] <= 280
    assert context["alt_text"].startswith("AI-generated image: word word")


def test_a_camera_photo_gets_no_ai_claim_and_no_label(alice):
    photo = labelling.post_label_upload(
        owner=alice, data=images.encode(images.astronaut_variant(5), "PNG"),
        filename="photo.png", declaration="photo",
    )  # fmt: skip
    kit = postkit.kit_build(post=photo, label_style="text")

    assert {f.label_style for f in kit} == {""}
    link = postkit.verify_url(photo)
    caption = postkit.caption_for(photo, postkit.DESTINATIONS[0], link)
    assert caption == f"Labelled with Candor. Verify: {link}"
    assert postkit.alt_text(photo) == "Image: shared by @alice"
    square = next(f for f in kit if f.key == "square").file.open("rb").read()
    verdict = verify.verify_bytes(stripped(square))
    assert verdict.verdict == verify.RECOVERED_BY_WATERMARK and verdict.credential.post == photo


def test_the_zip_holds_every_file_the_original_and_the_captions(alice_client, post):
    build(alice_client, post)
    response = alice_client.get(reverse("post_kit_zip", args=[post.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = {n.split("/", 1)[1]: n for n in archive.namelist()}
    files = kit_bytes(post)
    for fmt in postkit.FORMATS:
        assert archive.read(names[fmt.filename(post)]) == files[fmt.key]
    assert archive.read(names[postkit.original_filename(post)]) == post.image.open().read()
    readme = archive.read(names["README.txt"]).decode()
    assert all(d.name in readme for d in postkit.DESTINATIONS)
    x = archive.read(names["captions/x.txt"]).decode()
    assert "Sunset over the harbour" in x and "AI-generated with Candor" in x and "Alt text" in x


def test_the_kit_section_lists_every_destination_once_built(alice_client, post, settings):
    settings.LABEL_STYLE = "text"
    html = render_to_string("gallery/_kit.html", postkit.kit_context(post))
    assert "Make the post kit" in html and "Download everything" not in html
    assert all(f'value="{key}"' in html for key in LABEL_STYLES)
    assert 'value="text" checked' in html  # the operator's default

    build(alice_client, post)
    html = render_to_string("gallery/_kit.html", postkit.kit_context(post))
    assert "Remake the post kit" in html and reverse("post_kit_zip", args=[post.pk]) in html
    assert {f.label_style for f in post.kit_files.all()} == {"", "text"}
    for destination in postkit.DESTINATIONS:
        assert destination.name in html
    for fmt in postkit.FORMATS:
        assert reverse("post_kit_file", args=[post.pk, fmt.key, "jpg"]) + "?download=1" in html
    assert alice_client.get(reverse("post_detail", args=[post.pk])).status_code == 200


def test_it_checks_owner(bob_client, alice_client, post):
    build(alice_client, post)
    assert build(bob_client, post).status_code == 404
    assert bob_client.get(reverse("post_kit_zip", args=[post.pk])).status_code == 404
    url = reverse("post_kit_file", args=[post.pk, "square", "jpg"])
    assert bob_client.get(url).status_code == 404
    assert alice_client.get(reverse("post_kit_build", args=[post.pk])).status_code == 405
    assert alice_client.get(url.replace("square", "nope")).status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"consent_revoked_at": timezone.now()}, services.CONSENT_WITHDRAWN),
        ({"withdrawn_at": timezone.now()}, services.WITHDRAWN_BY_PERSON),
        ({"consent_private": True}, services.PRIVATE_BY_CONSENT),
    ],
)
def test_a_post_that_may_not_go_out_gets_no_kit(alice_client, post, private_media, change, message):
    Post.objects.filter(pk=post.pk).update(**change)
    before = stored_files(private_media)

    response = build(alice_client, post)

    assert [str(m) for m in get_messages(response.wsgi_request)] == [message]
    assert not KitFile.objects.exists()
    assert not Credential.objects.filter(variant__startswith="kit:").exists()
    assert stored_files(private_media) == before
    assert alice_client.get(reverse("post_kit_zip", args=[post.pk])).status_code == 302


def test_remaking_replaces_the_files_and_deleting_the_post_deletes_them(
    alice_client, post, private_media
):
    def kit_paths():
        return [p for p in stored_files(private_media) if "/kit/" in str(p)]

    build(alice_client, post)
    first = kit_paths()
    assert len(first) == len(postkit.FORMATS)
    old_credentials = [f.credential_id for f in post.kit_files.all()]

    with committing():
        build(alice_client, post, label_style="text")

    second = kit_paths()
    assert len(second) == len(postkit.FORMATS) and not set(first) & set(second)
    assert {f.label_style for f in post.kit_files.all()} == {"", "text"}
    # Copies of the first kit already posted somewhere still verify.
    assert Credential.objects.filter(pk__in=old_credentials).count() == len(postkit.FORMATS)

    with committing():
        alice_client.post(reverse("post_delete", args=[post.pk]), CONFIRM)
    assert kit_paths() == []


def test_a_failed_build_leaves_no_half_kit(alice, post, private_media, monkeypatch):
    postkit.kit_build(post=post)
    before = stored_files(private_media)
    kit_ids = list(post.kit_files.values_list("pk", flat=True))
    credentials = Credential.objects.count()
    calls = []
    real = FileSystemStorage.save

    def failing(storage, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(storage, *args, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", failing)
    with pytest.raises(OSError):
        postkit.kit_build(post=post)

    assert stored_files(private_media) == before
    assert list(post.kit_files.values_list("pk", flat=True)) == kit_ids
    assert Credential.objects.count() == credentials


def test_a_build_that_fails_while_signing_leaves_no_credential_rows(alice, post, monkeypatch):
    credentials = Credential.objects.count()

    def broken(*args, **kwargs):
        raise RuntimeError("signer unavailable")

    monkeypatch.setattr(postkit, "_mark", broken)
    with pytest.raises(RuntimeError):
        postkit.kit_build(post=post)

    assert Credential.objects.count() == credentials
    assert not post.kit_files.exists()


def test_the_post_kit_through_the_api(alice, bob):
    from tests.test_api import API, assert_problem, call, token_for

    post = make_post(alice)
    path = f"{API}/posts/{post.pk}/kit"
    assert_problem(call("POST", path, token_for(bob), data={}), 404, "not_found")
    assert_problem(call("POST", path, token_for(alice, ["read"]), data={}), 403,
                   "insufficient_scope")  # fmt: skip
    assert call("GET", path, token_for(alice)).json()["built"] is False

    response = call("POST", path, token_for(alice), data={"label_style": "eu"})

    assert response.status_code == 201, response.content
    kit = response.json()
    assert kit["built"] and kit["label_style"] == "eu"
    assert {f["key"] for f in kit["files"]} == {f.key for f in postkit.FORMATS}
    x = next(d for d in kit["destinations"] if d["key"] == "x")
    assert x["caption_length"] <= x["caption_max"] == 280 and "Verify: http" in x["caption"]
    square = next(f for f in kit["files"] if f["key"] == "square")
    data = call("GET", square["file_url"], token_for(alice)).getvalue()
    verdict = verify.verify_bytes(data)
    assert verdict.verdict == verify.SIGNED_BY_THIS_INSTANCE and verdict.credential.post == post
    archive = call("GET", kit["zip_url"], token_for(alice))
    assert archive["Content-Type"] == "application/zip"
    assert_problem(call("GET", kit["zip_url"], token_for(bob)), 404, "not_found")


def test_a_shrunk_kit_file_of_a_tiny_model_image_still_leads_back_to_its_post(alice):
    # 64 px: too small for the original to carry a watermark, so a shrunk kit file can't be
    # read through the original's; its fingerprint finds it.
    tiny = make_post(alice, image=images.astronaut_variant(4).resize((64, 64)))
    kit = {f.key: f for f in postkit.kit_build(post=tiny)}
    square = kit["square"].file.open("rb").read()

    verdict = verify.verify_bytes(stripped(square, (640, 640)))

    assert verdict.verdict in (verify.RECOVERED_BY_WATERMARK, verify.RECOVERED_BY_SIMILARITY)
    assert verdict.credential.post == tiny


def test_a_take_down_deletes_the_kit(alice, private_media):
    withdrawn, revoked = make_post(alice), make_post(alice, consent_id=7)
    for post in (withdrawn, revoked):
        postkit.kit_build(post=post)
    assert len([p for p in stored_files(private_media) if "/kit/" in str(p)]) == 12

    with committing():
        services.post_withdraw(post=withdrawn)
        services.consent_withdrawn(consent_id=7)

    assert not KitFile.objects.exists()
    assert [p for p in stored_files(private_media) if "/kit/" in str(p)] == []
    assert Credential.objects.filter(variant__startswith="kit:").count() == 12  # kept for verify
