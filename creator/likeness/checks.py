"""The face checks: a reference photo (one face, large enough, sharp) and a consent selfie (a new
photo of the person in every reference photo). Run in the photo-check job and on consent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageOps

from config.files import private_name
from config.refusal import Refusal
from creator.engine import faces, liveness
from creator.likeness import intake
from creator.likeness.models import (
    Challenge,
    Consent,
    FaceBlock,
    ReferencePhoto,
    SeenFrame,
    Subject,
    hash_token,
)
from imaging.decode import jpeg_bytes, to_srgb
from imaging.limits import ImageLimits, ImageRejected, check_image, open_image
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
BLURRED_NO_FACE = (
    "No face found: this photo is too blurred to find one. Use a sharp photo where your face is "
    "clearly visible."
)
DIFFERENT_PERSON = "This looks like a different person than the rest of the photos."
DIFFERENT_PAIR = (
    "These photos don't look like the same person. Take the consent selfie to tell which one "
    "is right, or remove one."
)
NOT_CONSENTING_PERSON = "This looks like a different person than the one who gave consent."
SAME_FACE_OTHER_SUBJECT = (
    "This face is also in your subject “{subject}” ({kind}). One person can't be both: "
    "remove it from one of them."
)
SAME_FACE_AS = {"self": "as you", "other": "as someone else"}
# Neutral on purpose: it says nothing about who asked, or why.
FACE_BLOCKED = "This face can't be used to train a model on this instance."
LOOKS_GOOD = "Looks good."
FACE_CHECKS_PASSED = "Face checks passed; comparing it with the other photos and the consent."
CHECK_STOPPED = (
    "The check was stopped before it finished, so this photo can't be used. "
    "Retry the check, or remove this photo."
)
PHOTO_REMOVED = "Removed."
CHECK_SUMMARY = "{accepted} of {total} photo(s) accepted"

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
MISMATCH_NAMES_SHOWN = 5
MISMATCH_MORE = ", …and {count} more"

UPLOAD_SWITCHED_OFF = (
    "This instance needs the live camera check for consent: a picture file can't be used. "
    "Open this page on a device with a camera and follow the prompts."
)
CHALLENGE_MISSING = "Start the camera check first: it asks you to move your head, then records."
CHALLENGE_INVALID = "This camera check isn't valid for this consent. Start it again."
CHALLENGE_USED = "This camera check was already sent once. Start a new one."
CHALLENGE_EXPIRED = (
    "The camera check took longer than {seconds} seconds. Start it again and send it straight away."
)
FRAMES_REPLAYED = (
    "These camera frames were sent before: a check must be recorded live, now. Start a new one."
)
FRAME_REFUSED = "Frame {index} of the camera check can't be read: {reason}"
LIVENESS_MESSAGES = {
    "too_few_frames": (
        "The camera check needs {expected} frames; {got} arrived. Start it again and keep the "
        "page open until it finishes."
    ),
    "no_face": (
        "We lost your face in frame {frame}. Keep your whole face in the picture, in good light, "
        "and start again."
    ),
    "several_faces": (
        "There is more than one face in frame {frame}. Only the person in the photos should be "
        "in the picture."
    ),
    "different_person": (
        "The face changed during the check (frame {frame}). Only the person in the photos "
        "should take it."
    ),
    "still": (
        "The frames show no movement, as if they came from a still picture. Take the check live, "
        "following the prompts."
    ),
    "not_left": "We didn't see your head turn to your left. Turn it further left when asked.",
    "not_right": "We didn't see your head turn to your right. Turn it further right when asked.",
    "not_mouth": "We didn't see your mouth open. Open it wider when asked.",
    "order": (
        "The moves came in a different order than asked. Follow the prompts in their order: "
        "{steps}."
    ),
}
STEP_WORDS = {"left": "turn left", "right": "turn right", "mouth": "open your mouth"}
STEP_PROMPTS = {
    "left": "Turn your head to your left",
    "right": "Turn your head to your right",
    "mouth": "Open your mouth",
}

CROP_SIDE = 512  # the square face crop the trainer learns from
# With no face found at the analysis size, detection runs once more this much finer (a face in
# a 2048 px photo shrinks 3.2 times at 640 px, below what HOG sees). Measured on the astronaut:
# a 20 px face at 640 px, or a 70 px one in a 2048 px photo, is found only by this retry.
RETRY_MAX_SIDE = 2 * faces.ANALYSIS_MAX_SIDE
# With no face found even then, a whole photo this soft (the Laplacian variance at 256 px) is
# called blurred: HOG finds no face blurred past a Gaussian radius of ~3 px at any score
# (measured on the astronaut, 512 px: radius 2 found, 3 not), and such photos measure 2-37
# here, sharp ones 300-1100.
NO_FACE_MIN_SHARPNESS = 40.0


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
    if not report.faces:  # perhaps a face too small to see at the analysis size
        upsample = 2 if max(image.size) < RETRY_MAX_SIDE else 1
        report = engine.analyse(image, max_side=RETRY_MAX_SIDE, upsample=upsample)
    if not report.faces:
        if faces.sharpness(image) < NO_FACE_MIN_SHARPNESS:
            return PhotoVerdict(False, BLURRED_NO_FACE)
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
    if face_blocked(face.embedding):
        return PhotoVerdict(False, FACE_BLOCKED)
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


def face_blocked(embedding) -> bool:
    """Whether a face matches one the person shown asked never to be trained on here."""
    if embedding is None:
        return False
    return any(
        faces.same_person(embedding, signature, threshold=settings.FACE_MATCH_THRESHOLD)
        for signature in FaceBlock.objects.values_list("signature", flat=True).iterator()
    )


@dataclass(frozen=True)
class SelfieMatch:
    sha256: str
    embedding: list[float]
    distances: dict[str, float]  # reference photo id -> face distance
    method: str = Consent.SelfieMethod.UPLOAD
    liveness: dict = field(default_factory=dict)  # the challenge's scores, no images


@dataclass(frozen=True)
class Selfie:
    """What the person sent: a live challenge's frames and nonce, or (weaker) one picture."""

    frames: list[bytes] = field(default_factory=list)
    nonce: str = ""
    upload: bytes | None = None


def selfie_match(
    subject: Subject, selfie: Selfie, *, consent: Consent | None = None
) -> SelfieMatch:
    """Check a selfie of either kind against the subject's reference photos."""
    if selfie.nonce or selfie.frames:
        return challenge_check(subject, selfie, consent=consent)
    if settings.CONSENT_REQUIRE_LIVENESS:
        raise ConsentRefused(UPLOAD_SWITCHED_OFF if selfie.upload else CHALLENGE_MISSING)
    return selfie_check(subject, selfie.upload or b"")


def _reference_photos(subject: Subject) -> tuple[list[ReferencePhoto], list[ReferencePhoto]]:
    """All photos and those with a face signature; refused while checks are unfinished."""
    all_photos = list(subject.photos.select_related("check_task"))
    if any(p.check_stopped for p in all_photos):
        raise ConsentRefused(SELFIE_CHECK_STOPPED)
    if any(p.status == ReferencePhoto.Status.CHECKING for p in all_photos):
        raise ConsentRefused(SELFIE_STILL_CHECKING)
    reference = [p for p in all_photos if p.embedding]
    if not reference:
        raise ConsentRefused(SELFIE_NO_PHOTOS)
    return all_photos, reference


def _mismatch(reference: list[ReferencePhoto], strangers: set[str]) -> ConsentRefused:
    odd = [p for p in reference if str(p.pk) in strangers]
    names = ", ".join(f"“{p}”" for p in odd[:MISMATCH_NAMES_SHOWN])
    if len(odd) > MISMATCH_NAMES_SHOWN:
        names += MISMATCH_MORE.format(count=len(odd) - MISMATCH_NAMES_SHOWN)
    return ConsentRefused(SELFIE_MISMATCH.format(count=len(odd), names=names))


def selfie_check(subject: Subject, data: bytes) -> SelfieMatch:
    """Read a selfie, find its one face and compare it with every reference photo."""
    try:
        selfie = intake.photo_read(data)
    except intake.PhotoRejected as exc:
        raise ConsentRefused(exc.message) from None
    all_photos, reference = _reference_photos(subject)
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
    strangers = {key for key, d in distances.items() if d > settings.FACE_MATCH_THRESHOLD}
    if strangers:
        raise _mismatch(reference, strangers)
    return SelfieMatch(sha256=selfie.sha256, embedding=embedding, distances=distances)


# --- the live camera challenge -----------------------------------------------------------------


def frame_limits() -> ImageLimits:
    """A camera frame: a JPEG, PNG or WebP of a few hundred pixels, never a large file."""
    return ImageLimits(
        max_bytes=settings.CONSENT_FRAME_MAX_BYTES,
        max_pixels=4_000_000,
        min_side=240,
        kinds=frozenset({"jpeg", "png", "webp"}),
        animated=False,
    )


def _read_frame(index: int, data: bytes) -> Image.Image:
    limits = frame_limits()
    try:
        checked = check_image(data, limits)
        image = open_image(data, checked, limits)
        image.load()
        return to_srgb(ImageOps.exif_transpose(image))
    except ImageRejected as exc:
        raise ConsentRefused(FRAME_REFUSED.format(index=index, reason=exc.message)) from None
    except Exception:
        raise ConsentRefused(FRAME_REFUSED.format(index=index, reason=intake.DAMAGED)) from None


def challenge_consume(subject: Subject, nonce: str, *, consent: Consent | None) -> Challenge:
    """The challenge this nonce was issued for, marked used (committed, whatever the check finds
    next: a nonce answers once)."""
    if not nonce:
        raise ConsentRefused(CHALLENGE_MISSING)
    with transaction.atomic():
        challenge = (
            Challenge.objects.select_for_update()
            .filter(nonce_hash=hash_token(nonce), subject=subject, consent=consent)
            .first()
        )
        if challenge is None:
            raise ConsentRefused(CHALLENGE_INVALID)
        if challenge.used_at is not None:
            raise ConsentRefused(CHALLENGE_USED)
        challenge.used_at = timezone.now()
        challenge.save(update_fields=["used_at"])
    if challenge.expires_at < challenge.used_at:
        raise ConsentRefused(CHALLENGE_EXPIRED.format(seconds=settings.CONSENT_CHALLENGE_SECONDS))
    return challenge


def _frames_seen(digests: list[str]) -> bool:
    """Record these frames as seen; True when any was seen before (a replay)."""
    seen = SeenFrame.objects.filter(digest__in=digests).exists()
    SeenFrame.objects.bulk_create([SeenFrame(digest=d) for d in digests], ignore_conflicts=True)
    return seen


def challenge_check(
    subject: Subject, selfie: Selfie, *, consent: Consent | None = None
) -> SelfieMatch:
    """Check a live challenge: the nonce, the frames, then the moves and the face in them."""
    challenge = challenge_consume(subject, selfie.nonce, consent=consent)
    if not selfie.frames:
        raise ConsentRefused(CHALLENGE_MISSING)
    if len(selfie.frames) > liveness.MAX_FRAMES:
        raise ConsentRefused(
            LIVENESS_MESSAGES["too_few_frames"].format(
                expected=liveness.FRAMES, got=len(selfie.frames)
            )
        )
    digests = [hashlib.sha256(data).hexdigest() for data in selfie.frames]
    if _frames_seen(digests):
        raise ConsentRefused(FRAMES_REPLAYED)
    images = [_read_frame(i, data) for i, data in enumerate(selfie.frames, start=1)]
    _, reference = _reference_photos(subject)
    result = liveness.check_burst(
        images,
        challenge.steps,
        references={str(p.pk): p.embedding for p in reference},
        threshold=settings.FACE_MATCH_THRESHOLD,
    )
    if not result.passed:
        if result.problem == "not_reference":
            raise _mismatch(reference, set(result.strangers))
        raise ConsentRefused(_liveness_message(result, challenge, len(images)))
    burst = hashlib.sha256("".join(digests).encode()).hexdigest()
    evidence = {**result.evidence, "steps": list(challenge.steps), "frames": len(images)}
    return SelfieMatch(
        sha256=burst,
        embedding=list(result.embedding),
        distances=result.distances,
        method=Consent.SelfieMethod.CHALLENGE,
        liveness=evidence,
    )


def _liveness_message(result, challenge: Challenge, got: int) -> str:
    template = LIVENESS_MESSAGES.get(result.problem, LIVENESS_MESSAGES["still"])
    return template.format(
        frame=result.frame,
        expected=liveness.FRAMES,
        got=got,
        steps=", then ".join(STEP_WORDS[s] for s in challenge.steps),
    )
