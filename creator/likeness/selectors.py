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


def latest_photo_check(subject: Subject) -> Task | None:
    return Task.objects.filter(scope=subject.scope, kind="photo_check").first()


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
