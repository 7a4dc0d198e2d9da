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
from gallery.selectors import posts_made_under


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
    ended = subject.consents.filter(status=Consent.Status.GRANTED, ends_at__lte=timezone.now())
    if consent is None and ended.exists():
        reasons.append(
            f"{subject.name}'s consent has ended: a new consent is needed to train or make images."
        )
    elif consent is None:
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


def posts_of_subject(subject: Subject):
    """Every image made with this subject's likeness under any of its consents."""
    return posts_made_under(subject.consents.values_list("pk", flat=True))


@dataclass(frozen=True)
class ConsentState:
    code: str  # none, awaiting, agreed, declined, revoked, expired
    label: str
    detail: str = ""


def consent_state(subject: Subject) -> ConsentState:
    """Where a subject's consent stands, from its latest consent record."""
    latest = subject.consents.order_by("-created_at").first()
    if latest is None:
        return ConsentState("none", "No consent yet")
    status = latest.status
    if status == Consent.Status.GRANTED:
        if latest.ended:
            return ConsentState("expired", "Consent ended", f"on {latest.ends_at:%-d %b %Y}")
        until = f"until {latest.ends_at:%-d %b %Y}" if latest.ends_at else ""
        return ConsentState("agreed", "Consent given", until)
    if status == Consent.Status.PENDING:
        if link_expired(latest):
            return ConsentState("expired", "Link expired unanswered")
        return ConsentState("awaiting", "Awaiting consent")
    if status == Consent.Status.DECLINED:
        return ConsentState("declined", "Declined")
    return ConsentState("revoked", "Consent revoked")
