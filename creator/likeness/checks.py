"""The face checks: a reference photo (one face, large enough, sharp) and a consent selfie (a new
photo of the person in every reference photo). Run in the photo-check job and on consent."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from config.files import private_name
from config.refusal import Refusal
from creator.engine import faces
from creator.likeness import intake
from creator.likeness.models import ReferencePhoto, Subject
from imaging.decode import jpeg_bytes
from imaging.phash import hamming

NO_FACE = "No face found. Use a photo where your face is clearly visible, facing the camera."
SEVERAL_FACES = (
    "There are {count} faces in this photo. Use photos with only the person to train on."
)
FACE_TOO_SMALL = (
    "The face is too small ({size} pixels wide; at least {min} needed). "
    "Use a closer photo or one with a higher resolution."
)
BLURRED = "This photo is blurred or out of focus. Use a sharp photo."
DIFFERENT_PERSON = "This looks like a different person than the rest of the photos."
DIFFERENT_PAIR = (
    "These photos don't look like the same person. Take the consent selfie to tell which one "
    "is right, or remove one."
)
NOT_CONSENTING_PERSON = "This looks like a different person than the one who gave consent."
LOOKS_GOOD = "Looks good."
FACE_CHECKS_PASSED = "Face checks passed; comparing it with the other photos and the consent."
CHECK_STOPPED = (
    "The check was stopped before it finished, so this photo can't be used. "
    "Retry the check, or remove this photo."
)

SELFIE_NO_FACE = (
    "We couldn't find a face in your selfie. Face the camera in good light and try again."
)
SELFIE_SEVERAL_FACES = (
    "There is more than one face in the selfie. Only the person in the photos should be in it."
)
SELFIE_NO_PHOTOS = "Add reference photos and wait for their checks to finish before giving consent."
SELFIE_STILL_CHECKING = (
    "Some photos are still being checked. Try again when the checks have finished."
)
SELFIE_CHECK_STOPPED = (
    "The check of some photos was stopped before it finished. Retry the check or remove "
    "those photos, then give consent."
)
SELFIE_IS_A_REFERENCE = "The selfie must be a new photo taken now, not one of the reference photos."
SELFIE_MISMATCH = (
    "The selfie doesn't match {count} of the reference photos ({names}). "
    "Consent can only come from the person in every photo: remove photos of anyone else, "
    "or retake the selfie facing the camera in good light."
)

CROP_SIDE = 512  # the square face crop the trainer learns from


class ConsentRefused(Refusal):
    """A selfie or a consent link that can't give consent, and why."""


@dataclass(frozen=True)
class PhotoVerdict:
    ok: bool
    message: str


def photo_check(photo: ReferencePhoto, engine: faces.FaceEngine | None = None) -> PhotoVerdict:
    """Face checks for one stored photo: one face, large enough, sharp. Saves what it found.

    The photo stays CHECKING: only the identity check (`subject_identity_refresh`), which
    compares it with the set and the consent selfie, makes it usable. A job stopped in between
    leaves it unusable."""
    engine = engine or faces.FaceEngine.get()
    with default_storage.open(photo.image.name) as handle:
        image = Image.open(handle)
        image.load()
    report = engine.analyse(image)
    if not report.faces:
        return PhotoVerdict(False, NO_FACE)
    if len(report.faces) > 1:
        return PhotoVerdict(False, SEVERAL_FACES.format(count=len(report.faces)))
    face = report.face
    box = report.box_in_original(face)
    width = box[2] - box[0]
    if width < settings.PHOTO_MIN_FACE_PX:
        return PhotoVerdict(
            False, FACE_TOO_SMALL.format(size=width, min=settings.PHOTO_MIN_FACE_PX)
        )
    sharp = faces.sharpness(image, box)
    if sharp < settings.PHOTO_MIN_SHARPNESS:
        return PhotoVerdict(False, BLURRED)
    crop = image.crop(faces.face_crop_box(image.size, box)).resize(
        (CROP_SIDE, CROP_SIDE), Image.Resampling.LANCZOS
    )
    stale = photo.crop.name if photo.crop else ""
    photo.crop = default_storage.save(
        private_name("crops", photo.subject.owner_id), ContentFile(jpeg_bytes(crop, quality=95))
    )
    photo.embedding = list(face.embedding)
    photo.face_box = list(box)
    photo.sharpness = round(sharp, 2)
    photo.save(update_fields=["crop", "embedding", "face_box", "sharpness"])
    if stale:  # a retried check replaces the crop it made before
        default_storage.delete(stale)
    return PhotoVerdict(True, FACE_CHECKS_PASSED)


@dataclass(frozen=True)
class SelfieMatch:
    sha256: str
    embedding: list[float]
    distances: dict[str, float]  # reference photo id -> face distance


def selfie_check(subject: Subject, data: bytes) -> SelfieMatch:
    """Read a selfie, find its one face and compare it with every reference photo."""
    try:
        selfie = intake.photo_read(data)
    except intake.PhotoRejected as exc:
        raise ConsentRefused(exc.message) from None
    all_photos = list(subject.photos.select_related("check_task"))
    if any(p.check_stopped for p in all_photos):
        raise ConsentRefused(SELFIE_CHECK_STOPPED)
    if any(p.status == ReferencePhoto.Status.CHECKING for p in all_photos):
        raise ConsentRefused(SELFIE_STILL_CHECKING)
    reference = [p for p in all_photos if p.embedding]
    if not reference:
        raise ConsentRefused(SELFIE_NO_PHOTOS)
    if any(
        hamming(p.phash, selfie.phash) <= settings.PHOTO_DUPLICATE_BITS or p.sha256 == selfie.sha256
        for p in all_photos
    ):
        raise ConsentRefused(SELFIE_IS_A_REFERENCE)
    report = faces.FaceEngine.get().analyse(selfie.image)
    if not report.faces:
        raise ConsentRefused(SELFIE_NO_FACE)
    if len(report.faces) > 1:
        raise ConsentRefused(SELFIE_SEVERAL_FACES)
    embedding = list(report.face.embedding)
    distances = {str(p.pk): round(faces.distance(embedding, p.embedding), 4) for p in reference}
    strangers = [p for p in reference if distances[str(p.pk)] > settings.FACE_MATCH_THRESHOLD]
    if strangers:
        names = ", ".join(f"“{p}”" for p in strangers[:5])
        raise ConsentRefused(SELFIE_MISMATCH.format(count=len(strangers), names=names))
    return SelfieMatch(sha256=selfie.sha256, embedding=embedding, distances=distances)
