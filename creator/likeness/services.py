"""State changes of the likeness context: subjects, reference photos and consent."""

from __future__ import annotations

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
from creator.engine import faces, liveness
from creator.jobs import services as jobs
from creator.jobs.models import Task
from creator.likeness import checks, intake, scope
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import (
    Challenge,
    Consent,
    FaceBlock,
    ReferencePhoto,
    Subject,
    hash_token,
)
from creator.notices import webhooks
from creator.notices.services import notify
from gallery.services import consent_withdrawn, post_withdraw
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
LINK_WITHDRAWN = (
    "This consent was withdrawn, so it can't be given again through this link. Ask the person "
    "who sent it for a new one."
)
SELF_EXISTS = (
    "You already have a set of photos of yourself: “{name}”. One account has one “me”: add "
    "photos to that one."
)
NAME_MAX = Subject._meta.get_field("name").max_length
NAME_TOO_LONG = f"That name is too long: use at most {NAME_MAX} characters."
SIGNED_NAME_MAX = Consent._meta.get_field("signed_name").max_length
SIGNED_NAME_TOO_LONG = f"Your name is too long: use at most {SIGNED_NAME_MAX} characters."
EMAIL_MAX = Consent._meta.get_field("invited_email").max_length
EMAIL_INVALID = (
    f"That isn't one valid email address (at most {EMAIL_MAX} characters). "
    "No link was made and nothing was sent."
)
EMAIL_INVALID_LOST = (
    f"Enter the one email address the consent request was sent to (at most {EMAIL_MAX} characters)."
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
        existing = Subject.objects.filter(owner=owner, kind=Subject.Kind.SELF).first()
        if existing is not None:
            raise SubjectRefused(SELF_EXISTS.format(name=existing.name))
        name = name or owner.get_full_name()
    return Subject.objects.create(owner=owner, kind=kind, name=name)


def subject_delete(*, subject: Subject) -> None:
    """Delete a subject, its photos, consents' biometrics, models and jobs (files included)."""
    consent_revoke(subject=subject, by="creator", tell=False)  # the creator is deleting it
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
    matched = set(_same_face_elsewhere(subject, [photo] if photo.embedding else []).values())
    photo.delete()
    subject_identity_refresh(subject=subject)  # also marks it removed in the check summaries
    for other in matched:  # their photos were flagged for matching this one
        subject_identity_refresh(subject=other, _others=False)


def _same_face_elsewhere(subject: Subject, checked: list[ReferencePhoto]) -> dict[int, Subject]:
    """Photos whose face is in one of the owner's subjects of the other kind ("me" and someone
    else): {photo id: that subject}. Only this owner's subjects are compared."""
    others = ReferencePhoto.objects.filter(
        subject__owner_id=subject.owner_id, embedding__isnull=False
    ).exclude(subject__kind=subject.kind)
    others = [p for p in others.select_related("subject") if p.embedding]
    found = {}
    for photo in checked:
        match = next(
            (
                o
                for o in others
                if faces.same_person(
                    photo.embedding, o.embedding, threshold=settings.FACE_MATCH_THRESHOLD
                )
            ),
            None,
        )
        if match is not None:
            found[photo.pk] = match.subject
    return found


def subject_identity_refresh(*, subject: Subject, _others: bool = True) -> None:
    """The identity check, the last one a photo passes: every photo whose face checks passed
    (it has an embedding) must show the person in the consent selfie, or, before consent, the
    same person as the rest of the set, and must not be a face the owner also has as the other
    kind of subject. This alone makes a photo OK, so a job stopped before it leaves its photos
    unusable. The summaries of the subject's photo checks are then told from the photos."""
    with transaction.atomic():
        checked = [p for p in subject.photos.all() if p.embedding]
        consent = subject.active_consent()
        anchor = consent.selfie_embedding if consent else None
        outliers = faces.identity_outliers(
            {p.pk: p.embedding for p in checked},
            anchor=anchor,
            threshold=settings.FACE_MATCH_THRESHOLD,
        )
        elsewhere = _same_face_elsewhere(subject, checked)
        for photo in checked:
            if photo.pk in elsewhere:
                other = elsewhere[photo.pk]
                status = ReferencePhoto.Status.FLAGGED
                verdict = checks.SAME_FACE_OTHER_SUBJECT.format(
                    subject=other.name, kind=checks.SAME_FACE_AS[other.kind]
                )
            elif photo.pk not in outliers:
                status, verdict = ReferencePhoto.Status.OK, checks.LOOKS_GOOD
            elif anchor is not None:
                status, verdict = ReferencePhoto.Status.FLAGGED, checks.NOT_CONSENTING_PERSON
            elif len(checked) == 2:
                status, verdict = ReferencePhoto.Status.FLAGGED, checks.DIFFERENT_PAIR
            else:
                status, verdict = ReferencePhoto.Status.FLAGGED, checks.DIFFERENT_PERSON
            if (photo.status, photo.verdict) != (status, verdict):
                ReferencePhoto.objects.filter(pk=photo.pk).update(status=status, verdict=verdict)
        photo_checks_sync(subject=subject)
    if _others:  # the rule goes both ways: the photos it matched are flagged there too
        for other in {s.pk: s for s in elsewhere.values()}.values():
            subject_identity_refresh(subject=other, _others=False)


def photo_check_result(result: dict, photo_id: int | None, photo: ReferencePhoto | None) -> dict:
    """One line of a photo check's summary, told from its photo as it is now (as the photo's
    card tells it). A line without a photo id was refused, and its photo deleted, in that check."""
    if photo_id is None:
        return result
    line = {"name": result["name"], "ok": False}
    if photo is None:
        return {**line, "verdict": checks.PHOTO_REMOVED}
    if photo.status == ReferencePhoto.Status.CHECKING:
        if photo.check_stopped:
            return {**line, "verdict": checks.CHECK_STOPPED}
        return {**line, "pending": True, "verdict": checks.FACE_CHECKS_PASSED}
    return {**line, "ok": photo.status == ReferencePhoto.Status.OK, "verdict": photo.verdict}


def photo_check_results(results: list[dict], photo_ids: list[int | None]) -> list[dict]:
    """`photo_check_result` for every line of a summary; `photo_ids` runs beside `results`."""
    photos = ReferencePhoto.objects.select_related("check_task").in_bulk(
        [pk for pk in photo_ids if pk is not None]
    )
    return [
        photo_check_result(r, pk, photos.get(pk)) for r, pk in zip(results, photo_ids, strict=True)
    ]


def photos_checked_event(*, subject: Subject, accepted: int, checked: int) -> None:
    """Tell the owner's webhooks that a batch of photo checks finished."""
    usable = subject.photos.filter(status=ReferencePhoto.Status.OK).count()
    data = {
        "subject_id": subject.pk,
        "checked": checked,
        "accepted": accepted,
        "usable_photos": usable,
        "url": webhooks.site_url(reverse("subject_detail", args=[subject.pk])),
    }
    webhooks.emit(user=subject.owner_id, event="photos.checked", data=data)


def photo_checks_sync(*, subject: Subject) -> None:
    """Rewrite the summaries of the subject's photo checks from the photos as they are now: a
    photo flagged or removed since reads so there too. A running check writes its own at its end."""
    for task in Task.objects.filter(scope=subject.scope, kind="photo_check"):
        details = task.details or {}
        results, photo_ids = details.get("results"), details.get("photos")
        if not results or not photo_ids or len(results) != len(photo_ids):
            continue
        fresh = photo_check_results(results, photo_ids)
        if fresh == results:
            continue
        fields = {"details": {**details, "results": fresh}}
        if task.status == Task.Status.SUCCEEDED:
            accepted = sum(bool(r["ok"]) for r in fresh)
            fields["message"] = checks.CHECK_SUMMARY.format(accepted=accepted, total=len(fresh))
        Task.objects.filter(pk=task.pk).update(**fields)


# --- consent ---------------------------------------------------------------------------------


def challenge_issue(*, subject: Subject, consent: Consent | None = None) -> tuple[Challenge, str]:
    """A fresh live-camera challenge (random order of moves) and its nonce, shown once."""
    now = timezone.now()
    # Old challenges are no use to anyone: answered or expired a day ago.
    Challenge.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    nonce = new_token()
    challenge = Challenge.objects.create(
        subject=subject,
        consent=consent,
        nonce_hash=hash_token(nonce),
        steps=list(liveness.random_steps()),
        expires_at=now + timedelta(seconds=settings.CONSENT_CHALLENGE_SECONDS),
    )
    return challenge, nonce


def _granted_fields(match: checks.SelfieMatch, consent_scope: scope.Scope, now) -> dict:
    return {
        "status": Consent.Status.GRANTED,
        "granted_at": now,
        "selfie_sha256": match.sha256,
        "selfie_embedding": match.embedding,
        "distances": match.distances,
        "selfie_method": match.method,
        "liveness": match.liveness,
        "publish": consent_scope.publish,
        "ends_at": consent_scope.ends_at,
        "ruled_out": list(consent_scope.ruled_out),
    }


def consent_by_selfie(
    *, subject: Subject, selfie: checks.Selfie, agreed: bool, consent_scope: scope.Scope
) -> Consent:
    """The creator is the subject: a fresh selfie that matches every photo grants consent."""
    if not agreed:
        raise ConsentRefused(SELFIE_MUST_AGREE)
    match = checks.selfie_match(subject, selfie)
    with transaction.atomic():
        consent = Consent.objects.create(
            subject=subject,
            method=Consent.Method.SELFIE,
            signed_name=subject.owner.get_full_name(),
            **_granted_fields(match, consent_scope, timezone.now()),
        )
        subject_identity_refresh(subject=subject)
        _consent_event(consent, "consent.given")
    return consent


def consent_link_create(
    *, subject: Subject, email: str = "", request_url=None
) -> tuple[Consent, str]:
    """A one-time link for someone else to consent. Returns the consent and the raw token.

    A bad email address is refused before anything changes: the old link stays usable."""
    from django.core.mail import send_mail

    if email and not email_valid(email):
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


def email_valid(email: str) -> bool:
    """One plain address that fits the field: no second address, no line break (headers)."""
    try:
        validate_email(email)
    except ValidationError:
        return False
    return len(email) <= EMAIL_MAX


def _check_link_usable(consent: Consent) -> None:
    if consent.status == Consent.Status.REVOKED:
        # A replaced link was never answered; a withdrawn consent was.
        raise ConsentRefused(LINK_WITHDRAWN if consent.granted_at else LINK_INVALID)
    if consent.status != Consent.Status.PENDING:
        raise ConsentRefused(LINK_USED)
    if consent.expires_at and consent.expires_at < timezone.now():
        raise ConsentRefused(LINK_EXPIRED)


def consent_answer_link(
    *,
    consent: Consent,
    agree: bool,
    selfie: checks.Selfie | None = None,
    signed_name: str = "",
    consent_scope: scope.Scope | None = None,
    block_face: bool = False,
) -> Consent:
    """The subject answers through their link: agree with a selfie, or decline (and, if they
    choose, keep their face from being trained on here again)."""
    signed_name = signed_name.strip()
    _check_link_usable(consent)
    if not agree:
        with transaction.atomic():
            consent = Consent.objects.select_for_update().get(pk=consent.pk)
            _check_link_usable(consent)
            consent.status = Consent.Status.DECLINED
            consent.declined_at = timezone.now()
            consent.save(update_fields=["status", "declined_at"])
            if block_face:
                _block(_reference_signature(consent.subject))
            _consent_event(consent, "consent.declined")
        _tell_creator(consent, "consent_declined")
        return consent
    if len(signed_name) > SIGNED_NAME_MAX:
        raise ConsentRefused(SIGNED_NAME_TOO_LONG)
    # The challenge is used up (committed) before the frames are judged: it answers once.
    match = checks.selfie_match(consent.subject, selfie or checks.Selfie(), consent=consent)
    with transaction.atomic():
        consent = Consent.objects.select_for_update().get(pk=consent.pk)
        _check_link_usable(consent)
        for name, value in _granted_fields(match, consent_scope, timezone.now()).items():
            setattr(consent, name, value)
        consent.signed_name = signed_name
        consent.save()
        subject_identity_refresh(subject=consent.subject)
        _consent_event(consent, "consent.given")
    _tell_creator(consent, "consent_given")
    return consent


def consent_revoke(
    *, subject: Subject, by: str, block_face: bool = False, tell: bool = True
) -> int:
    """Withdraw consent: stop training, delete the models, take the images made under it down,
    and keep the revocation on record. With `block_face`, the face can't be trained on here
    again (only its signature is kept)."""
    with transaction.atomic():
        live = Consent.objects.filter(
            subject=subject, status__in=(Consent.Status.GRANTED, Consent.Status.PENDING)
        )
        granted = list(live.filter(status=Consent.Status.GRANTED))
        withdrawn = list(live.values_list("pk", flat=True))
        taken_down = consents_withdraw(consent_ids=withdrawn, by=by)
        consent_revoked.send(sender=Subject, subject=subject, consent_ids=withdrawn)
        if block_face:
            signatures = [c.selfie_embedding for c in granted if c.selfie_embedding]
            _block(*(signatures or [_reference_signature(subject)]))
        subject_identity_refresh(subject=subject)
        for consent in granted:
            _consent_event(consent, "consent.revoked", revoked_by=by, posts_taken_down=taken_down)
    if tell and granted and (by == "subject" or taken_down):
        kind = "consent_revoked" if by == "subject" else "posts_taken_down"
        _tell_creator(granted[0], kind, taken_down=taken_down)
    return len(withdrawn)


def _reference_signature(subject: Subject) -> list[float] | None:
    """The mean face signature of a subject's checked photos (what a decline can block)."""
    signatures = [p.embedding for p in subject.photos.all() if p.embedding]
    if not signatures:
        return None
    return [round(sum(values) / len(values), 6) for values in zip(*signatures, strict=True)]


def _block(*signatures) -> None:
    FaceBlock.objects.bulk_create([FaceBlock(signature=s) for s in signatures if s])


def consents_withdraw(*, consent_ids: list[int], by: str) -> int:
    """Mark consents revoked and take down the images made under them; returns how many."""
    taken_down = sum(consent_withdrawn(consent_id=pk) for pk in consent_ids)
    Consent.objects.filter(pk__in=consent_ids).update(
        status=Consent.Status.REVOKED, revoked_at=timezone.now(), revoked_by=by
    )
    return taken_down


def post_withdraw_by_subject(*, consent: Consent, post) -> None:
    """The person shown takes down one image made with their likeness; its creator is told."""
    if post.withdrawn_at:
        return
    post_withdraw(post=post)
    notify(
        user=post.owner,
        kind="image_withdrawn",
        title=f"{consent.subject.name} took down an image of them",
        body="It was unpublished and its share link revoked. It can't be published or shared "
        "again; it stays in your gallery, labelled as such.",
        link=reverse("post_detail", args=[post.pk]),
    )


def consent_links_resend(*, email: str, request_url) -> int:
    """Email a fresh link to each consent that was asked of this address (the old link stops
    working). Says nothing to the caller about whether there were any."""
    from django.core.mail import send_mail

    sent = 0
    consents = Consent.objects.filter(
        method=Consent.Method.LINK, invited_email__iexact=email, subject__isnull=False
    ).select_related("subject", "subject__owner")
    for consent in consents:
        if consent.status == Consent.Status.PENDING and consent.expires_at < timezone.now():
            continue  # an expired request: the creator can ask again
        token = new_token()
        Consent.objects.filter(pk=consent.pk).update(token_hash=hash_token(token))
        send_mail(
            subject=f"Your consent page on {settings.SITE_NAME}",
            message=(
                f"Hello,\n\nHere is a fresh link to your consent page for @"
                f"{consent.subject.owner.handle} on {settings.SITE_NAME}. There you can see "
                f"every image made with your likeness, take any of them down, withdraw your "
                f"consent and download what {settings.SITE_NAME} holds about you:\n\n"
                f"{request_url(token)}\n\nThe link you had before no longer works.\n"
            ),
            from_email=None,
            recipient_list=[consent.invited_email],
        )
        sent += 1
    return sent


# --- telling the creator ---------------------------------------------------------------------


def _consent_event(consent: Consent, event: str, **facts) -> None:
    """A webhook event about a consent: ids and its state only, never face data or names."""
    subject = consent.subject
    if subject is None:
        return
    consent.refresh_from_db(fields=["status"])
    data = {
        "consent_id": consent.pk,
        "subject_id": subject.pk,
        "state": consent.status,
        "method": consent.method,
        "url": webhooks.site_url(reverse("subject_detail", args=[subject.pk])),
        **facts,
    }
    webhooks.emit(user=subject.owner_id, event=event, data=data)


def _tell_creator(consent: Consent, kind: str, *, taken_down: int = 0) -> None:
    """A notice (and an email) to the creator about the consent of a person they asked."""
    subject = consent.subject
    if subject is None:
        return
    name = subject.name
    images = f"{taken_down} image(s) made with their likeness were taken down" if taken_down else ""
    title, body, email = {
        "consent_given": (
            f"{name} gave consent",
            f"{name} agreed with a {consent.get_selfie_method_display().lower()}: images "
            f"{'may be published' if consent.publish == 'public' else 'stay private'}"
            + (f", until {consent.ends_at:%-d %b %Y}" if consent.ends_at else "")
            + ". You can train a model now.",
            True,
        ),
        "consent_declined": (
            f"{name} declined your consent request",
            "Nothing will be trained from the photos of them.",
            True,
        ),
        "consent_revoked": (
            f"{name} withdrew their consent",
            "Their models were deleted"
            + (f", and {images}" if images else "")
            + ". Nothing more can be made with their likeness.",
            True,
        ),
        "posts_taken_down": (
            f"Images of {name} taken down",
            f"You revoked {name}'s consent: {images}. They can't be published or shared again.",
            False,
        ),
        "consent_expired": (
            f"{name}'s consent link expired unused",
            "Nothing was trained. Make a new link if you still want to ask them.",
            True,
        ),
    }[kind]
    notify(
        user=subject.owner,
        kind=kind,
        title=title,
        body=body,
        link=reverse("subject_detail", args=[subject.pk]),
        email=email,
    )


def links_expired_notify() -> int:
    """Tell creators about consent links that expired unanswered (once each). Returns how many."""
    stale = Consent.objects.filter(
        method=Consent.Method.LINK,
        status=Consent.Status.PENDING,
        expires_at__lt=timezone.now(),
        expiry_noticed=False,
        subject__isnull=False,
    ).select_related("subject", "subject__owner")
    told = 0
    for consent in stale:
        if Consent.objects.filter(pk=consent.pk, expiry_noticed=False).update(expiry_noticed=True):
            _tell_creator(consent, "consent_expired")
            told += 1
    return told
