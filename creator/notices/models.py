"""Notices: what happened to a creator's consents, models and posts, in the app, by email and
by webhook."""

from django.conf import settings
from django.db import models


class Notice(models.Model):
    """One thing a creator should know about, with the page it leads to.

    The other contexts write notices through `services.notify`; this app knows nothing of what
    they are about beyond the kind, a sentence and a link.
    """

    class Kind(models.TextChoices):
        # Open list: a context that needs a new kind adds it here (its migration changes no table).
        CONSENT_GIVEN = "consent_given", "Consent given"
        CONSENT_DECLINED = "consent_declined", "Consent declined"
        CONSENT_REVOKED = "consent_revoked", "Consent revoked"
        CONSENT_EXPIRED = "consent_expired", "Consent expired"
        POSTS_TAKEN_DOWN = "posts_taken_down", "Posts taken down"
        TRAINING_SUCCEEDED = "training_succeeded", "Training succeeded"
        TRAINING_FAILED = "training_failed", "Training failed"
        GENERATION_FAILED = "generation_failed", "Generation failed"
        IMAGE_WITHDRAWN = "image_withdrawn", "Image taken down by the person shown"
        WEBHOOK_DISABLED = "webhook_disabled", "Webhook turned off"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(max_length=40, choices=Kind)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=200, blank=True)  # relative: "/subjects/12/"
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class WebhookEndpoint(models.Model):
    """A URL of the creator's that is sent the events it asked for, signed with its own secret
    (Standard Webhooks)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Event types (creator/notices/webhooks.py EVENTS); ["*"] is every event, new ones included.
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=100)  # "whsec_" + base64 of random bytes
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)  # deliveries given up in a row
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def all_events(self) -> bool:
        return "*" in self.events

    def wants(self, event: str) -> bool:
        return self.all_events or event in self.events


class WebhookDelivery(models.Model):
    """One event sent to one endpoint: every attempt carries the same `msg_id` (webhook-id), so
    a receiver can tell a retry from a new event."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        FAILED = "failed", "Failed, will retry"
        SUCCEEDED = "succeeded", "Delivered"
        GAVE_UP = "gave_up", "Gave up"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    msg_id = models.CharField(max_length=40, unique=True)
    payload = models.JSONField()
    attempts = models.PositiveSmallIntegerField(default=0)
    # One entry per attempt: {"at": iso time, "code": HTTP status or null, "error": short text}.
    attempt_log = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    # When the next attempt is due; also moved ahead while one is in flight, so that two senders
    # never make the same attempt (null once the delivery has ended).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} {self.msg_id}"

    @property
    def codes(self) -> list:
        return [entry.get("code") for entry in self.attempt_log]
