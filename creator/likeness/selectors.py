"""Reads of the likeness context."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from creator.jobs.models import Task
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import Consent, ReferencePhoto, Subject
from creator.likeness.services import LINK_INVALID, hash_token


def subjects_for_user(user) -> QuerySet[Subject]:
    return Subject.objects.filter(owner=user).annotate(photo_count=Count("photos"))


CHECKS_STOPPED = (
    "{count} photo(s) can't be used: their check was stopped before it finished. "
    "Retry the check or remove them."
)


def subject_photos(subject: Subject) -> QuerySet[ReferencePhoto]:
    return subject.photos.select_related("check_task")


def photo_checks_to_show(subject: Subject) -> list[Task]:
    """The latest photo check, and every stopped one that left photos unusable (to retry)."""
    latest = Task.objects.filter(scope=subject.scope, kind="photo_check").first()
    stopped = Task.objects.filter(
        scope=subject.scope,
        kind="photo_check",
        pk__in=subject.photos.filter(status=ReferencePhoto.Status.CHECKING).values("check_task"),
    ).exclude(status__in=Task.ACTIVE)
    tasks = [latest] if latest else []
    return tasks + [t for t in stopped if t != latest]


@dataclass
class Readiness:
    ready: bool
    ok: int
    checking: int
    flagged: int
    stopped: int = 0
    reasons: list[str] = field(default_factory=list)
    advice: str = ""


def subject_readiness(subject: Subject) -> Readiness:
    """Only OK photos count: every check, identity included, passed for them."""
    counts = {status: 0 for status in ReferencePhoto.Status.values}
    stopped = 0
    for photo in subject_photos(subject):
        if photo.check_stopped:
            stopped += 1
        else:
            counts[photo.status] += 1
    ok, checking, flagged = counts["ok"], counts["checking"], counts["flagged"]
    low, high = settings.PHOTOS_RECOMMENDED
    reasons = []
    if checking:
        reasons.append(f"{checking} photo(s) are still being checked.")
    if stopped:
        reasons.append(CHECKS_STOPPED.format(count=stopped))
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
        ready=not reasons,
        ok=ok,
        checking=checking,
        flagged=flagged,
        stopped=stopped,
        reasons=reasons,
        advice=advice,
    )


def consent_for_token(token: str) -> Consent:
    """The consent a link points at; raises ConsentRefused for an unknown token."""
    consent = (
        Consent.objects.select_related("subject", "subject__owner")
        .filter(method=Consent.Method.LINK, token_hash=hash_token(token), subject__isnull=False)
        .first()
    )
    if consent is None:
        raise ConsentRefused(LINK_INVALID)
    return consent


def link_expired(consent: Consent) -> bool:
    return bool(
        consent.status == Consent.Status.PENDING
        and consent.expires_at
        and consent.expires_at < timezone.now()
    )


def consent_link_photos(consent: Consent) -> QuerySet[ReferencePhoto]:
    """The photos a consent link shows: only while it can be answered, and only those that
    passed every check and were there when the link was made."""
    if consent.status != Consent.Status.PENDING or link_expired(consent) or consent.subject is None:
        return ReferencePhoto.objects.none()
    return consent.subject.photos.filter(
        status=ReferencePhoto.Status.OK, created_at__lte=consent.created_at
    )
