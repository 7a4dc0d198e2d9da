"""Services for subjects, their reference photos and the likeness lock (consent)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver
from django.utils import timezone
from PIL import Image

from config.files import delete_files_on_commit
from config.refusal import Refusal
from creator import photos, services
from creator.ml import faces
from creator.models import Consent, PersonalModel, ReferencePhoto, Subject, Task, User
from gallery.services import credentials_mark_consent_revoked

log = logging.getLogger(__name__)

TOO_MANY_FILES = "That's {count} files; upload at most {limit} at a time. Nothing was uploaded."
SUBJECT_FULL = (
    "This subject already has {have} photos and the limit is {limit}. "
    "Remove some or upload fewer. Nothing was uploaded."
)
NO_FILES = "Choose at least one photo to upload."
NEAR_DUPLICATE = "This is a near-copy of “{other}”, already in this set. Use a different photo."
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
SELFIE_IS_A_REFERENCE = "The selfie must be a new photo taken now, not one of the reference photos."
SELFIE_MISMATCH = (
    "The selfie doesn't match {count} of the reference photos ({names}). "
    "Consent can only come from the person in every photo: remove photos of anyone else, "
    "or retake the selfie facing the camera in good light."
)
SELFIE_MISSING = "Take a selfie (or choose one) first."
SELFIE_MUST_AGREE = "Tick the box to confirm that you agree."
LINK_INVALID = "This consent link is not valid. Ask the person who sent it for a new one."
LINK_EXPIRED = "This consent link has expired. Ask the person who sent it for a new one."
LINK_USED = "This consent link has already been used."


# --- subjects -------------------------------------------------------------------------------


def subject_create(*, owner: User, kind: str, name: str = "") -> Subject:
    if kind == Subject.Kind.SELF:
        name = name.strip() or owner.get_full_name()
    return Subject.objects.create(owner=owner, kind=kind, name=name.strip()[:80])


def subject_delete(*, subject: Subject) -> None:
    """Delete a subject, its photos, consents' biometrics and models (files included)."""
    consent_revoke(subject=subject, by="creator")
    subject.delete()


def account_delete(*, user: User) -> None:
    for subject in list(user.subjects.all()):
        subject_delete(subject=subject)
    user.delete()


@dataclass
class Readiness:
    ready: bool
    ok: int
    checking: int
    flagged: int
    reasons: list[str] = field(default_factory=list)
    advice: str = ""


def subject_readiness(subject: Subject) -> Readiness:
    counts = {status: 0 for status in ReferencePhoto.Status.values}
    for status in subject.photos.values_list("status", flat=True):
        counts[status] += 1
    ok, checking, flagged = counts["ok"], counts["checking"], counts["flagged"]
    low, high = settings.PHOTOS_RECOMMENDED
    reasons = []
    if checking:
        reasons.append(f"{checking} photo(s) are still being checked.")
    if flagged:
        reasons.append(f"{flagged} photo(s) need attention: remove photos that show someone else.")
    if ok < settings.PHOTOS_REQUIRED:
        reasons.append(
            f"Add at least {settings.PHOTOS_REQUIRED} good photos ({low}–{high} recommended); "
            f"this set has {ok}."
        )
    consent = subject.active_consent()
    if consent is None:
        pending = subject.consents.filter(status=Consent.Status.PENDING).exists()
        if pending:
            reasons.append(f"Waiting for {subject.name} to give consent through the link.")
        elif subject.is_self:
            reasons.append("Give consent with a fresh selfie (the likeness lock).")
        else:
            reasons.append(f"{subject.name} has to give consent through a consent link.")
    advice = ""
    if not reasons and ok < low:
        advice = f"Ready. {low}–{high} photos in varied light and angles give a better likeness."
    elif not reasons and ok > high:
        advice = f"Ready. More than {high} photos rarely help; the best {high} would do."
    return Readiness(
        ready=not reasons, ok=ok, checking=checking, flagged=flagged, reasons=reasons, advice=advice
    )


# --- photos ----------------------------------------------------------------------------------


@dataclass
class UploadResult:
    accepted: list[ReferencePhoto] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    task: Task | None = None
    error: str = ""  # a refusal of the whole request


def _display_name(name: str) -> str:
    return (name or "photo").replace("\\", "/").rsplit("/", 1)[-1][:120]


def _save(prefix: str, owner_id: int, data: bytes) -> str:
    return default_storage.save(photos_path(prefix, owner_id), ContentFile(data))


def photos_path(prefix: str, owner_id: int) -> str:
    return f"{prefix}/{owner_id}/{secrets.token_hex(16)}.jpg"


def photos_add(*, subject: Subject, files: list) -> UploadResult:
    """Check and store uploaded photos; queue the face checks. Refused files leave nothing."""
    result = UploadResult()
    if not files:
        result.error = NO_FILES
        return result
    if len(files) > settings.PHOTO_MAX_FILES_PER_UPLOAD:
        result.error = TOO_MANY_FILES.format(
            count=len(files), limit=settings.PHOTO_MAX_FILES_PER_UPLOAD
        )
        return result
    have = subject.photos.count()
    if have + len(files) > settings.PHOTO_MAX_PER_SUBJECT:
        result.error = SUBJECT_FULL.format(have=have, limit=settings.PHOTO_MAX_PER_SUBJECT)
        return result

    known = {p.phash: str(p) for p in subject.photos.all()}
    candidates: list[tuple[str, photos.NormalisedPhoto]] = []
    for upload in files:
        name = _display_name(upload.name)
        if upload.size > settings.PHOTO_MAX_BYTES:  # refuse before reading it into memory
            limit = f"{settings.PHOTO_MAX_BYTES / 1e6:g}"
            result.rejected.append(
                (name, photos.TOO_LARGE.format(size=f"{upload.size / 1e6:.1f}", limit=limit))
            )
            continue
        try:
            photo = photos.photo_read(upload.read())
        except photos.PhotoRejected as exc:
            result.rejected.append((name, exc.message))
            continue
        twin = next(
            (
                other
                for h, other in known.items()
                if photos.hamming(h, photo.phash) <= settings.PHOTO_DUPLICATE_BITS
            ),
            None,
        )
        if twin is not None:
            result.rejected.append((name, NEAR_DUPLICATE.format(other=twin)))
            continue
        known[photo.phash] = name
        candidates.append((name, photo))
    if not candidates:
        return result

    services.queue_check()  # raises QueueUnavailable before anything is stored
    saved: list[str] = []
    try:
        with transaction.atomic():
            for name, photo in candidates:
                thumb = photo.image.copy()
                thumb.thumbnail((320, 320), Image.Resampling.LANCZOS)
                image_name = _save("photos", subject.owner_id, photo.jpeg)
                saved.append(image_name)
                thumb_name = _save("photos", subject.owner_id, photos.jpeg_bytes(thumb, quality=85))
                saved.append(thumb_name)
                result.accepted.append(
                    ReferencePhoto.objects.create(
                        subject=subject,
                        image=image_name,
                        thumbnail=thumb_name,
                        original_name=name,
                        width=photo.image.width,
                        height=photo.image.height,
                        sha256=photo.sha256,
                        phash=photo.phash,
                    )
                )
            result.task = services.task_start(
                owner=subject.owner,
                subject=subject,
                kind="photo_check",
                label=f"Checking {len(candidates)} photo(s) of {subject.name}",
                job="creator.jobs.photos_check",
                job_kwargs={"photo_ids": [p.pk for p in result.accepted]},
            )
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return result


@dataclass(frozen=True)
class PhotoVerdict:
    ok: bool
    message: str


def photo_check(photo: ReferencePhoto, engine: faces.FaceEngine | None = None) -> PhotoVerdict:
    """Face checks for one stored photo: one face, large enough, sharp. Saves what it found."""
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
        (512, 512), Image.Resampling.LANCZOS
    )
    photo.crop = _save("crops", photo.subject.owner_id, photos.jpeg_bytes(crop, quality=95))
    photo.embedding = list(face.embedding)
    photo.face_box = list(box)
    photo.sharpness = round(sharp, 2)
    photo.status = ReferencePhoto.Status.OK
    photo.verdict = LOOKS_GOOD
    photo.save(update_fields=["crop", "embedding", "face_box", "sharpness", "status", "verdict"])
    return PhotoVerdict(True, LOOKS_GOOD)


def photo_delete(*, photo: ReferencePhoto) -> None:
    subject = photo.subject
    photo.delete()
    subject_identity_refresh(subject=subject)


def subject_identity_refresh(*, subject: Subject) -> None:
    """Flag photos that show someone else: against the consent selfie when there is one."""
    checked = [
        p for p in subject.photos.exclude(status=ReferencePhoto.Status.CHECKING) if p.embedding
    ]
    consent = subject.active_consent()
    anchor = consent.selfie_embedding if consent else None
    outliers = faces.identity_outliers(
        {p.pk: p.embedding for p in checked},
        anchor=anchor,
        threshold=settings.FACE_MATCH_THRESHOLD,
    )
    for photo in checked:
        if photo.pk not in outliers:
            status, verdict = ReferencePhoto.Status.OK, LOOKS_GOOD
        elif anchor is not None:
            status, verdict = ReferencePhoto.Status.FLAGGED, NOT_CONSENTING_PERSON
        elif len(checked) == 2:
            status, verdict = ReferencePhoto.Status.FLAGGED, DIFFERENT_PAIR
        else:
            status, verdict = ReferencePhoto.Status.FLAGGED, DIFFERENT_PERSON
        if (photo.status, photo.verdict) != (status, verdict):
            ReferencePhoto.objects.filter(pk=photo.pk).update(status=status, verdict=verdict)


# --- consent ---------------------------------------------------------------------------------


class ConsentRefused(Refusal):
    """A selfie or a consent link that can't give consent, and why."""


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _selfie_check(subject: Subject, data: bytes) -> tuple[photos.NormalisedPhoto, list, dict]:
    """Read a selfie, find its one face and compare it with every reference photo."""
    try:
        selfie = photos.photo_read(data)
    except photos.PhotoRejected as exc:
        raise ConsentRefused(exc.message) from None
    all_photos = list(subject.photos.all())
    if any(p.status == ReferencePhoto.Status.CHECKING for p in all_photos):
        raise ConsentRefused(SELFIE_STILL_CHECKING)
    reference = [p for p in all_photos if p.embedding]
    if not reference:
        raise ConsentRefused(SELFIE_NO_PHOTOS)
    if any(
        photos.hamming(p.phash, selfie.phash) <= settings.PHOTO_DUPLICATE_BITS
        or p.sha256 == selfie.sha256
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
    return selfie, embedding, distances


def consent_by_selfie(*, subject: Subject, selfie: bytes, agreed: bool) -> Consent:
    """The creator is the subject: a fresh selfie that matches every photo grants consent."""
    if not agreed:
        raise ConsentRefused(SELFIE_MUST_AGREE)
    checked, embedding, distances = _selfie_check(subject, selfie)
    with transaction.atomic():
        consent = Consent.objects.create(
            subject=subject,
            method=Consent.Method.SELFIE,
            status=Consent.Status.GRANTED,
            granted_at=timezone.now(),
            signed_name=subject.owner.get_full_name(),
            selfie_sha256=checked.sha256,
            selfie_embedding=embedding,
            distances=distances,
        )
        subject_identity_refresh(subject=subject)
    return consent


def consent_link_create(
    *, subject: Subject, email: str = "", request_url=None
) -> tuple[Consent, str]:
    """A one-time link for someone else to consent. Returns the consent and the raw token."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Consent.objects.filter(subject=subject, status=Consent.Status.PENDING).update(
            status=Consent.Status.REVOKED, revoked_at=timezone.now(), revoked_by="creator"
        )
        consent = Consent.objects.create(
            subject=subject,
            method=Consent.Method.LINK,
            token_hash=_hash_token(token),
            expires_at=timezone.now() + timedelta(hours=settings.CONSENT_LINK_HOURS),
            invited_email=email,
        )
    if email and request_url:
        link = request_url(token)
        send_mail(
            subject=f"@{subject.owner.handle} asks for your consent on {settings.SITE_NAME}",
            message=(
                f"Hello {subject.name},\n\n@{subject.owner.handle} wants to train a personal image "
                f"model of you on {settings.SITE_NAME}. It can only happen if you agree, by "
                f"taking a selfie that matches their photos of you.\n\nSee what they ask and "
                f"answer here (the link works once and expires in {settings.CONSENT_LINK_HOURS} "
                f"hours):\n\n{link}\n\nIf you don't know them, ignore this email: nothing will be "
                f"trained.\n"
            ),
            from_email=None,
            recipient_list=[email],
        )
    return consent, token


def consent_for_token(token: str) -> Consent:
    """The consent a link points at; raises ConsentRefused for an unknown token."""
    consent = (
        Consent.objects.select_related("subject", "subject__owner")
        .filter(method=Consent.Method.LINK, token_hash=_hash_token(token), subject__isnull=False)
        .first()
    )
    if consent is None:
        raise ConsentRefused(LINK_INVALID)
    return consent


def _check_link_usable(consent: Consent) -> None:
    if consent.status != Consent.Status.PENDING:
        raise ConsentRefused(
            LINK_USED if consent.status != Consent.Status.REVOKED else LINK_INVALID
        )
    if consent.expires_at and consent.expires_at < timezone.now():
        raise ConsentRefused(LINK_EXPIRED)


def consent_answer_link(
    *, consent: Consent, agree: bool, selfie: bytes | None = None, signed_name: str = ""
) -> Consent:
    """The subject answers through their link: agree with a selfie, or decline."""
    with transaction.atomic():
        consent = Consent.objects.select_for_update().get(pk=consent.pk)
        _check_link_usable(consent)
        now = timezone.now()
        if not agree:
            consent.status = Consent.Status.DECLINED
            consent.declined_at = now
            consent.save(update_fields=["status", "declined_at"])
            return consent
        checked, embedding, distances = _selfie_check(consent.subject, selfie or b"")
        consent.status = Consent.Status.GRANTED
        consent.granted_at = now
        consent.signed_name = signed_name.strip()[:80]
        consent.selfie_sha256 = checked.sha256
        consent.selfie_embedding = embedding
        consent.distances = distances
        consent.save()
        subject_identity_refresh(subject=consent.subject)
    return consent


def consent_revoke(*, subject: Subject, by: str) -> int:
    """Withdraw consent: stop training, delete the models, and keep the revocation on record."""
    now = timezone.now()
    with transaction.atomic():
        withdrawn = list(
            Consent.objects.filter(
                subject=subject, status__in=(Consent.Status.GRANTED, Consent.Status.PENDING)
            ).values_list("pk", flat=True)
        )
        revoked = Consent.objects.filter(pk__in=withdrawn).update(
            status=Consent.Status.REVOKED, revoked_at=now, revoked_by=by
        )
        for consent_id in withdrawn:
            credentials_mark_consent_revoked(consent_id=consent_id)
        for task in Task.objects.filter(subject=subject, kind="training", status__in=Task.ACTIVE):
            services.task_cancel(task=task)
        for model in PersonalModel.objects.filter(subject=subject):
            model.delete()
        subject_identity_refresh(subject=subject)
    return revoked


# --- files follow their rows -----------------------------------------------------------------


@receiver(post_delete, sender=ReferencePhoto)
def _photo_files_deleted(sender, instance: ReferencePhoto, **kwargs):
    delete_files_on_commit([f.name for f in instance.files])


@receiver(post_delete, sender=PersonalModel)
def _model_files_deleted(sender, instance: PersonalModel, **kwargs):
    if instance.lora:
        delete_files_on_commit([instance.lora.name])


@receiver(pre_delete, sender=Subject)
def _subject_consents_kept_without_biometrics(sender, instance: Subject, **kwargs):
    # However a subject goes (its page, account deletion, the admin), its consents stay as revoked
    # records without the selfie's face signature.
    live = Consent.objects.filter(subject=instance).exclude(status=Consent.Status.REVOKED)
    for consent_id in live.values_list("pk", flat=True):
        credentials_mark_consent_revoked(consent_id=consent_id)
    live.update(status=Consent.Status.REVOKED, revoked_at=timezone.now(), revoked_by="creator")
    Consent.objects.filter(subject=instance).update(selfie_embedding=None, distances={})


def link_expired(consent: Consent) -> bool:
    return bool(
        consent.status == Consent.Status.PENDING
        and consent.expires_at
        and consent.expires_at < timezone.now()
    )
