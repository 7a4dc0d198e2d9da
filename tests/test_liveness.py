"""The live camera check on the consent pages: a challenge from the server (a random order of
moves, a one-time nonce, a time limit), a burst of frames back, judged for real by the face models.
The frames are the astronaut made to move (tests/videos.py)."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from creator.engine import liveness
from creator.likeness import checks, services
from creator.likeness.models import Challenge, Consent, SeenFrame, Subject
from tests import images, videos
from tests.conftest import committing, run_photo_checks, stored_files, upload_files

pytestmark = pytest.mark.usefixtures("private_media")


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


def error(response) -> str:
    """The page's one error message (what the person reads)."""
    found = re.search(r'<div class="form-errors" role="alert"><p>(.*?)</p>', text(response), re.S)
    return found.group(1) if found else ""


@pytest.fixture
def me(alice_client, alice_subject) -> Subject:
    files = {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(4)}
    upload_files(alice_client, alice_subject, files)
    run_photo_checks()
    return alice_subject


def challenge(client, subject) -> dict:
    response = client.post(reverse("consent_challenge", args=[subject.pk]))
    assert response.status_code == 200
    return response.json()


def jpegs(frames) -> list[bytes]:
    return [images.encode(f, "JPEG", quality=90) for f in frames]


def send(client, subject, nonce: str, frames: list[bytes], **extra):
    data = {
        "nonce": nonce,
        "frames": [SimpleUploadedFile(f"frame-{i}.jpg", f) for i, f in enumerate(frames, 1)],
        "agree": "on",
        **extra,
    }
    with committing():
        return client.post(reverse("consent_selfie", args=[subject.pk]), data)


def test_a_challenge_is_a_fresh_random_order_with_a_one_time_nonce(alice_client, me):
    first, second = challenge(alice_client, me), challenge(alice_client, me)

    assert sorted(first["steps"]) == sorted(liveness.STEPS)
    assert first["prompts"][first["steps"].index("left")] == "Turn your head to your left"
    assert first["nonce"] != second["nonce"] and first["frames"] == liveness.FRAMES
    stored = Challenge.objects.get(
        steps=first["steps"], nonce_hash=services.hash_token(first["nonce"])
    )
    assert first["nonce"] not in stored.nonce_hash  # only its hash is kept
    assert alice_client.get(reverse("consent_challenge", args=[me.pk])).status_code == 405


def test_a_challenge_needs_the_owner_and_a_csrf_token(alice, bob_client, me):
    assert bob_client.post(reverse("consent_challenge", args=[me.pk])).status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(reverse("consent_challenge", args=[me.pk])).status_code == 403


def test_following_the_challenge_gives_consent_and_keeps_scores_not_images(
    alice_client, me, private_media
):
    before = stored_files(private_media)
    issued = challenge(alice_client, me)

    response = send(
        alice_client, me, issued["nonce"], jpegs(videos.challenge_burst(issued["steps"]))
    )

    assert response.status_code == 302, text(response)
    consent = me.consents.get()
    assert (consent.status, consent.selfie_method) == (Consent.Status.GRANTED, "challenge")
    assert consent.liveness["steps"] == issued["steps"] and consent.liveness["frames"] == 12
    assert len(consent.liveness["yaw"]) == 12 and len(consent.selfie_embedding) == 128
    assert max(consent.distances.values()) < 0.6
    assert stored_files(private_media) == before  # no frame was stored
    assert SeenFrame.objects.count() == 12
    page = text(alice_client.get(reverse("subject_detail", args=[me.pk])))
    assert "with the live camera check" in page


def test_a_nonce_answers_once(alice_client, me):
    issued = challenge(alice_client, me)
    frames = jpegs(videos.challenge_burst(issued["steps"]))
    send(alice_client, me, issued["nonce"], [*frames[:3], b"not an image", *frames[4:]])

    again = send(
        alice_client, me, issued["nonce"], jpegs(videos.challenge_burst(issued["steps"], seed=9))
    )

    assert again.status_code == 400 and checks.CHALLENGE_USED in text(again)
    assert not me.consents.exists()


def test_frames_seen_before_are_a_replay_even_with_a_new_nonce(alice_client, me):
    issued = challenge(alice_client, me)
    frames = jpegs(videos.challenge_burst(issued["steps"]))
    Challenge.objects.update(steps=list(issued["steps"][::-1]))  # make the first try fail
    send(alice_client, me, issued["nonce"], frames)

    fresh = challenge(alice_client, me)
    replay = send(alice_client, me, fresh["nonce"], frames)

    assert checks.FRAMES_REPLAYED in text(replay)
    assert not me.consents.exists()


def test_a_challenge_answered_too_late_is_refused(alice_client, me, settings):
    issued = challenge(alice_client, me)
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = send(
        alice_client, me, issued["nonce"], jpegs(videos.challenge_burst(issued["steps"]))
    )
    seconds = settings.CONSENT_CHALLENGE_SECONDS
    assert checks.CHALLENGE_EXPIRED.format(seconds=seconds) in text(response)


def test_another_subjects_nonce_is_not_valid_here(alice, alice_client, me):
    other = Subject.objects.create(owner=alice, kind=Subject.Kind.SELF, name="Other")
    issued = challenge(alice_client, other)
    response = send(alice_client, me, issued["nonce"], jpegs(videos.still_burst()))
    assert checks.CHALLENGE_INVALID in text(response)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda steps: videos.still_burst(), checks.LIVENESS_MESSAGES["still"]),
        (
            lambda steps: videos.burst(videos.schedule([s for s in steps if s != "mouth"])),
            checks.LIVENESS_MESSAGES["not_mouth"],
        ),
        (
            lambda steps: videos.tilted_print_burst(),
            None,  # the first move asked is the one missing
        ),
    ],
    ids=["still photo", "no mouth", "tilted print"],
)
def test_a_burst_that_does_not_follow_the_challenge_is_refused(alice_client, me, make, message):
    issued = challenge(alice_client, me)
    response = send(alice_client, me, issued["nonce"], jpegs(make(issued["steps"])))
    assert response.status_code == 400
    message = message or checks.LIVENESS_MESSAGES[f"not_{issued['steps'][0]}"]
    assert message in error(response)
    assert not me.consents.exists()


def test_moves_in_another_order_are_refused_naming_the_order_asked(alice_client, me):
    issued = challenge(alice_client, me)
    response = send(
        alice_client, me, issued["nonce"], jpegs(videos.challenge_burst(issued["steps"][::-1]))
    )
    words = ", then ".join(checks.STEP_WORDS[s] for s in issued["steps"])
    assert f"Follow the prompts in their order: {words}." in text(response)


def test_another_person_is_refused_with_the_photos_they_dont_match(alice_client, me):
    issued = challenge(alice_client, me)
    frames = videos.burst(["neutral"] * 12, image=images_of("biden.jpg"))
    response = send(alice_client, me, issued["nonce"], jpegs(frames))
    assert "doesn't match 4 of the reference photos" in text(response)


def images_of(name: str):
    """A fixture photo as a camera frame: only resized to 640 px wide, never altered."""
    from PIL import Image

    image = Image.open(images.FACES / name).convert("RGB")
    return image.resize((640, round(image.height * 640 / image.width)), Image.Resampling.LANCZOS)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (bytes(range(256)) * 8, "Frame 3 of the camera check can't be read: This isn't an image"),
        (
            lambda: images.encode(images.astronaut().resize((100, 100))),
            "Frame 3 of the camera check can't be read: This image is only 100×100 pixels",
        ),
        (
            lambda: images.encode(images_of("two_faces_composite.jpg")),
            "There is more than one face in frame 3",
        ),
        (
            lambda: images.encode(images_of("skimage_coffee.png")),
            "We lost your face in frame 3",
        ),
    ],
    ids=["not an image", "tiny", "two faces", "no face"],
)
def test_a_bad_frame_is_named(alice_client, me, frame, message):
    issued = challenge(alice_client, me)
    frames = jpegs(videos.challenge_burst(issued["steps"]))
    frames[2] = frame() if callable(frame) else frame
    response = send(alice_client, me, issued["nonce"], frames)
    assert response.status_code == 400
    assert message in error(response)
    assert not me.consents.exists()


def test_a_huge_frame_or_too_many_frames_are_refused_before_reading(alice_client, me, settings):
    settings.CONSENT_FRAME_MAX_BYTES = 50_000
    issued = challenge(alice_client, me)
    big = send(alice_client, me, issued["nonce"], [b"x" * 60_000] * 12)
    assert "Frame 1 of the camera check can't be read" in text(big)
    assert "the limit is 0.05 MB" in error(big)
    many = send(alice_client, me, challenge(alice_client, me)["nonce"], [b"x"] * 17)
    assert "The camera check needs 12 frames; 17 arrived" in text(many)


def test_a_picture_file_is_refused_while_the_operator_requires_the_live_check(alice_client, me):
    data = {"selfie": SimpleUploadedFile("s.jpg", images.encode(images.astronaut_variant(7)))}
    response = alice_client.post(reverse("consent_selfie", args=[me.pk]), {**data, "agree": "on"})
    assert response.status_code == 400 and checks.UPLOAD_SWITCHED_OFF in text(response)
    nothing = alice_client.post(reverse("consent_selfie", args=[me.pk]), {"agree": "on"})
    assert checks.CHALLENGE_MISSING in text(nothing)
    assert not me.consents.exists()
    assert "No camera? Send a picture instead" not in text(
        alice_client.get(reverse("consent_selfie", args=[me.pk]))
    )


def test_the_weaker_picture_path_is_recorded_as_such_when_allowed(alice_client, me, settings):
    settings.CONSENT_REQUIRE_LIVENESS = False
    assert "No camera? Send a picture instead" in text(
        alice_client.get(reverse("consent_selfie", args=[me.pk]))
    )
    data = {"selfie": SimpleUploadedFile("s.jpg", images.encode(images.astronaut_variant(7)))}
    with committing():
        alice_client.post(reverse("consent_selfie", args=[me.pk]), {**data, "agree": "on"})
    consent = me.consents.get()
    assert consent.selfie_method == "upload" and consent.liveness == {}
    page = text(alice_client.get(reverse("subject_detail", args=[me.pk])))
    assert "a picture file (weaker: no live check)" in page


def test_the_person_behind_a_link_takes_the_same_check(alice, alice_client):
    subject = Subject.objects.create(owner=alice, kind=Subject.Kind.OTHER, name="Eileen")
    files = {f"e{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(3)}
    upload_files(alice_client, subject, files)
    run_photo_checks()
    _, token = services.consent_link_create(subject=subject)
    link = reverse("consent_link", args=[token])
    visitor = Client()
    issued = visitor.post(reverse("consent_link_challenge", args=[token])).json()
    frames = jpegs(videos.challenge_burst(issued["steps"]))
    data = {
        "answer": "agree", "agree": "on", "signed_name": "Eileen C.", "nonce": issued["nonce"],
        "frames": [SimpleUploadedFile(f"f{i}.jpg", f) for i, f in enumerate(frames)],
    }  # fmt: skip
    with committing():
        response = visitor.post(link, data)

    assert response.status_code == 302, text(response)
    consent = subject.consents.get()
    assert (consent.status, consent.selfie_method) == ("granted", "challenge")
    # Answered: no more challenges for this link.
    assert visitor.post(reverse("consent_link_challenge", args=[token])).status_code == 404
