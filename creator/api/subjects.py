"""Subjects, their reference photos and their consent: the same services the pages use."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile

from config.api import ApiError, Page, errors, need, not_found, page
from creator.jobs.runtime import QueueUnavailable
from creator.likeness import selectors, services
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import ReferencePhoto, Subject

router = Router(tags=["subjects"])
QUEUE_DOWN = "The job queue can't be reached, so nothing was stored. Try again in a minute."


class PhotoCounts(Schema):
    ok: int
    checking: int
    flagged: int


class ConsentOut(Schema):
    state: Literal["none", "awaiting", "agreed", "declined", "revoked", "expired"]
    label: str
    detail: str
    ends_at: datetime | None
    publish: str | None  # "public" or "private": what the person allowed
    ruled_out: list[str]


class SubjectOut(Schema):
    id: int
    kind: Literal["self", "other"]
    name: str
    created_at: datetime
    photos: PhotoCounts
    consent: ConsentOut
    ready: bool
    not_ready_because: list[str]


class SubjectPage(Page):
    items: list[SubjectOut]


class SubjectIn(Schema):
    kind: Literal["self", "other"] = "self"
    name: str = ""


class PhotoOut(Schema):
    id: int
    original_name: str
    status: Literal["checking", "ok", "flagged"]
    verdict: str
    width: int
    height: int
    created_at: datetime


class PhotoPage(Page):
    items: list[PhotoOut]


class Rejected(Schema):
    name: str
    reason: str


class UploadOut(Schema):
    accepted: list[PhotoOut]
    rejected: list[Rejected]
    check_task_id: str | None


class ConsentLinkIn(Schema):
    email: str = ""


class ConsentLinkOut(Schema):
    url: str
    expires_at: datetime


def owned_subject(request, subject_id: int) -> Subject:
    subject = selectors.subjects_for_user(request.auth.user).filter(pk=subject_id).first()
    if subject is None:
        raise not_found("subject")
    return subject


def consent_out(subject: Subject) -> dict:
    state = selectors.consent_state(subject)
    consent = subject.active_consent()
    return {
        "state": state.code,
        "label": state.label,
        "detail": state.detail,
        "ends_at": consent.ends_at if consent else None,
        "publish": (consent.publish or None) if consent else None,
        "ruled_out": list(consent.ruled_out) if consent else [],
    }


def subject_out(subject: Subject) -> dict:
    readiness = selectors.subject_readiness(subject)
    return {
        "id": subject.pk,
        "kind": subject.kind,
        "name": subject.name,
        "created_at": subject.created_at,
        "photos": {
            "ok": readiness.ok,
            "checking": readiness.checking,
            "flagged": readiness.flagged,
        },
        "consent": consent_out(subject),
        "ready": readiness.ready,
        "not_ready_because": list(readiness.reasons),
    }


def photo_out(photo: ReferencePhoto) -> dict:
    return {
        "id": photo.pk,
        "original_name": photo.original_name,
        "status": photo.status,
        "verdict": photo.verdict,
        "width": photo.width,
        "height": photo.height,
        "created_at": photo.created_at,
    }


@router.get("/subjects", response={200: SubjectPage, **errors(403)}, summary="List subjects")
def subject_list(request, cursor: str | None = None, limit: int = 20):
    need(request, "read")
    return page(selectors.subjects_for_user(request.auth.user), cursor, limit, subject_out)


@router.post("/subjects", response={201: SubjectOut, **errors(400, 403)}, summary="Add a subject")
def subject_create(request, body: SubjectIn):
    """`self` is you (one per account); `other` is someone who will consent through a link."""
    need(request, "write")
    subject = services.subject_create(owner=request.auth.user, kind=body.kind, name=body.name)
    return Status(201, subject_out(subject))


@router.get(
    "/subjects/{subject_id}",
    response={200: SubjectOut, **errors(403, 404)},
    summary="Show a subject",
)
def subject_show(request, subject_id: int):
    need(request, "read")
    return subject_out(owned_subject(request, subject_id))


@router.delete(
    "/subjects/{subject_id}", response={204: None, **errors(403, 404)}, summary="Delete a subject"
)
def subject_delete(request, subject_id: int):
    """Deletes the subject, its photos, models and jobs; consent is revoked and recorded."""
    need(request, "write")
    services.subject_delete(subject=owned_subject(request, subject_id))
    return Status(204, None)


@router.get(
    "/subjects/{subject_id}/photos",
    response={200: PhotoPage, **errors(403, 404)},
    summary="List a subject's photos",
)
def photo_list(request, subject_id: int, cursor: str | None = None, limit: int = 20):
    need(request, "read")
    subject = owned_subject(request, subject_id)
    return page(selectors.subject_photos(subject), cursor, limit, photo_out)


@router.post(
    "/subjects/{subject_id}/photos",
    response={201: UploadOut, **errors(400, 403, 404, 413, 503)},
    summary="Upload reference photos",
)
def photo_upload(request, subject_id: int, files: list[UploadedFile] = File(...)):  # noqa: B008
    """One or many photos (multipart field `files`): the same intake and face checks as the
    page. Each refused file says why; the accepted ones are checked in a background job."""
    need(request, "write")
    subject = owned_subject(request, subject_id)
    try:
        result = services.photos_add(subject=subject, files=list(files))
    except QueueUnavailable:
        raise ApiError("queue_unavailable", QUEUE_DOWN) from None
    if result.error:
        raise ApiError("refused", result.error)
    return Status(
        201,
        {
            "accepted": [photo_out(p) for p in result.accepted],
            "rejected": [{"name": name, "reason": reason} for name, reason in result.rejected],
            "check_task_id": str(result.task.pk) if result.task else None,
        },
    )


@router.delete(
    "/subjects/{subject_id}/photos/{photo_id}",
    response={204: None, **errors(403, 404)},
    summary="Delete a photo",
)
def photo_delete(request, subject_id: int, photo_id: int):
    need(request, "write")
    subject = owned_subject(request, subject_id)
    photo = subject.photos.filter(pk=photo_id).first()
    if photo is None:
        raise not_found("photo")
    services.photo_delete(photo=photo)
    return Status(204, None)


@router.get(
    "/subjects/{subject_id}/consent",
    response={200: ConsentOut, **errors(403, 404)},
    summary="Show where consent stands",
)
def consent_show(request, subject_id: int):
    """Consent itself is a browser step: the person takes a live camera check."""
    need(request, "read")
    return consent_out(owned_subject(request, subject_id))


@router.post(
    "/subjects/{subject_id}/consent-links",
    response={201: ConsentLinkOut, **errors(400, 403, 404)},
    summary="Create a consent link for someone else",
)
def consent_link_create(request, subject_id: int, body: ConsentLinkIn):
    """A one-time link for the person in the photos (a subject of kind `other`); with `email`,
    it is also sent to them. Any earlier unanswered link stops working."""
    need(request, "write")
    subject = owned_subject(request, subject_id)
    if subject.is_self:
        raise ApiError("refused", "You consent for yourself in the browser, with the camera check.")

    def link(token: str) -> str:
        return settings.SITE_URL + reverse("consent_link", args=[token])

    try:
        with transaction.atomic():
            consent, token = services.consent_link_create(
                subject=subject, email=body.email.strip(), request_url=link
            )
    except ConsentRefused as exc:
        raise ApiError("refused", exc.message) from None
    return Status(201, {"url": link(token), "expires_at": consent.expires_at})
