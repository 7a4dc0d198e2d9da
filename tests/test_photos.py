"""Reference photo uploads: checked, normalised, private; bad input refused and leaves nothing."""

import html
import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from creator.jobs.models import Task
from creator.likeness import checks, intake, selectors, services
from creator.likeness.models import ReferencePhoto
from imaging.limits import MESSAGES, Reason
from imaging.sniff import too_large
from tests import images
from tests.conftest import CONFIRM, committing, run_photo_checks, stored_files, upload_files
from tests.test_imaging import BAD_INPUTS, message_pattern

pytestmark = pytest.mark.usefixtures("private_media")


def upload(client, subject, files):
    return upload_files(client, subject, files)


def test_three_obama_photos_are_accepted_as_one_person(alice_client, alice_subject):
    response = upload(
        alice_client,
        alice_subject,
        {n: images.fixture_bytes(n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")},
    )
    assert response.status_code == 302
    assert alice_subject.photos.filter(status="checking").count() == 3

    run_photo_checks()

    statuses = set(alice_subject.photos.values_list("status", "verdict"))
    assert statuses == {(ReferencePhoto.Status.OK, checks.LOOKS_GOOD)}
    for photo in alice_subject.photos.all():
        assert len(photo.embedding) == 128
        crop = Image.open(photo.crop.open())
        assert crop.size == (512, 512)


def test_adding_biden_is_flagged_as_a_different_person(alice_client, alice_subject):
    upload(
        alice_client,
        alice_subject,
        {n: images.fixture_bytes(n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")},
    )
    run_photo_checks()

    upload(alice_client, alice_subject, {"biden.jpg": images.fixture_bytes("biden.jpg")})
    run_photo_checks()

    biden = alice_subject.photos.get(original_name="biden.jpg")
    assert (biden.status, biden.verdict) == (
        ReferencePhoto.Status.FLAGGED,
        checks.DIFFERENT_PERSON,
    )
    assert alice_subject.photos.filter(status="ok").count() == 3
    readiness = selectors.subject_readiness(alice_subject)
    assert not readiness.ready
    assert any("need attention" in r for r in readiness.reasons)

    # Removing the outlier clears the flag for the rest of the set.
    alice_client.post(reverse("photo_delete", args=[alice_subject.pk, biden.pk]), CONFIRM)
    assert not alice_subject.photos.filter(status="flagged").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("two_faces_composite.jpg", checks.SEVERAL_FACES.format(count=2)),
        ("skimage_coffee.png", checks.NO_FACE),
    ],
)
def test_photos_without_exactly_one_face_are_refused_and_deleted(
    alice_client, alice_subject, private_media, name, message
):
    upload(alice_client, alice_subject, {name: images.fixture_bytes(name)})
    run_photo_checks()

    assert not alice_subject.photos.exists()
    assert stored_files(private_media) == []
    task = Task.objects.get(kind="photo_check")
    assert task.details["results"] == [{"name": name, "ok": False, "verdict": message}]
    page = alice_client.get(reverse("subject_detail", args=[alice_subject.pk])).content.decode()
    assert name in page
    assert message.split(".")[0].replace("'", "&#x27;") in page


def test_a_blurred_photo_is_refused(alice_client, alice_subject):
    data = images.encode(images.blurred(images.astronaut_variant(0)), quality=95)
    upload(alice_client, alice_subject, {"soft.jpg": data})
    run_photo_checks()
    assert Task.objects.get().details["results"][0]["verdict"] == checks.BLURRED
    assert not alice_subject.photos.exists()


def test_a_face_too_small_is_refused(alice_client, alice_subject, settings):
    settings.PHOTO_MIN_FACE_PX = 200  # the astronaut's face is ~90 px wide
    upload(alice_client, alice_subject, {"far.jpg": images.encode(images.astronaut_variant(0))})
    run_photo_checks()
    verdict = Task.objects.get().details["results"][0]["verdict"]
    assert verdict.startswith("The face is too small")


def test_a_photo_with_gps_exif_is_stored_without_any_metadata(alice_client, alice_subject):
    data = images.jpeg_with_gps(images.astronaut_variant(1))
    assert b"PhoneMaker" in data and Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)

    upload(alice_client, alice_subject, {"holiday.jpg": data})

    stored = alice_subject.photos.get().image.open().read()
    assert b"PhoneMaker" not in stored and b"Exif" not in stored
    image = Image.open(io.BytesIO(stored))
    assert not image.getexif()
    assert "icc_profile" not in image.info


def test_the_upload_answers_at_once_and_queues_the_checks(alice_client, alice_subject):
    response = upload(
        alice_client,
        alice_subject,
        {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(4)},
    )
    assert response.status_code == 302
    task = Task.objects.get()
    assert (task.kind, task.scope, task.status) == ("photo_check", alice_subject.scope, "queued")
    assert task.link == reverse("subject_detail", args=[alice_subject.pk])
    page = alice_client.get(reverse("subject_detail", args=[alice_subject.pk])).content.decode()
    assert "Checking 4 photo(s) of Alice" in page
    assert "still being checked" in page


def test_variants_of_one_face_make_a_set_ready_except_for_consent(alice_client, alice_subject):
    upload(
        alice_client,
        alice_subject,
        {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(8)},
    )
    run_photo_checks()

    readiness = selectors.subject_readiness(alice_subject)
    assert readiness.ok == 8
    assert readiness.reasons == ["Give consent with a fresh selfie (the likeness lock)."]


def test_a_near_duplicate_is_refused_at_upload(alice_client, alice_subject, private_media):
    original = images.astronaut_variant(2)
    upload(alice_client, alice_subject, {"a.jpg": images.encode(original, quality=95)})
    before = stored_files(private_media)

    response = upload(alice_client, alice_subject, {"b.jpg": images.encode(original, quality=70)})

    page = alice_client.get(response.url).content.decode()
    assert "b.jpg: This is a near-copy of “a.jpg”" in page
    assert alice_subject.photos.count() == 1
    assert stored_files(private_media) == before


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.jpg", b"", intake.EMPTY),
        ("cut.jpg", images.encode(images.astronaut())[:5000], intake.DAMAGED),
        ("notes.jpg", b"Just some text, honestly.\n" * 10, intake.HTML_OR_TEXT),
        ("page.jpg", b"<!doctype html><html><body>hi</body></html>", intake.HTML_OR_TEXT),
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
            intake.SVG,
        ),
        (
            "bomb.png",
            images.png_declaring(50000, 50000),
            intake.TOO_MANY_PIXELS.format(width=50000, height=50000, limit="50"),
        ),
        ("moving.gif", images.animated_gif(), intake.ANIMATED),
        (
            "dot.png",
            images.encode(Image.new("RGB", (1, 1)), "PNG"),
            intake.TOO_SMALL.format(width=1, height=1, min=256),
        ),
    ],
)
def test_bad_files_get_a_specific_message_and_leave_nothing(
    alice_client, alice_subject, private_media, name, data, message
):
    response = upload(alice_client, alice_subject, {name: data})

    page = alice_client.get(response.url).content.decode().replace("&#x27;", "'")
    assert f"{name}: {message}" in page.replace("&quot;", '"')
    assert not ReferencePhoto.objects.exists()
    assert not Task.objects.exists()
    assert stored_files(private_media) == []


# The photo page's own words where it has them; imaging's otherwise.
PHOTO_WORDING = {
    Reason.EMPTY: [intake.EMPTY],
    Reason.DAMAGED: [intake.DAMAGED],
    Reason.TEXT: [intake.HTML_OR_TEXT],
    Reason.SVG: [intake.SVG],
    Reason.NOT_AN_IMAGE: [intake.NOT_AN_IMAGE],
    Reason.UNSUPPORTED: [intake.UNSUPPORTED],
    Reason.ANIMATED: [intake.ANIMATED],
    Reason.TOO_SMALL: [intake.TOO_SMALL],
    Reason.TOO_MANY_PIXELS: [intake.TOO_MANY_PIXELS, intake.TOO_MANY_PIXELS_UNKNOWN],
}


@pytest.mark.parametrize("name", [name for name, case in BAD_INPUTS.items() if case[2]])
def test_every_bad_input_gets_a_specific_message_and_leaves_nothing(
    alice_client, alice_subject, private_media, name
):
    data, _, refused = BAD_INPUTS[name]
    response = upload(alice_client, alice_subject, {"upload.jpg": data})

    assert response.status_code == 302
    page = html.unescape(alice_client.get(response.url).content.decode())
    wording = PHOTO_WORDING.get(refused) or [MESSAGES[refused]]
    pattern = "|".join(message_pattern(text).pattern for text in wording)
    assert re.search(f"upload.jpg: (?:{pattern})", page), name
    assert not ReferencePhoto.objects.exists()
    assert stored_files(private_media) == []


def test_a_phone_photo_with_a_second_picture_inside_is_a_still_photo(alice_client, alice_subject):
    # Phones store portrait-mode depth or previews as a second image (MPO): not an animation.
    first, second = images.astronaut_variant(0), images.astronaut_variant(0).resize((256, 256))
    data = images.encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    upload(alice_client, alice_subject, {"portrait.jpg": data})
    assert Image.open(alice_subject.photos.get().image.open()).size == (512, 512)


def test_a_file_over_the_byte_limit_is_refused_unread(alice_client, alice_subject, settings):
    settings.PHOTO_MAX_BYTES = 10_000
    data = images.encode(images.astronaut())
    response = upload(alice_client, alice_subject, {"big.jpg": data})
    page = alice_client.get(response.url).content.decode()
    assert f"big.jpg: {too_large(len(data), 10_000)}" in page
    assert "the limit is 0.01 MB" in page
    assert not ReferencePhoto.objects.exists()


def test_too_many_files_in_one_request_are_all_refused(alice_client, alice_subject, settings):
    settings.PHOTO_MAX_FILES_PER_UPLOAD = 2
    files = {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(3)}
    response = upload(alice_client, alice_subject, files)
    page = alice_client.get(response.url).content.decode().replace("&#x27;", "'")
    assert services.TOO_MANY_FILES.format(count=3, limit=2) in page
    assert not ReferencePhoto.objects.exists()


@pytest.mark.parametrize(
    "make",
    [images.cmyk_jpeg, images.png_16bit_grey, images.palette_png, images.exif_rotated],
    ids=["cmyk", "16-bit", "palette", "exif-rotated"],
)
def test_unusual_but_valid_photos_are_normalised(alice_client, alice_subject, make):
    source = images.astronaut_variant(3)
    upload(alice_client, alice_subject, {"odd": make(source)})

    photo = alice_subject.photos.get()
    stored = Image.open(photo.image.open())
    assert (stored.mode, stored.format, stored.size) == ("RGB", "JPEG", (512, 512))
    # Same picture, the right way up, with sensible tones (not clipped to white or black).
    grey = lambda im: np.asarray(im.convert("L").resize((32, 32)), dtype=np.float64)  # noqa: E731
    assert np.abs(grey(stored) - grey(source)).mean() < 20
    run_photo_checks()
    photo.refresh_from_db()
    assert photo.status == ReferencePhoto.Status.OK


def test_heic_photos_from_phones_are_accepted(alice_client, alice_subject):
    import pillow_heif

    heif = pillow_heif.from_pillow(images.astronaut_variant(4))
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    upload(alice_client, alice_subject, {"IMG_0001.HEIC": buffer.getvalue()})
    assert Image.open(alice_subject.photos.get().image.open()).size == (512, 512)


def test_the_sniffer_trusts_bytes_not_names(alice_client, alice_subject):
    png = images.encode(images.astronaut_variant(5), "PNG")
    upload(alice_client, alice_subject, {"photo.gif": png})
    assert alice_subject.photos.get().original_name == "photo.gif"


def test_photos_are_served_only_to_their_owner(alice_client, bob_client, anonymous, alice_subject):
    upload(alice_client, alice_subject, {"me.jpg": images.encode(images.astronaut_variant(0))})
    run_photo_checks()
    photo = alice_subject.photos.get()

    for variant in ("photo", "thumb", "crop"):
        url = reverse("photo_file", args=[alice_subject.pk, photo.pk, variant])
        response = alice_client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert "private" in response["Cache-Control"]
        assert bob_client.get(url).status_code == 404
        assert anonymous.get(url).status_code == 302
    assert (
        alice_client.get(
            reverse("photo_file", args=[alice_subject.pk, photo.pk, "delete"])
        ).status_code
        == 404
    )


def test_photo_files_are_not_under_a_public_url(alice_client, alice_subject, anonymous):
    upload(alice_client, alice_subject, {"me.jpg": images.encode(images.astronaut_variant(0))})
    name = alice_subject.photos.get().image.name
    assert anonymous.get("/media/" + name).status_code == 404
    assert anonymous.get("/static/" + name).status_code == 404


def test_removing_a_photo_deletes_its_files(alice_client, alice_subject, private_media):
    upload(alice_client, alice_subject, {"me.jpg": images.encode(images.astronaut_variant(0))})
    run_photo_checks()
    photo = alice_subject.photos.get()
    assert len(stored_files(private_media)) == 3  # photo, thumbnail, face crop

    with committing():
        alice_client.post(reverse("photo_delete", args=[alice_subject.pk, photo.pk]), CONFIRM)

    assert stored_files(private_media) == []


def test_with_redis_down_an_upload_stores_nothing_and_says_why(
    alice_client, alice_subject, private_media, settings
):
    from creator.jobs import runtime

    settings.RQ_QUEUES = {
        name: {**conf, "URL": "unix:///nonexistent/redis.sock"}
        for name, conf in settings.RQ_QUEUES.items()
    }
    response = upload(
        alice_client, alice_subject, {"me.jpg": images.encode(images.astronaut_variant(0))}
    )
    page = alice_client.get(response.url).content.decode().replace("&#x27;", "'")
    assert runtime.QUEUE_UNAVAILABLE in page
    assert stored_files(private_media) == []
    assert not ReferencePhoto.objects.exists()
