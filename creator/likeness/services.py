"""State changes of the likeness context: subjects, reference photos and consent."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import transaction
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from config.files import STORAGE_FAILED, new_token, private_name
from config.refusal import Refusal
from creator.accounts.models import User
from creator.engine import faces
from creator.jobs import services as jobs
from creator.jobs.models import Task
from creator.likeness import checks, intake
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import Consent, ReferencePhoto, Subject
from gallery.services import consent_withdrawn
from imaging.decode import jpeg_bytes
from imaging.phash import hamming
from imaging.sniff import too_large

log = logging.getLogger(__name__)

TOO_MANY_FILES = "That's {count} files; upload at most {limit} at a time. Nothing was uploaded."
SUBJECT_FULL = (
    "This subject already has {have} photos and the limit is {limit}. "
    "Remove some or upload fewer. Nothing was uploaded."
)
NO_FILES = "Choose at least one photo to upload."
NEAR_DUPLICATE = "This is a near-copy of “{other}”, already in this set. Use a different photo."
SELFIE_MISSING = "Take a selfie (or choose one) first."
SELFIE_MUST_AGREE = "Tick the box to confirm that you agree."
LINK_INVALID = "This consent link is not valid. Ask the person who sent it for a new one."
LINK_EXPIRED = "This consent link has expired. Ask the person who sent it for a new one."
LINK_USED = "This consent link has already been used."
NAME_MAX = Subject._meta.get_field("name").max_length
NAME_TOO_LONG = f"That name is too long: use at most {NAME_MAX} characters."
SIGNED_NAME_MAX = Consent._meta.get_field("signed_name").max_length
SIGNED_NAME_TOO_LONG = f"Your name is too long: use at most {SIGNED_NAME_MAX} characters."
EMAIL_MAX = Consent._meta.get_field("invited_email").max_length
EMAIL_INVALID = (
    f"That isn't one valid email address (at most {EMAIL_MAX} characters). "
    "No link was made and nothing was sent."
)
THUMB_SIDE = 320

# Sent inside the transaction that revokes a subject's consents (`subject`, `consent_ids`):
# whatever was made under them (the studio's models) is stopped and removed by its receivers.
consent_revoked = Signal()


# --- subjects -------------------------------------------------------------------------------


class SubjectRefused(Refusal):
    """A subject that can't be created as asked, and why."""


def subject_create(*, owner: User, kind: str, name: str = "") -> Subject:
    name = name.strip()
    if len(name) > NAME_MAX:
        raise SubjectRefused(NAME_TOO_LONG)
    if kind == Subject.Kind.SELF:
        name = name or owner.get_full_name()
    return Subject.objects.create(owner=owner, kind=kind, name=name)


def subject_delete(*, subject: Subject) -> None:
    """Delete a subject, its photos, consents' biometrics, models and jobs (files included)."""
    consent_revoke(subject=subject, by="creator")
    subject.delete()


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
    return default_storage.save(private_name(prefix, owner_id), ContentFile(data))


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
    candidates: list[tuple[str, intake.NormalisedPhoto]] = []
    for upload in files:
        name = _display_name(upload.name)
        if upload.size > settings.PHOTO_MAX_BYTES:  # refuse before reading it into memory
            result.rejected.append((name, too_large(upload.size, settings.PHOTO_MAX_BYTES)))
            continue
        try:
            photo = intake.photo_read(upload.read())
        except intake.PhotoRejected as exc:
            result.rejected.append((name, exc.message))
            continue
        twin = next(
            (
                other
                for h, other in known.items()
                if hamming(h, photo.phash) <= settings.PHOTO_DUPLICATE_BITS
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

    jobs.queue_check()  # raises QueueUnavailable before anything is stored
    saved: list[str] = []
    try:
        with transaction.atomic():
            for name, photo in candidates:
                thumb = photo.image.copy()
                thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
                image_name = _save("photos", subject.owner_id, photo.jpeg)
                saved.append(image_name)
                thumb_name = _save("photos", subject.owner_id, jpeg_bytes(thumb, quality=85))
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
            result.task = jobs.task_start(
                owner=subject.owner,
                scope=subject.scope,
                link=reverse("subject_detail", args=[subject.pk]),
                kind="photo_check",
                label=f"Checking {len(candidates)} photo(s) of {subject.name}",
                job="creator.likeness.jobs.photos_check",
                job_kwargs={
                    "subject_id": subject.pk,
                    "photo_ids": [p.pk for p in result.accepted],
                },
            )
            ReferencePhoto.objects.filter(pk__in=[p.pk for p in result.accepted]).update(
                check_task=result.task
            )
    except BaseException as exc:
        for name in saved:
            default_storage.delete(name)
        if not isinstance(exc, OSError):
            raise
        # Full or read-only storage: the rows were rolled back and the files removed.
        log.warning("Could not store uploaded photos: %s", exc)
        return UploadResult(error=STORAGE_FAILED)
    return result


def photo_delete(*, photo: ReferencePhoto) -> None:
    subject = photo.subject
    photo.delete()
    subject_identity_refresh(subject=subject)


def subject_identity_refresh(*, subject: Subject) -> None:
    """The identity check, the last one a photo passes: every photo whose face checks passed
    (it has an embedding) must show the person in the consent selfie, or, before consent, the
    same person as the rest of the set. This alone makes a photo OK, so a job stopped before
    it leaves its photos unusable."""
    with transaction.atomic():
        checked = [p for p in subject.photos.all() if p.embedding]
        consent = subject.active_consent()
        anchor = consent.selfie_embedding if consent else None
        outliers = faces.identity_outliers(
            {p.pk: p.embedding for p in checked},
            anchor=anchor,
            threshold=settings.FACE_MATCH_THRESHOLD,
        )
        for photo in checked:
            if photo.pk not in outliers:
                status, verdict = ReferencePhoto.Status.OK, checks.LOOKS_GOOD
            elif anchor is not None:
                status, verdict = ReferencePhoto.Status.FLAGGED, checks.NOT_CONSENTING_PERSON
            elif len(checked) == 2:
                status, verdict = ReferencePhoto.Status.FLAGGED, checks.DIFFERENT_PAIR
            else:
                status, verdict = ReferencePhoto.Status.FLAGGED, checks.DIFFERENT_PERSON
            if (photo.status, photo.verdict) != (status, verdict):
                ReferencePhoto.objects.filter(pk=photo.pk).update(status=status, verdict=verdict)


# --- consent ---------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def consent_by_selfie(*, subject: Subject, selfie: bytes, agreed: bool) -> Consent:
    """The creator is the subject: a fresh selfie that matches every photo grants consent."""
    if not agreed:
        raise ConsentRefused(SELFIE_MUST_AGREE)
    match = checks.selfie_check(subject, selfie)
    with transaction.atomic():
        consent = Consent.objects.create(
            subject=subject,
            method=Consent.Method.SELFIE,
            status=Consent.Status.GRANTED,
            granted_at=timezone.now(),
            signed_name=subject.owner.get_full_name(),
            selfie_sha256=match.sha256,
            selfie_embedding=match.embedding,
            distances=match.distances,
        )
        subject_identity_refresh(subject=subject)
    return consent


def consent_link_create(
    *, subject: Subject, email: str = "", request_url=None
) -> tuple[Consent, str]:
    """A one-time link for someone else to consent. Returns the consent and the raw token.

    A bad email address is refused before anything changes: the old link stays usable."""
    from django.core.mail import send_mail

    if email and not _email_valid(email):
        raise ConsentRefused(EMAIL_INVALID)
    token = new_token()
    with transaction.atomic():
        Consent.objects.filter(subject=subject, status=Consent.Status.PENDING).update(
            status=Consent.Status.REVOKED, revoked_at=timezone.now(), revoked_by="creator"
        )
        consent = Consent.objects.create(
            subject=subject,
            method=Consent.Method.LINK,
            token_hash=hash_token(token),
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


def _email_valid(email: str) -> bool:
    """One plain address that fits the field: no second address, no line break (headers)."""
    try:
        validate_email(email)
    except ValidationError:
        return False
    return len(email) <= EMAIL_MAX


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
    signed_name = signed_name.strip()
    with transaction.atomic():
        consent = Consent.objects.select_for_update().get(pk=consent.pk)
        _check_link_usable(consent)
        now = timezone.now()
        if not agree:
            consent.status = Consent.Status.DECLINED
            consent.declined_at = now
            consent.save(update_fields=["status", "declined_at"])
            return consent
        if len(signed_name) > SIGNED_NAME_MAX:
            raise ConsentRefused(SIGNED_NAME_TOO_LONG)
        match = checks.selfie_check(consent.subject, selfie or b"")
        consent.status = Consent.Status.GRANTED
        consent.granted_at = now
        consent.signed_name = signed_name
        consent.selfie_sha256 = match.sha256
        consent.selfie_embedding = match.embedding
        consent.distances = match.distances
        consent.save()
        subject_identity_refresh(subject=consent.subject)
    return consent


def consent_revoke(*, subject: Subject, by: str) -> int:
    """Withdraw consent: stop training, delete the models, and keep the revocation on record."""
    with transaction.atomic():
        withdrawn = list(
            Consent.objects.filter(
                subject=subject, status__in=(Consent.Status.GRANTED, Consent.Status.PENDING)
            ).values_list("pk", flat=True)
        )
        revoked = consents_withdraw(consent_ids=withdrawn, by=by)
        consent_revoked.send(sender=Subject, subject=subject, consent_ids=withdrawn)
        subject_identity_refresh(subject=subject)
    return revoked


def consents_withdraw(*, consent_ids: list[int], by: str) -> int:
    """Mark consents revoked, and the credentials of images made under them."""
    for consent_id in consent_ids:
        consent_withdrawn(consent_id=consent_id)
    return Consent.objects.filter(pk__in=consent_ids).update(
        status=Consent.Status.REVOKED, revoked_at=timezone.now(), revoked_by=by
    )
