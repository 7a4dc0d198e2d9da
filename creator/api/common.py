"""Idempotency-Key replays for the POSTs that start work."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from ninja import Status

from config.api import KEY_IN_PROGRESS, KEY_REUSED, ApiError
from creator.api.models import IdempotentRequest

KEY_TOO_LONG = "An Idempotency-Key is at most 255 characters."


def idempotent(request, run: Callable[[], Status]) -> Status:
    """Run `run` once per Idempotency-Key: a retried request (same key, same method, path and
    body) gets the first answer back and starts nothing; the same key on another request is a
    409. Errors are not kept: the client may fix the request and retry with the key."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return run()
    if len(key) > 255:
        raise ApiError("invalid_request", KEY_TOO_LONG)
    fingerprint = hashlib.sha256(
        b"\n".join([request.method.encode(), request.path.encode(), request.body])
    ).hexdigest()
    user = request.auth.user
    horizon = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    IdempotentRequest.objects.filter(user=user, created_at__lt=horizon).delete()
    try:
        with transaction.atomic():
            row = IdempotentRequest.objects.create(user=user, key=key, fingerprint=fingerprint)
    except IntegrityError:
        row = IdempotentRequest.objects.get(user=user, key=key)
        if row.fingerprint != fingerprint:
            raise ApiError("idempotency_key_reused", KEY_REUSED) from None
        if row.status is None:
            raise ApiError("idempotency_in_progress", KEY_IN_PROGRESS) from None
        return Status(row.status, row.body)
    try:
        answer = run()
    except BaseException:
        row.delete()
        raise
    row.status = answer.status_code
    row.body = json.loads(json.dumps(answer.value, default=str))
    row.save(update_fields=["status", "body"])
    return answer
