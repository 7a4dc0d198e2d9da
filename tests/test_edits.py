"""Edits keep the chain: each makes a new post whose credentials name the edited one as parent."""

import io
import json

import c2pa as c2pa_lib
import pytest
from django.urls import reverse
from PIL import Image

from gallery import edits, labels, services, signing, verify
from gallery.models import Credential, Post
from gallery.provenance import c2pa
from tests.conftest import stored_files
from tests.test_gallery import make_post


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


@pytest.fixture
def post(alice) -> Post:
    return services.post_update_caption(post=make_post(alice), caption="A walk by the sea")


def original(post: Post) -> bytes:
    with post.image.open("rb") as handle:
        return handle.read()


def edit(client, post: Post, **data):
    return client.post(reverse("post_edit", args=[post.pk]), data)


def newest(owner) -> Post:
    return Post.objects.filter(owner=owner).order_by("-created_at").first()


def read(data: bytes) -> c2pa.ReadResult:
    return c2pa.read(data, trust_anchors_pem=signing.trust_anchors_pem())


def action_names(manifest: dict) -> list[str]:
    return [a["action"] for a in (c2pa.assertion(manifest, "c2pa.actions") or {})["actions"]]


def candor_id(manifest: dict) -> str:
    return c2pa.assertion(manifest, "org.candor.provenance")["credential_id"]


def chain(data: bytes) -> list[str]:
    """The Candor credential ids along the parentOf chain, newest first."""
    with c2pa_lib.Reader("image/png", io.BytesIO(data)) as reader:
        store = json.loads(reader.json())
    ids, label = [], store["active_manifest"]
    while label:
        manifest = store["manifests"][label]
        ids.append(candor_id(manifest))
        parents = [i for i in manifest.get("ingredients", []) if i["relationship"] == "parentOf"]
        label = parents[0].get("active_manifest") if parents else None
    return ids


def test_a_crop_of_a_candor_post_verifies_with_the_crop_action_and_the_parent(
    alice, alice_client, post
):
    response = edit(alice_client, post, op="crop", x=10, y=20, width=300, height=260)

    cropped = newest(alice)
    assert cropped.pk != post.pk
    assert response["Location"] == reverse("post_detail", args=[cropped.pk])
    assert (cropped.width, cropped.height) == (300, 260)
    assert cropped.parent == post and cropped.origin == Post.Origin.EDITED
    data = original(cropped)
    result = read(data)
    assert result.state == "Trusted"
    assert action_names(result.manifest) == ["c2pa.opened", "c2pa.cropped", "c2pa.watermarked"]
    (ingredient,) = result.manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert not ingredient["validation_results"]["activeManifest"]["failure"]
    parent_credential = Credential.objects.get(post=post, variant="original")
    assert chain(data)[1] == str(parent_credential.uuid)
    verdict = verify.verify_bytes(data)
    assert verdict.verdict == verify.SIGNED_BY_THIS_INSTANCE
    assert verdict.credential.post == cropped
    assert "c2pa.cropped" in verdict.details["actions"]
    # The cropped pixels are the parent's.
    with Image.open(io.BytesIO(original(post))) as before:
        assert before.convert("RGB").crop((10, 20, 310, 220)).getpixel((5, 5)) == pytest.approx(
            Image.open(io.BytesIO(data)).convert("RGB").getpixel((5, 5)), abs=12
        )


def test_an_edit_of_an_edit_keeps_the_whole_chain(alice, alice_client, post):
    edit(alice_client, post, op="rotate", degrees="90")
    rotated = newest(alice)
    edit(alice_client, rotated, op="resize", width=256)
    resized = newest(alice)

    ids = chain(original(resized))

    assert ids == [
        str(Credential.objects.get(post=p, variant="original").uuid)
        for p in (resized, rotated, post)
    ]
    assert (rotated.width, rotated.height) == (post.height, post.width)
    assert action_names(read(original(resized)).manifest)[1] == "c2pa.resized"
    assert services.post_history(resized) == [post, rotated, resized]


def test_each_edit_has_its_c2pa_action_and_size(alice, alice_client, post):
    expected = {
        ("resize", "width=256"): ("c2pa.resized", (256, 256)),
        ("rotate", "degrees=180"): ("c2pa.orientation", (512, 512)),
        ("caption", "text=Sunday, by the sea"): ("c2pa.edited", None),
        ("label", "style=eu"): ("c2pa.edited", (512, 512)),
    }
    for (op, field), (action, size) in expected.items():
        name, value = field.split("=")
        edit(alice_client, post, op=op, **{name: value})
        child = newest(alice)
        manifest = read(original(child)).manifest
        assert action_names(manifest)[1] == action, op
        if size:
            assert (child.width, child.height) == size, op
        else:  # a caption bar makes the image taller
            assert child.width == post.width and child.height > post.height
        assert child.edit["op"] == op


def test_a_visible_label_is_burned_in_and_recorded_in_the_manifest(alice, alice_client, post):
    edit(alice_client, post, op="label", style="text")

    labelled = newest(alice)
    manifest = read(original(labelled)).manifest
    recorded = c2pa.assertion(manifest, "org.candor.provenance")["visible_label"]
    assert recorded["style"] == "text" and recorded["text"] == labels.GENERATED_TEXT
    assert recorded["text_height_px"] >= 0.05 * min(labelled.width, labelled.height)
    description = (c2pa.assertion(manifest, "c2pa.actions") or {})["actions"][1]["parameters"]
    assert "visible label" in description["description"]
    with (
        Image.open(io.BytesIO(original(post))) as a,
        Image.open(io.BytesIO(original(labelled))) as b,
    ):
        box = recorded["box"]
        left, top, right, bottom = box["left"], box["top"], box["right"], box["bottom"]
        assert (right - left, bottom - top) == (labelled.width, bottom - top)  # a full-width bar
        assert (
            a.convert("RGB").crop((left, top, right, bottom)).tobytes()
            != b.convert("RGB").crop((left, top, right, bottom)).tobytes()
        )
    page = alice_client.get(reverse("post_detail", args=[labelled.pk])).content.decode()
    assert "Edited in Candor: Added a visible label: “AI-generated”" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op": "crop", "x": 400, "y": 0, "width": 300, "height": 100}, "must lie inside"),
        ({"op": "crop", "x": 0, "y": 0, "width": 10, "height": 10}, "must lie inside"),
        ({"op": "crop", "x": "a", "y": 0, "width": 100, "height": 100}, "whole number"),
        ({"op": "crop", "x": 0, "y": 0, "width": 512, "height": 512}, "whole image"),
        ({"op": "resize", "width": 5000}, "between 64 and 4096"),
        ({"op": "resize", "width": 512}, "already 512×512"),
        ({"op": "rotate", "degrees": "45"}, edits.ROTATE_CHOICES),
        ({"op": "caption", "text": "   "}, labels.CAPTION_BAR_EMPTY),
        ({"op": "caption", "text": "x" * 201}, labels.CAPTION_BAR_TOO_LONG),
        ({"op": "label", "style": "neon"}, "Choose a label style"),
        ({"op": "blur"}, "Choose an edit"),
    ],
)
def test_out_of_range_edits_get_a_clear_message_and_make_nothing(
    alice, alice_client, post, private_media, data, message
):
    files_before = stored_files(private_media)
    credentials_before = Credential.objects.count()

    response = edit(alice_client, post, **data)

    assert response["Location"] == reverse("post_detail", args=[post.pk]) + "#edit"
    page = alice_client.get(response["Location"]).content.decode().replace("&#x27;", "'")
    assert message in page
    assert Post.objects.count() == 1
    assert Credential.objects.count() == credentials_before
    assert stored_files(private_media) == files_before


def test_someone_elses_post_cannot_be_edited(alice, bob_client, post):
    assert edit(bob_client, post, op="rotate", degrees="90").status_code == 404
    assert Post.objects.count() == 1


def test_a_get_does_not_edit(alice_client, post):
    assert alice_client.get(reverse("post_edit", args=[post.pk])).status_code == 405


def test_a_taken_down_post_cannot_be_edited(alice, alice_client, post):
    services.post_withdraw(post=post)

    response = edit(alice_client, post, op="rotate", degrees="90")

    page = alice_client.get(response["Location"]).content.decode()
    assert services.EDIT_TAKEN_DOWN.replace("'", "&#x27;") in page
    assert Post.objects.count() == 1


def test_the_post_page_shows_the_history_both_ways(alice, alice_client, post):
    edit(alice_client, post, op="crop", x=0, y=0, width=256, height=256)
    cropped = newest(alice)

    parent_page = alice_client.get(reverse("post_detail", args=[post.pk])).content.decode()
    child_page = alice_client.get(reverse("post_detail", args=[cropped.pk])).content.decode()

    assert reverse("post_detail", args=[cropped.pk]) in parent_page
    assert "Cropped to 256×256" in parent_page
    assert reverse("post_detail", args=[post.pk]) in child_page
    assert "made with Alice · model 1" in child_page


def test_an_edit_inherits_the_consent_it_was_made_under(alice, alice_client, post):
    edit(alice_client, post, op="rotate", degrees="270")
    rotated = newest(alice)

    services.consent_withdrawn(consent_id=post.consent_id)

    rotated.refresh_from_db()
    assert rotated.consent_id == post.consent_id
    assert rotated.consent_revoked_at is not None


def test_a_post_is_edited_through_the_api(alice, bob, post):
    from tests.test_api import API, assert_problem, call, token_for

    path = f"{API}/posts/{post.pk}/edits"
    body = {"op": "crop", "x": 0, "y": 0, "width": 400, "height": 300}

    assert_problem(call("POST", path, data=body), 401, "unauthenticated")
    assert_problem(call("POST", path, token_for(alice, ["read"]), data=body), 403,
                   "insufficient_scope")  # fmt: skip
    assert_problem(call("POST", path, token_for(bob), data=body), 404, "not_found")
    refused = call("POST", path, token_for(alice), data={**body, "width": 9000})
    assert "must lie inside" in assert_problem(refused, 400, "refused")["detail"]
    assert Post.objects.count() == 1

    response = call("POST", path, token_for(alice), data=body)

    assert response.status_code == 201, response.content
    made = response.json()
    assert made["parent_id"] == str(post.pk)
    assert made["origin"] == "edited" and (made["width"], made["height"]) == (400, 300)
    assert made["credential"]["actions"][:2] == ["c2pa.opened", "c2pa.cropped"]
    assert made["edit"]["op"] == "crop"


def test_when_the_person_shown_takes_an_image_down_its_edits_go_down_too(alice, alice_client, post):
    edit(alice_client, post, op="rotate", degrees="90")
    rotated = newest(alice)
    edit(alice_client, rotated, op="label", style="badge")
    labelled = newest(alice)
    services.post_publish(post=labelled)

    services.post_withdraw(post=post)

    for each in (rotated, labelled):
        each.refresh_from_db()
        assert each.withdrawn_at is not None and not each.is_public
    verdict = verify.verify_bytes(original(labelled))
    assert verdict.withdrawn


def test_caption_bars_cant_grow_an_image_past_the_largest_size(
    alice, alice_client, post, monkeypatch
):
    monkeypatch.setattr(edits, "MAX_SIDE", 560)

    response = edit(alice_client, post, op="caption", text="One more line under it")

    page = alice_client.get(response["Location"]).content.decode()
    assert "longer than 560 pixels" in page
    assert Post.objects.count() == 1


def test_a_post_whose_original_is_gone_says_so_instead_of_failing(alice, alice_client, post):
    post.image.storage.delete(post.image.name)

    for url, data in (
        (reverse("post_edit", args=[post.pk]), {"op": "rotate", "degrees": "90"}),
        (reverse("post_kit_build", args=[post.pk]), {}),
    ):
        page = alice_client.post(url, data, follow=True).content.decode().replace("&#x27;", "'")
        assert services.ORIGINAL_MISSING in page
    assert Post.objects.count() == 1
