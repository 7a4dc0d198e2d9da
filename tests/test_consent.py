"""The likeness lock: consent by a fresh selfie, consent links, revocation, deletion."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from creator.accounts.models import User
from creator.jobs import services as jobs
from creator.jobs.models import Task
from creator.likeness import checks, selectors, services
from creator.likeness.models import Consent, ReferencePhoto, Subject
from creator.studio.models import PersonalModel
from tests import images
from tests.conftest import (
    CONFIRM,
    PASSWORD,
    committing,
    run_photo_checks,
    stored_files,
    upload_files,
)

# These tests send the consent selfie as a picture file (the weaker path); the live camera check
# has its own tests in test_liveness.py.
pytestmark = pytest.mark.usefixtures("private_media", "picture_consent")


OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")


def with_photos(client, subject, names):
    upload_files(client, subject, {n: images.fixture_bytes(n) for n in names})
    run_photo_checks()


def send_selfie(client, subject, data: bytes, *, agree=True):
    form = {"selfie": SimpleUploadedFile("selfie.jpg", data)}
    if agree:
        form["agree"] = "on"
    with committing():
        return client.post(reverse("consent_selfie", args=[subject.pk]), form)


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


def test_a_selfie_from_one_obama_photo_is_accepted_against_the_other_two(
    alice_client, alice_subject
):
    with_photos(alice_client, alice_subject, OBAMA[:2])

    response = send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))

    assert response.status_code == 302
    consent = alice_subject.consents.get()
    assert (consent.status, consent.method) == (Consent.Status.GRANTED, Consent.Method.SELFIE)
    assert len(consent.distances) == 2 and consent.max_distance < 0.6
    assert len(consent.selfie_sha256) == 64 and len(consent.selfie_embedding) == 128


def test_no_selfie_image_is_kept(alice_client, alice_subject, private_media):
    with_photos(alice_client, alice_subject, OBAMA[:2])
    before = stored_files(private_media)
    send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))
    assert stored_files(private_media) == before
    page = text(alice_client.get(reverse("consent_selfie", args=[alice_subject.pk])))
    assert "We don't keep the camera frames or any selfie" in page


def test_a_selfie_of_someone_else_is_refused(alice_client, alice_subject):
    with_photos(alice_client, alice_subject, OBAMA)

    response = send_selfie(alice_client, alice_subject, images.fixture_bytes("biden.jpg"))

    assert response.status_code == 400
    assert "The selfie doesn't match 3 of the reference photos" in text(response)
    assert not alice_subject.consents.exists()


def test_one_of_the_reference_photos_is_not_a_fresh_selfie(alice_client, alice_subject):
    with_photos(alice_client, alice_subject, OBAMA)
    response = send_selfie(alice_client, alice_subject, images.fixture_bytes("obama2.jpg"))
    assert checks.SELFIE_IS_A_REFERENCE in text(response)
    assert not alice_subject.consents.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("skimage_coffee.png", checks.SELFIE_NO_FACE),
        ("two_faces_composite.jpg", checks.SELFIE_SEVERAL_FACES),
    ],
)
def test_a_selfie_needs_exactly_one_face(alice_client, alice_subject, name, message):
    with_photos(alice_client, alice_subject, OBAMA[:2])
    response = send_selfie(alice_client, alice_subject, images.fixture_bytes(name))
    assert message in text(response)


def test_consent_needs_the_box_ticked(alice_client, alice_subject):
    with_photos(alice_client, alice_subject, OBAMA[:2])
    response = send_selfie(
        alice_client, alice_subject, images.fixture_bytes("obama3.jpg"), agree=False
    )
    assert services.SELFIE_MUST_AGREE in text(response)
    assert not alice_subject.consents.exists()


def test_a_set_with_another_person_cannot_be_consented_and_says_why(alice_client, alice_subject):
    with_photos(alice_client, alice_subject, ("obama.jpg", "obama2.jpg", "biden.jpg"))
    assert (
        alice_subject.photos.get(original_name="biden.jpg").status == ReferencePhoto.Status.FLAGGED
    )

    response = send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))

    assert "doesn't match 1 of the reference photos (“biden.jpg”)" in text(response)
    readiness = selectors.subject_readiness(alice_subject)
    assert not readiness.ready


def test_photos_added_after_consent_must_match_the_consenting_selfie(alice_client, alice_subject):
    with_photos(alice_client, alice_subject, OBAMA[:2])
    send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))

    with_photos(alice_client, alice_subject, ("biden.jpg",))

    biden = alice_subject.photos.get(original_name="biden.jpg")
    assert (biden.status, biden.verdict) == (
        ReferencePhoto.Status.FLAGGED,
        checks.NOT_CONSENTING_PERSON,
    )
    page = text(alice_client.get(reverse("subject_detail", args=[alice_subject.pk])))
    assert "Not ready to train yet" in page
    assert checks.NOT_CONSENTING_PERSON in page


def test_a_consented_set_of_one_person_is_ready_to_train(alice_client, alice_subject):
    upload_files(
        alice_client,
        alice_subject,
        {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(7)},
    )
    run_photo_checks()
    selfie = images.encode(images.astronaut_variant(7))

    send_selfie(alice_client, alice_subject, selfie)

    readiness = selectors.subject_readiness(alice_subject)
    assert readiness.ready, readiness.reasons
    page = text(alice_client.get(reverse("subject_detail", args=[alice_subject.pk])))
    assert "Ready to train" in page


# --- someone else: the consent link ---------------------------------------------------------


@pytest.fixture
def bobs_friend(alice, alice_client):
    subject = Subject.objects.create(owner=alice, kind=Subject.Kind.OTHER, name="Barack")
    with_photos(alice_client, subject, OBAMA[:2])
    return subject


def create_link(client, subject, email="barack@example.com") -> str:
    response = client.post(reverse("consent_link_create", args=[subject.pk]), {"email": email})
    page = text(client.get(response.url))
    return re.search(r'value="(http://testserver/consent/[^"]+/)"', page).group(1)


def answer(link, answer="agree", selfie=None, **extra):
    data = {"answer": answer, "signed_name": "Barack O.", **extra}
    if answer == "agree":
        data["agree"] = "on"
    if selfie is not None:
        data["selfie"] = SimpleUploadedFile("selfie.jpg", selfie)
    with committing():
        return Client().post(link, data)


def test_the_link_is_shown_emailed_and_tells_the_subject_who_asks(alice_client, bobs_friend):
    link = create_link(alice_client, bobs_friend)

    assert len(mail.outbox) == 1
    assert link in mail.outbox[0].body
    assert mail.outbox[0].to == ["barack@example.com"]
    page = text(Client().get(link))
    assert "@alice asks for your consent" in page
    assert "Barack" in page
    assert page.count("/photos/") >= 2  # they see the photos a model would learn from
    consent = bobs_friend.consents.get()
    assert consent.token_hash and link.rstrip("/").rsplit("/", 1)[-1] not in consent.token_hash


def test_the_subject_agrees_with_a_matching_selfie_and_the_link_works_once(
    alice_client, bobs_friend
):
    link = create_link(alice_client, bobs_friend)

    response = answer(link, selfie=images.fixture_bytes("obama3.jpg"))

    assert response.status_code == 302
    consent = bobs_friend.consents.get()
    assert (consent.status, consent.signed_name) == (Consent.Status.GRANTED, "Barack O.")
    again = answer(link, selfie=images.fixture_bytes("obama3.jpg"))
    assert again.status_code == 400
    assert services.LINK_USED in text(again)
    assert "Withdraw my consent" in text(Client().get(link))
    assert consent.selfie_method == Consent.SelfieMethod.UPLOAD


def test_someone_else_cannot_consent_through_the_link(alice_client, bobs_friend):
    link = create_link(alice_client, bobs_friend)
    response = answer(link, selfie=images.fixture_bytes("biden.jpg"))
    assert "The selfie doesn't match" in text(response)
    assert bobs_friend.consents.get().status == Consent.Status.PENDING


def test_the_subject_can_decline(alice_client, bobs_friend):
    link = create_link(alice_client, bobs_friend)
    answer(link, answer="decline")
    assert bobs_friend.consents.get().status == Consent.Status.DECLINED
    assert "You declined" in text(Client().get(link))
    assert not selectors.subject_readiness(bobs_friend).ready


def test_an_expired_link_is_refused(alice_client, bobs_friend):
    link = create_link(alice_client, bobs_friend)
    Consent.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    response = answer(link, selfie=images.fixture_bytes("obama3.jpg"))

    assert services.LINK_EXPIRED in text(response)
    assert bobs_friend.consents.get().status == Consent.Status.PENDING


def test_an_unknown_link_is_a_404(db):
    response = Client().get(reverse("consent_link", args=["not-a-real-token"]))
    assert response.status_code == 404
    assert services.LINK_INVALID.replace("'", "&#x27;") in response.content.decode()


def test_a_new_link_replaces_the_old_one(alice_client, bobs_friend):
    old = create_link(alice_client, bobs_friend)
    new = create_link(alice_client, bobs_friend)
    assert Client().get(old).status_code == 200
    assert answer(old, selfie=images.fixture_bytes("obama3.jpg")).status_code == 400
    assert answer(new, selfie=images.fixture_bytes("obama3.jpg")).status_code == 302


# --- revocation and deletion ----------------------------------------------------------------


def give_model(subject: Subject) -> PersonalModel:
    consent = subject.active_consent()
    name = default_storage.save(f"models/{subject.owner_id}/lora.safetensors", ContentFile(b"lora"))
    return PersonalModel.objects.create(subject=subject, consent=consent, lora=name)


def test_revoking_stops_training_and_deletes_models(
    alice, alice_client, alice_subject, private_media
):
    with_photos(alice_client, alice_subject, OBAMA[:2])
    send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))
    model = give_model(alice_subject)
    with committing():
        training = jobs.task_start(
            owner=alice,
            scope=alice_subject.scope,
            kind="training",
            label="Training",
            job="tests.jobs.count_slowly",
        )
    model.task = training
    model.save(update_fields=["task"])
    lora_path = private_media / model.lora.name

    with committing():
        alice_client.post(reverse("consent_revoke", args=[alice_subject.pk]), CONFIRM)

    consent = alice_subject.consents.get()
    assert (consent.status, consent.revoked_by) == (Consent.Status.REVOKED, "creator")
    training.refresh_from_db()
    assert training.status == Task.Status.CANCELLED
    assert not PersonalModel.objects.exists()
    assert not lora_path.exists()
    assert not selectors.subject_readiness(alice_subject).ready


def test_the_subject_can_revoke_through_their_link(alice_client, bobs_friend):
    link = create_link(alice_client, bobs_friend)
    answer(link, selfie=images.fixture_bytes("obama3.jpg"))
    give_model(bobs_friend)

    with committing():
        Client().post(link + "revoke", CONFIRM)

    consent = bobs_friend.consents.get()
    assert (consent.status, consent.revoked_by) == (Consent.Status.REVOKED, "subject")
    assert not PersonalModel.objects.exists()


def test_deleting_a_subject_removes_its_files_and_keeps_a_revoked_record(
    alice_client, alice_subject, private_media
):
    with_photos(alice_client, alice_subject, OBAMA[:2])
    send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))
    give_model(alice_subject)
    assert stored_files(private_media)

    with committing():
        alice_client.post(reverse("subject_delete", args=[alice_subject.pk]), CONFIRM)

    assert stored_files(private_media) == []
    assert not Subject.objects.exists()
    record = Consent.objects.get()
    assert record.status == Consent.Status.REVOKED
    assert record.selfie_embedding is None and record.distances == {}


def test_deleting_the_account_removes_everything(alice, alice_client, alice_subject, private_media):
    with_photos(alice_client, alice_subject, OBAMA[:2])

    wrong = alice_client.post(reverse("account_delete"), {"password": "nope"})
    assert wrong.status_code == 400
    with committing():
        alice_client.post(reverse("account_delete"), {"password": PASSWORD})

    assert not User.objects.filter(handle="alice").exists()
    assert stored_files(private_media) == []


# --- other creators see nothing ------------------------------------------------------------


def test_another_creator_gets_404_on_every_subject_photo_and_consent_url(
    alice_client, bob_client, alice_subject
):
    with_photos(alice_client, alice_subject, OBAMA[:1])
    photo = alice_subject.photos.get()
    pk = alice_subject.pk
    gets = [
        reverse("subject_detail", args=[pk]),
        reverse("consent_selfie", args=[pk]),
        *(reverse("photo_file", args=[pk, photo.pk, v]) for v in ("photo", "thumb", "crop")),
    ]
    posts = [
        reverse("subject_delete", args=[pk]),
        reverse("photos_upload", args=[pk]),
        reverse("photo_delete", args=[pk, photo.pk]),
        reverse("consent_selfie", args=[pk]),
        reverse("consent_link_create", args=[pk]),
        reverse("consent_revoke", args=[pk]),
    ]
    for url in gets:
        assert bob_client.get(url).status_code == 404, url
    for url in posts:
        assert bob_client.post(url, CONFIRM).status_code == 404, url
    assert Subject.objects.filter(pk=pk).exists()
    assert alice_subject.photos.count() == 1


def test_creating_a_subject_for_someone_else_needs_their_name(alice_client):
    response = alice_client.post(
        reverse("subject_create"), {"kind": "other", "name": ""}, follow=True
    )
    assert "Give the name of the person in the photos." in text(response)
    assert not Subject.objects.exists()
    response = alice_client.post(reverse("subject_create"), {"kind": "self"})
    subject = Subject.objects.get()
    assert response.url == reverse("subject_detail", args=[subject.pk])
    assert subject.name == "@alice"
