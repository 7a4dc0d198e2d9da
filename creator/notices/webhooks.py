"""Webhooks (Standard Webhooks): a creator's endpoints, the events they are sent, and delivery.

`emit` records one delivery per endpoint that asked for the event and, once the transaction
commits, queues its first attempt on the `default` queue. An attempt that fails is retried
after the next of WEBHOOK_RETRY_DELAYS with the same webhook-id, a fresh timestamp and
signature. Retries are not RQ scheduled jobs: `candor up` runs its worker without RQ's scheduler,
and a single worker may be busy training for hours. So a delivery's next attempt is a time on its
row, and the worker's housekeeping (every ~30 s, in a thread beside whatever job is running)
sends what is due, sleeping until attempts due within the next half minute. Each attempt is
claimed by moving that time ahead first, so two senders never make the same one.

After WEBHOOK_DISABLE_AFTER deliveries in a row were given up, the endpoint is turned off and its
owner gets a notice.
"""

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import django_rq
import redis
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Min
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from config.refusal import Refusal
from creator.accounts.models import User
from creator.notices import webhook_http
from creator.notices.models import WebhookDelivery, WebhookEndpoint
from creator.notices.services import notify
from creator.notices.webhook_http import UrlRefused

log = logging.getLogger(__name__)

# Event type -> what a creator ticks on the form.
EVENTS = {
    "photos.checked": "Photo checks finished",
    "consent.given": "Consent given",
    "consent.declined": "Consent declined",
    "consent.revoked": "Consent revoked",
    "training.progress": "Training progress (25, 50 and 75 %)",
    "training.succeeded": "Training succeeded",
    "training.failed": "Training failed",
    "generation.succeeded": "Images made",
    "generation.failed": "Making images failed",
    "post.published": "Post published",
    "post.unpublished": "Post unpublished",
    "post.taken_down": "Post taken down",
}
ALL_EVENTS = "*"
TEST_EVENT = "webhook.test"  # sent by the page's button, to that endpoint only, once
TRAINING_MILESTONES = (25, 50, 75)  # percent
QUEUE = "default"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix
SECRET_BYTES = 32
ENDPOINTS_MAX = 20
LOG_SIZE = 50  # deliveries an endpoint's page lists
# How long an attempt holds its delivery before another sender may make it again.
CLAIM_SECONDS = 60
# The housekeeping sender stays (sleeping) for attempts due within this long.
SWEEP_HORIZON = timedelta(seconds=30)
SWEEP_BATCH = 100

EVENTS_NONE = "Choose at least one event, or “All events”."
EVENTS_UNKNOWN = "That isn't an event Candor sends: {event}."
ENDPOINTS_TOO_MANY = f"You can have at most {ENDPOINTS_MAX} webhook endpoints."
DESCRIPTION_MAX = WebhookEndpoint._meta.get_field("description").max_length
DESCRIPTION_TOO_LONG = f"The description is too long: at most {DESCRIPTION_MAX} characters."
TEST_NEEDS_ENABLED = "Turn this endpoint on to send it a test event."
DISABLED_BY_YOU = "Turned off by you."
DISABLED_AFTER_FAILURES = (
    "Turned off after {count} deliveries in a row failed (each was retried for about a day)."
)
ENDPOINT_OFF = "Not sent: the endpoint was turned off."

Status = WebhookDelivery.Status
WAITING = (Status.PENDING, Status.FAILED)


class EndpointRefused(Refusal):
    """An endpoint that can't be saved as asked; `field` is the form field it is about."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- signing -----------------------------------------------------------------------------------


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header: `v1,` + base64 HMAC-SHA256 of "id.timestamp.body", keyed
    with the secret's base64 part decoded (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def body_of(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def site_url(path: str) -> str:
    """An absolute link to a page of this site, for a payload's `url`."""
    return f"{settings.SITE_URL}{path}"


# --- endpoints ---------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """The address a webhook URL resolves to (checked, as deliveries will pin it); raises
    UrlRefused with the reason a creator can act on."""
    return webhook_http.check_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE).ip


def _clean(*, url: str, description: str, events: list[str]) -> dict:
    url = url.strip()
    try:
        check_url(url)
    except UrlRefused as exc:
        raise EndpointRefused(exc.message, "url") from None
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        raise EndpointRefused(DESCRIPTION_TOO_LONG, "description")
    if ALL_EVENTS in events:
        events = [ALL_EVENTS]
    else:
        for event in events:
            if event not in EVENTS:
                raise EndpointRefused(EVENTS_UNKNOWN.format(event=event), "events")
        events = [e for e in EVENTS if e in events]  # the page's order, no repeats
    if not events:
        raise EndpointRefused(EVENTS_NONE, "events")
    return {"url": url, "description": description, "events": events}


def endpoint_create(
    *, user: User, url: str, description: str = "", events: list[str]
) -> WebhookEndpoint:
    fields = _clean(url=url, description=description, events=events)
    if WebhookEndpoint.objects.filter(user=user).count() >= ENDPOINTS_MAX:
        raise EndpointRefused(ENDPOINTS_TOO_MANY)
    return WebhookEndpoint.objects.create(user=user, secret=secret_new(), **fields)


def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, description: str = "", events: list[str]
) -> WebhookEndpoint:
    for name, value in _clean(url=url, description=description, events=events).items():
        setattr(endpoint, name, value)
    endpoint.save(update_fields=["url", "description", "events"])
    return endpoint


def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.consecutive_failures = 0
    endpoint.save(update_fields=["enabled", "disabled_reason", "consecutive_failures"])
    return endpoint


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str = DISABLED_BY_YOU) -> bool:
    """Turn an endpoint off; what was still waiting for it is not sent. False when it was off."""
    with transaction.atomic():
        turned_off = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:200]
        )
        WebhookDelivery.objects.filter(endpoint=endpoint, status__in=WAITING).update(
            status=Status.GAVE_UP, last_error=ENDPOINT_OFF, next_attempt_at=None
        )
    endpoint.refresh_from_db()
    return bool(turned_off)


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()  # its deliveries go with it; a job that finds its row gone does nothing


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; deliveries from now on (retries too) are signed with it."""
    endpoint.secret = secret_new()
    endpoint.save(update_fields=["secret"])
    return endpoint


def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint only: one attempt, not counted as a failure."""
    if not endpoint.enabled:
        raise EndpointRefused(TEST_NEEDS_ENABLED)
    data = {"endpoint_url": endpoint.url, "message": "A test event from the webhooks page."}
    return _deliveries_create([endpoint], TEST_EVENT, data)[0]


# --- events ------------------------------------------------------------------------------------


def emit(*, user: User | int, event: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Send `event` to each of the user's enabled endpoints that asked for it (after commit).

    `data` holds ids and public facts only: it leaves this server."""
    if event not in EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}")
    user_id = getattr(user, "pk", user)
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(user_id=user_id, enabled=True) if e.wants(event)
    ]
    return _deliveries_create(endpoints, event, data) if endpoints else []


def _deliveries_create(endpoints, event: str, data: dict) -> list[WebhookDelivery]:
    now = timezone.now()
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            event=event,
            msg_id=f"msg_{secrets.token_urlsafe(18)}",
            payload=payload,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    )
    msg_ids = [d.msg_id for d in deliveries]  # bulk_create leaves pk unset on some databases
    transaction.on_commit(lambda: _enqueue(msg_ids))
    return deliveries


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def _enqueue(msg_ids: list[str]) -> None:
    try:
        queue = django_rq.get_queue(
            QUEUE, commit_mode="auto", connection=_client(settings.RQ_QUEUES[QUEUE]["URL"])
        )
        for msg_id in msg_ids:
            queue.enqueue_call(
                func=delivery_send, args=(msg_id,), result_ttl=0, failure_ttl=24 * 3600
            )
    except (RedisError, OSError) as exc:
        # Nothing is lost: the row is due now, and the worker's housekeeping sends it.
        log.warning("Could not queue webhook deliveries: %s", exc)


# --- delivery ----------------------------------------------------------------------------------


def delivery_send(msg_id: str) -> None:
    """The RQ job: the first attempt of one delivery (a no-op when another sender made it)."""
    if not connection.in_atomic_block:  # a worker between jobs: drop stale connections
        close_old_connections()
    delivery_attempt(msg_id=msg_id)


def _claim(msg_id: str) -> WebhookDelivery | None:
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        msg_id=msg_id, status__in=WAITING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS + 3 * settings.WEBHOOK_TIMEOUT))
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(msg_id=msg_id)


def delivery_attempt(*, msg_id: str) -> WebhookDelivery | None:
    """Make a delivery's attempt if it is due and nobody else is making it; returns it then."""
    delivery = _claim(msg_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        delivery.status, delivery.last_error, delivery.next_attempt_at = (
            Status.GAVE_UP,
            ENDPOINT_OFF,
            None,
        )
        delivery.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
        return delivery
    try:
        target = webhook_http.check_url(
            endpoint.url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE
        )  # again: what a name resolves to can change after the endpoint was saved
    except UrlRefused as exc:
        answer = webhook_http.Answer(None, exc.message)
    else:
        body = body_of(delivery.payload)
        timestamp = int(time.time())
        headers = {
            "webhook-id": delivery.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, delivery.msg_id, timestamp, body),
        }
        answer = webhook_http.post(
            target, body=body.encode(), headers=headers, timeout=settings.WEBHOOK_TIMEOUT
        )
    _record(delivery, answer)
    return delivery


def _record(delivery: WebhookDelivery, answer: webhook_http.Answer) -> None:
    now = timezone.now()
    delays = list(settings.WEBHOOK_RETRY_DELAYS)
    is_test = delivery.event == TEST_EVENT
    delivery.attempts += 1
    delivery.attempt_log = [
        *delivery.attempt_log,
        {"at": now.isoformat(), "code": answer.code, "error": answer.error},
    ]
    delivery.last_response_code = answer.code
    delivery.last_error = answer.error
    if answer.ok:
        delivery.status, delivery.next_attempt_at = Status.SUCCEEDED, None
    elif not is_test and delivery.attempts < len(delays):
        delivery.status = Status.FAILED
        delivery.next_attempt_at = now + timedelta(seconds=delays[delivery.attempts])
    else:
        delivery.status, delivery.next_attempt_at = Status.GAVE_UP, None
    delivery.save()
    if is_test:
        return
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    if answer.ok:
        endpoints.exclude(consecutive_failures=0).update(consecutive_failures=0)
    elif delivery.status == Status.GAVE_UP:
        endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
        _maybe_turn_off(delivery.endpoint)


def _maybe_turn_off(endpoint: WebhookEndpoint) -> None:
    endpoint.refresh_from_db()
    count = endpoint.consecutive_failures
    if count < settings.WEBHOOK_DISABLE_AFTER or not endpoint.enabled:
        return
    if endpoint_disable(endpoint=endpoint, reason=DISABLED_AFTER_FAILURES.format(count=count)):
        host = urlsplit(endpoint.url).hostname or endpoint.url
        notify(
            user=endpoint.user,
            kind="webhook_disabled",
            title=f"Your webhook to {host} was turned off",
            body=f"{count} deliveries in a row failed, each retried for about a day. Fix the "
            "receiver, then turn the endpoint on again; the log shows what it answered.",
            link=reverse("webhook_detail", args=[endpoint.pk]),
        )


def _due():
    return WebhookDelivery.objects.filter(status__in=WAITING, endpoint__enabled=True)


def deliveries_send_due(*, limit: int = SWEEP_BATCH) -> int:
    """Make every attempt that is due now (first attempts left behind too); returns how many."""
    due = _due().filter(next_attempt_at__lte=timezone.now()).order_by("next_attempt_at")
    sent = 0
    for msg_id in list(due.values_list("msg_id", flat=True)[:limit]):
        if delivery_attempt(msg_id=msg_id) is not None:
            sent += 1
    return sent


_sweeping = threading.Lock()


def deliveries_sweep() -> None:
    """For the worker's housekeeping: send what is due in a thread of its own, so that slow
    receivers never hold up the heartbeat (a worker that misses beats counts as dead)."""
    if not _sweeping.acquire(blocking=False):
        return  # the last sweep is still sending
    try:
        threading.Thread(target=_sweep, name="candor-webhooks", daemon=True).start()
    except RuntimeError:
        _sweeping.release()
        raise


def _sweep() -> None:
    try:
        while True:
            deliveries_send_due()
            soonest = _due().aggregate(at=Min("next_attempt_at"))["at"]
            wait = (soonest - timezone.now()) if soonest else None
            if wait is None or wait > SWEEP_HORIZON:
                return
            time.sleep(min(max(wait.total_seconds(), 0.05), SWEEP_HORIZON.total_seconds()))
    except Exception:
        log.exception("Sending webhooks failed")
    finally:
        connection.close()
        _sweeping.release()
