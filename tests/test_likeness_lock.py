"""The likeness lock holds: a photo is usable only once every check, identity included, passed;
training re-verifies every photo against the consent; consent links show only what they should;
refused input changes nothing."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.validators import validate_email
from django.urls import reverse
from django.utils import timezone
from PIL import ImageOps

from creator.engine.faces import FaceEngine
from creator.jobs import runtime
from creator.jobs import services as jobs
from creator.jobs.models import Task
from creator.likeness import checks, selectors, services
from creator.likeness.models import Consent, ReferencePhoto, Subject
from creator.studio import services as studio
from creator.studio.models import PersonalModel
from tests import images
from tests.conftest import committing, run_photo_checks, upload_files
from tests.test_consent import answer, create_link, send_selfie, text, with_photos

# Consent selfies go as picture files here (the weaker path); see test_liveness.py for the camera.
pytestmark = pytest.mark.usefixtures("private_media", "picture_consent")


def mirrored(name: str) -> bytes:
    """A third photo of the same person: the fixture mirrored (not a near-copy of it)."""
    return images.encode(ImageOps.mirror(images.Image.open(images.FACES / name).convert("RGB")))


@pytest.fixture
def consented_obama(alice_client, alice_subject):
    """Three good photos of Obama and his consent selfie: ready to train."""
    upload_files(
        alice_client,
        alice_subject,
        {
            "obama.jpg": images.fixture_bytes("obama.jpg"),
            "obama2.jpg": images.fixture_bytes("obama2.jpg"),
            "obama-mirrored.jpg": mirrored("obama.jpg"),
        },
    )
    run_photo_checks()
    send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))
    assert selectors.subject_readiness(alice_subject).ready
    return alice_subject


def run_check_cancelled_while_loading(monkeypatch, client) -> Task:
    """Run the queued photo check as a worker would, pressing Cancel on its progress card
    while it loads the face models."""
    task = Task.objects.get(kind="photo_check", status=Task.Status.QUEUED)

    class CancelledWhileLoading:
        @staticmethod
        def get():
            client.post(reverse("task_cancel", args=[task.pk]))
            return FaceEngine.get()

    monkeypatch.setattr("creator.likeness.jobs.FaceEngine", CancelledWhileLoading)
    run_photo_checks()
    task.refresh_from_db()
    return task


def subject_page(client, subject) -> str:
    return text(client.get(reverse("subject_detail", args=[subject.pk])))


# --- a photo is usable only when every check passed ------------------------------------------


def test_cancelling_the_check_does_not_let_another_person_through(
    alice_client, consented_obama, monkeypatch
):
    upload_files(alice_client, consented_obama, {"biden.jpg": images.fixture_bytes("biden.jpg")})

    task = run_check_cancelled_while_loading(monkeypatch, alice_client)

    assert task.status == Task.Status.CANCELLED
    assert ReferencePhoto.objects.get(original_name="biden.jpg").status != "ok"
    assert not selectors.subject_readiness(consented_obama).ready
    page = subject_page(alice_client, consented_obama)
    assert "Ready to train" not in page
    with pytest.raises(studio.Refused):
        studio.training_start(subject=consented_obama)
    assert not PersonalModel.objects.exists()
    assert not Task.objects.filter(kind="training").exists()
    # It says why, and what to do.
    assert checks.CHECK_STOPPED in page
    biden = ReferencePhoto.objects.select_related("check_task").get(original_name="biden.jpg")
    assert biden.check_stopped
    readiness = selectors.subject_readiness(consented_obama)
    assert (readiness.ok, readiness.stopped) == (3, 1)
    assert readiness.reasons == [selectors.CHECKS_STOPPED.format(count=1)]


def test_a_check_that_crashes_after_some_photos_leaves_them_all_unusable(
    alice_client, alice_subject, monkeypatch
):
    upload_files(
        alice_client,
        alice_subject,
        {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(3)},
    )
    real_check = checks.photo_check
    seen = []

    def crash_on_the_third(photo, engine=None):
        seen.append(photo)
        if len(seen) == 3:
            raise RuntimeError("dlib fell over")
        return real_check(photo, engine)

    monkeypatch.setattr(checks, "photo_check", crash_on_the_third)

    with pytest.raises(RuntimeError):
        run_photo_checks()

    task = Task.objects.get(kind="photo_check")
    assert (task.status, task.error) == (Task.Status.FAILED, runtime.JOB_CRASHED)
    assert not alice_subject.photos.filter(status="ok").exists()
    photos = list(selectors.subject_photos(alice_subject))
    assert sum(bool(p.embedding) for p in photos) == 2  # their face checks had passed
    assert all(p.status == ReferencePhoto.Status.CHECKING and p.check_stopped for p in photos)
    readiness = selectors.subject_readiness(alice_subject)
    assert (readiness.ok, readiness.checking, readiness.stopped) == (0, 0, 3)
    assert selectors.CHECKS_STOPPED.format(count=3) in readiness.reasons


def test_a_worker_killed_after_the_face_checks_leaves_the_photo_unusable(
    alice_client, consented_obama, redis_conn
):
    upload_files(alice_client, consented_obama, {"biden.jpg": images.fixture_bytes("biden.jpg")})
    task = Task.objects.get(kind="photo_check", status=Task.Status.QUEUED)
    biden = ReferencePhoto.objects.get(original_name="biden.jpg")
    # The worker took the job, ran the face checks on the photo, and died before the end.
    Task.objects.filter(pk=task.pk).update(
        status=Task.Status.RUNNING,
        worker_name="gone",
        updated_at=timezone.now() - timedelta(minutes=5),
    )
    assert checks.photo_check(biden).ok

    jobs.tasks_reconcile(tasks=[Task.objects.get(pk=task.pk)])

    task.refresh_from_db()
    assert (task.status, task.error) == (Task.Status.FAILED, runtime.WORKER_DIED)
    assert ReferencePhoto.objects.get(pk=biden.pk).status != "ok"
    assert not selectors.subject_readiness(consented_obama).ready
    assert ReferencePhoto.objects.select_related("check_task").get(pk=biden.pk).check_stopped
    page = subject_page(alice_client, consented_obama)
    assert checks.CHECK_STOPPED in page
    assert reverse("task_retry", args=[task.pk]) in page


def test_retrying_a_stopped_check_finishes_it(alice_client, consented_obama, monkeypatch):
    upload_files(alice_client, consented_obama, {"biden.jpg": images.fixture_bytes("biden.jpg")})
    task = run_check_cancelled_while_loading(monkeypatch, alice_client)
    monkeypatch.undo()
    assert reverse("task_retry", args=[task.pk]) in subject_page(alice_client, consented_obama)

    with committing():
        alice_client.post(reverse("task_retry", args=[task.pk]))
    run_photo_checks()

    biden = ReferencePhoto.objects.get(original_name="biden.jpg")
    assert (biden.status, biden.verdict) == (
        ReferencePhoto.Status.FLAGGED,
        checks.NOT_CONSENTING_PERSON,
    )
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED
    assert task.details["results"] == [
        {"name": "biden.jpg", "ok": False, "verdict": checks.NOT_CONSENTING_PERSON}
    ]


def test_a_stopped_check_is_not_taken_for_a_running_one_by_the_consent_selfie(
    alice_client, alice_subject, monkeypatch
):
    upload_files(
        alice_client,
        alice_subject,
        {n: images.fixture_bytes(n) for n in ("obama.jpg", "obama2.jpg")},
    )
    run_check_cancelled_while_loading(monkeypatch, alice_client)

    response = send_selfie(alice_client, alice_subject, images.fixture_bytes("obama3.jpg"))

    assert checks.SELFIE_CHECK_STOPPED in text(response)
    assert not alice_subject.consents.exists()


# --- training re-verifies every photo against the consent -----------------------------------


def test_training_refuses_a_photo_that_does_not_match_the_consent_whatever_its_status(
    alice_client, consented_obama
):
    with_photos(alice_client, consented_obama, ("biden.jpg",))
    # However it got there, a photo of someone else marked good must not be trained on.
    ReferencePhoto.objects.filter(original_name="biden.jpg").update(
        status=ReferencePhoto.Status.OK, verdict=checks.LOOKS_GOOD
    )
    assert selectors.subject_readiness(consented_obama).ready

    with pytest.raises(studio.Refused) as refused:
        studio.training_start(subject=consented_obama)

    assert refused.value.message == studio.PHOTOS_NOT_CONSENTED.format(count=1)
    response = alice_client.post(reverse("training_start", args=[consented_obama.pk]), follow=True)
    assert studio.PHOTOS_NOT_CONSENTED.format(count=1) in text(response)
    assert not PersonalModel.objects.exists()
    assert not Task.objects.filter(kind="training").exists()


def test_training_refuses_a_good_photo_without_a_face_signature(alice_client, consented_obama):
    ReferencePhoto.objects.filter(original_name="obama2.jpg").update(embedding=None)

    with pytest.raises(studio.Refused) as refused:
        studio.training_start(subject=consented_obama)

    assert refused.value.message == studio.PHOTOS_NOT_CONSENTED.format(count=1)
    assert not PersonalModel.objects.exists()


# --- consent links ---------------------------------------------------------------------------


@pytest.fixture
def barack(alice, alice_client):
    subject = Subject.objects.create(owner=alice, kind=Subject.Kind.OTHER, name="Barack")
    with_photos(alice_client, subject, ("obama.jpg", "obama2.jpg"))
    return subject


def long_email(length: int) -> str:
    local = "x" * 64
    domain = "d" * 63 + "." + "e" * 63 + ".com"
    padding = length - len(local) - 1 - len(domain) - 1
    address = f"{local}@{'f' * padding}.{domain}"
    assert len(address) == length
    return address


@pytest.mark.parametrize(
    "email",
    ["barack@example.com\nBcc: spam@example.org", "barack@example.com, x@y.org", long_email(255)],
    ids=["header-injection", "two-addresses", "255-characters"],
)
def test_a_refused_email_changes_nothing(alice_client, barack, email):
    first = create_link(alice_client, barack, email="")
    before = Consent.objects.get()

    response = alice_client.post(
        reverse("consent_link_create", args=[barack.pk]), {"email": email}, follow=True
    )

    assert list(Consent.objects.all()) == [before]
    before.refresh_from_db()
    assert before.status == Consent.Status.PENDING
    assert mail.outbox == []
    assert "I agree" in text(alice_client.get(first))
    assert services.EMAIL_INVALID in text(response)
    assert 'id="consent-link-url"' not in text(response)


def test_an_email_of_254_characters_is_accepted(alice_client, barack):
    email = long_email(254)
    validate_email(email)
    alice_client.post(reverse("consent_link_create", args=[barack.pk]), {"email": email})
    assert Consent.objects.get().invited_email == email
    assert mail.outbox[0].to == [email]


def photo_url(link: str, photo: ReferencePhoto) -> str:
    return f"{link}photos/{photo.pk}.jpg"


def test_the_link_shows_only_good_photos_that_were_there_when_it_was_made(alice_client, barack):
    with_photos(alice_client, barack, ("biden.jpg",))
    link = create_link(alice_client, barack)
    with_photos(alice_client, barack, ("obama3.jpg",))

    good = [barack.photos.get(original_name=n) for n in ("obama.jpg", "obama2.jpg")]
    flagged = barack.photos.get(original_name="biden.jpg")
    later = barack.photos.get(original_name="obama3.jpg")
    assert flagged.status == ReferencePhoto.Status.FLAGGED
    assert later.status == ReferencePhoto.Status.OK
    page = text(alice_client.get(link))
    for photo in good:
        assert f"/photos/{photo.pk}.jpg" in page
        assert alice_client.get(photo_url(link, photo)).status_code == 200
    for photo in (flagged, later):
        assert f"/photos/{photo.pk}.jpg" not in page
        assert alice_client.get(photo_url(link, photo)).status_code == 404


def expire(link):
    Consent.objects.update(expires_at=timezone.now() - timedelta(minutes=1))


def agree(link):
    assert answer(link, selfie=images.fixture_bytes("obama3.jpg")).status_code == 302


def decline(link):
    answer(link, answer="decline")


@pytest.mark.parametrize("end", [expire, agree, decline], ids=["expired", "agreed", "declined"])
def test_the_link_stops_showing_photos_once_expired_or_answered(alice_client, barack, end):
    link = create_link(alice_client, barack)
    photo = barack.photos.first()
    assert alice_client.get(photo_url(link, photo)).status_code == 200

    end(link)

    page = text(alice_client.get(link))
    assert "/photos/" not in page
    assert alice_client.get(photo_url(link, photo)).status_code == 404


# --- names are refused, not cut ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["self", "other"])
def test_a_subject_name_over_the_limit_is_refused(alice_client, kind):
    response = alice_client.post(
        reverse("subject_create"), {"kind": kind, "name": "N" * 81}, follow=True
    )
    assert not Subject.objects.exists()
    assert services.NAME_TOO_LONG in text(response)

    alice_client.post(reverse("subject_create"), {"kind": kind, "name": "N" * 80})
    assert Subject.objects.get().name == "N" * 80


def test_a_signed_name_over_the_limit_is_refused(alice_client, barack):
    link = create_link(alice_client, barack)

    response = answer(link, selfie=images.fixture_bytes("obama3.jpg"), signed_name="B" * 81)

    assert response.status_code == 400
    assert services.SIGNED_NAME_TOO_LONG in text(response)
    consent = Consent.objects.get()
    assert (consent.status, consent.signed_name) == (Consent.Status.PENDING, "")
    assert agree(link) is None
    assert Consent.objects.get().signed_name == "Barack O."
