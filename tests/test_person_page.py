"""The person shown: their own page behind the consent link (every image made with their
likeness, taking one down, withdrawing, their data), a fresh link by email, the block list, and
what the creator is told."""

import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.refusal import Refusal
from creator.jobs.models import Task
from creator.jobs.runtime import housekeeping
from creator.likeness import checks, services
from creator.likeness.models import Consent, FaceBlock, Subject
from creator.notices.models import Notice
from gallery import services as gallery
from gallery import signing
from gallery.models import Credential, Post
from gallery.verify import verify_bytes
from tests import images
from tests.conftest import CONFIRM, committing, run_photo_checks, upload_files

OBAMA = ("obama.jpg", "obama2.jpg")


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path, private_media):
    # The link's selfie goes as a picture file here (the weaker path, switched on); the live
    # camera check has its own tests in test_liveness.py.
    settings.CONSENT_REQUIRE_LIVENESS = False  # as the picture_consent fixture does
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


@pytest.fixture
def barack(alice, alice_client) -> Subject:
    subject = Subject.objects.create(owner=alice, kind=Subject.Kind.OTHER, name="Barack")
    upload_files(alice_client, subject, {n: images.fixture_bytes(n) for n in OBAMA})
    run_photo_checks()
    return subject


def make_link(client, subject, email="barack@example.com") -> str:
    response = client.post(reverse("consent_link_create", args=[subject.pk]), {"email": email})
    page = text(client.get(response.url))
    return re.search(r'value="http://testserver(/consent/[^"]+/)"', page).group(1)


def agree(link, **scope):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {
        "answer": "agree",
        "agree": "on",
        "signed_name": "Barack O.",
        "selfie": SimpleUploadedFile("selfie.jpg", images.fixture_bytes("obama3.jpg")),
        **scope,
    }
    with committing():
        return Client().post(link, data)


def post_of(subject, owner, *, public=False) -> Post:
    consent = subject.consents.get(status=Consent.Status.GRANTED)
    post = gallery.post_create(
        owner=owner,
        image=images.astronaut_variant(2),
        prompt="@them on a boat",
        seed=1,
        generation_settings={},
        model_name="@alice · model 1",
        base_model="builtin:tiny",
        consent_id=consent.pk,
        consent_scope=consent.scope_summary,
    )
    if public:
        gallery.post_publish(post=post)
    return post


def test_the_creator_is_told_when_the_person_agrees_and_sees_the_state(alice, alice_client, barack):
    link = make_link(alice_client, barack)
    assert "Awaiting consent" in text(alice_client.get(reverse("dashboard")))
    mail.outbox.clear()

    assert agree(link, publish="private", duration="2y", rule_out="political").status_code == 302

    consent = barack.consents.get()
    assert consent.publish == "private"
    assert consent.ruled_out == ["intimate", "political"]
    assert abs((consent.ends_at - timezone.now()) - timedelta(days=730)) < timedelta(minutes=1)
    notice = Notice.objects.get(user=alice)
    assert (notice.kind, notice.title) == ("consent_given", "Barack gave consent")
    assert "stay private" in notice.body
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert "Consent given" in text(alice_client.get(reverse("dashboard")))
    detail = text(alice_client.get(reverse("subject_detail", args=[barack.pk])))
    assert "stay private" in detail and "Political content" in detail


def test_a_decline_is_shown_to_the_creator(alice, alice_client, barack):
    link = make_link(alice_client, barack)
    with committing():
        Client().post(link, {"answer": "decline"})
    assert Notice.objects.get(user=alice).kind == "consent_declined"
    assert "Declined" in text(alice_client.get(reverse("subject_detail", args=[barack.pk])))


def test_an_expired_link_is_told_once_by_the_workers_housekeeping(alice, alice_client, barack):
    make_link(alice_client, barack)
    Consent.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    with committing():
        housekeeping.send(sender=None)
        housekeeping.send(sender=None)
    assert list(Notice.objects.values_list("kind", flat=True)) == ["consent_expired"]
    state = text(alice_client.get(reverse("subject_detail", args=[barack.pk])))
    assert "Link expired unanswered" in state


def test_the_persons_page_lists_every_image_made_with_their_likeness(
    alice, alice_client, bob, barack
):
    link = make_link(alice_client, barack)
    agree(link)
    draft = post_of(barack, alice)
    public = post_of(barack, alice, public=True)
    page = text(Client().get(link))

    assert "Images made with your likeness (2)" in page
    for post in (draft, public):
        url = reverse("consent_link_post_image", args=[link.split("/")[2], post.pk])
        assert url in page
        response = Client().get(url)
        assert response.status_code == 200
    # Another token, or an image not made under this consent, is a 404.
    assert Client().get(f"/consent/nope/images/{draft.pk}.jpg").status_code == 404
    other = gallery.post_create(
        owner=bob, image=images.astronaut_variant(3), prompt="x", seed=1,
        generation_settings={}, model_name="m", base_model="b", consent_id=None,
    )  # fmt: skip
    token = link.split("/")[2]
    assert Client().get(f"/consent/{token}/images/{other.pk}.jpg").status_code == 404
    assert Client().post(f"/consent/{token}/images/{other.pk}/take-down").status_code == 404


def test_the_person_takes_one_image_down(alice, alice_client, barack):
    link = make_link(alice_client, barack)
    agree(link)
    post = post_of(barack, alice, public=True)
    gallery.post_share_link(post=post)
    kept = post_of(barack, alice, public=True)
    token = link.split("/")[2]
    url = reverse("consent_link_post_withdraw", args=[token, post.pk])
    public_urls = [reverse("public_post", args=[post.pk])] + [
        reverse("public_file", args=[post.pk, v, e])
        for v, e in (("original", "png"), ("display", "jpg"))
    ]
    assert all(Client().get(u).status_code == 200 for u in public_urls)

    asked = Client().post(url)
    assert "Take this image down?" in text(asked)
    assert Post.objects.get(pk=post.pk).visibility == Post.Visibility.PUBLIC  # not yet
    with committing():
        Client().post(url, CONFIRM)

    post.refresh_from_db()
    assert post.withdrawn_at and post.visibility == Post.Visibility.PRIVATE and not post.share_token
    assert all(Client().get(u).status_code == 404 for u in public_urls)
    assert Client().get(reverse("public_post", args=[kept.pk])).status_code == 200
    assert Credential.objects.filter(post=post, withdrawn_at=None).count() == 0
    notice = Notice.objects.filter(user=alice, kind="image_withdrawn").get()
    assert notice.link == reverse("post_detail", args=[post.pk])
    with pytest.raises(Refusal, match="took this image down"):
        gallery.post_publish(post=post)
    owner_page = text(alice_client.get(reverse("post_detail", args=[post.pk])))
    assert "the person shown took this image down" in owner_page
    with post.image.open("rb") as handle:
        verdict = verify_bytes(handle.read())
    assert verdict.withdrawn and verdict.as_json()["withdrawn"] is True
    assert "taken down by you" in text(Client().get(link))


def test_withdrawing_through_the_link_takes_everything_down_and_tells_the_creator(
    alice, alice_client, barack
):
    link = make_link(alice_client, barack)
    agree(link)
    post = post_of(barack, alice, public=True)
    mail.outbox.clear()

    with committing():
        Client().post(link + "revoke", CONFIRM)

    assert Client().get(reverse("public_post", args=[post.pk])).status_code == 404
    notice = Notice.objects.get(user=alice, kind="consent_revoked")
    assert "1 image(s) made with their likeness were taken down" in notice.body
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert "Images made with your likeness (1)" in text(Client().get(link))


def test_the_person_downloads_what_candor_holds_about_them(alice, alice_client, barack):
    link = make_link(alice_client, barack)
    agree(link)
    post = post_of(barack, alice)
    token = link.split("/")[2]

    response = Client().get(reverse("person_export", args=[token]))

    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    record = json.loads(archive.read("candor-record.json"))
    assert record["creator"] == "@alice" and record["subject_name"] == "Barack"
    consent = record["consents"][0]
    assert consent["status"] == "granted" and len(consent["face_signature"]) == 128
    assert consent["scope"]["ruled_out"] == ["intimate"]
    assert len(record["reference_photos"]) == 2
    assert [i["file"] for i in record["images"]] == [f"images/{post.pk}.png"]
    names = set(archive.namelist())
    assert {p["file"] for p in record["reference_photos"]} <= names
    assert f"images/{post.pk}.png" in names
    assert Client().get(reverse("person_export", args=["nope"])).status_code == 404


def test_a_lost_link_is_replaced_by_email_without_saying_who_has_one(alice_client, barack):
    old = make_link(alice_client, barack)
    agree(old)
    mail.outbox.clear()
    url = reverse("consent_link_lost")

    unknown = Client().post(url, {"email": "nobody@example.com"})
    assert mail.outbox == []
    known = Client().post(url, {"email": "BARACK@example.com"})
    assert text(unknown).count("we've emailed a fresh link") == 1
    assert text(known).count("we've emailed a fresh link") == 1

    assert len(mail.outbox) == 1
    new = re.search(r"http://testserver(/consent/[^/\s]+/)", mail.outbox[0].body).group(1)
    assert new != old
    assert Client().get(old).status_code == 404
    assert "Your likeness on" in text(Client().get(new))
    bad = Client().post(url, {"email": "not an address"})
    assert bad.status_code == 400 and "Enter the one email address" in text(bad)


def check_results(subject) -> list[dict]:
    task = Task.objects.filter(scope=subject.scope, kind="photo_check").latest("created_at")
    return task.details["results"]


def test_a_blocked_face_is_refused_for_every_creator(alice, alice_client, bob, bob_client, barack):
    link = make_link(alice_client, barack)
    agree(link)
    asked = Client().post(link + "revoke")
    assert "Don't let anyone train on my face here again" in text(asked)
    with committing():
        Client().post(link + "revoke", {**CONFIRM, "block_face": "on"})
    assert FaceBlock.objects.count() == 1
    block = FaceBlock.objects.get()
    assert len(block.signature) == 128  # numbers only: no image, no name, no owner

    theirs = Subject.objects.create(owner=bob, kind=Subject.Kind.OTHER, name="Someone")
    upload_files(
        bob_client,
        theirs,
        {"a.jpg": images.fixture_bytes("obama3.jpg"), "b.jpg": images.fixture_bytes("biden.jpg")},
    )
    run_photo_checks()

    verdicts = {r["name"]: r for r in check_results(theirs)}
    assert verdicts["a.jpg"] == {"name": "a.jpg", "ok": False, "verdict": checks.FACE_BLOCKED}
    assert verdicts["b.jpg"]["verdict"] != checks.FACE_BLOCKED
    assert list(theirs.photos.values_list("original_name", flat=True)) == ["b.jpg"]
    assert "Barack" not in checks.FACE_BLOCKED and "alice" not in checks.FACE_BLOCKED


def test_declining_can_block_the_face_in_the_photos(alice_client, bob, bob_client, barack):
    link = make_link(alice_client, barack)
    with committing():
        Client().post(link, {"answer": "decline", "block_face": "on"})
    assert FaceBlock.objects.count() == 1
    theirs = Subject.objects.create(owner=bob, kind=Subject.Kind.SELF, name="Bob")
    upload_files(bob_client, theirs, {"a.jpg": images.fixture_bytes("obama3.jpg")})
    run_photo_checks()
    assert check_results(theirs)[0]["verdict"] == checks.FACE_BLOCKED
    assert not theirs.photos.exists()


def test_a_revoked_consent_cannot_be_answered_again(alice_client, barack):
    link = make_link(alice_client, barack)
    agree(link)
    with committing():
        Client().post(link + "revoke", CONFIRM)
    again = agree(link)
    assert again.status_code == 400
    assert services.LINK_WITHDRAWN in text(again)
    assert barack.consents.get().status == Consent.Status.REVOKED


def test_an_operator_can_remove_a_wrong_block(admin_client):
    block = FaceBlock.objects.create(signature=[0.0] * 128)
    assert admin_client.get(reverse("admin:likeness_faceblock_changelist")).status_code == 200
    admin_client.post(reverse("admin:likeness_faceblock_delete", args=[block.pk]), {"post": "yes"})
    assert not FaceBlock.objects.exists()
