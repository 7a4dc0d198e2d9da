"""Notices: what happened to a creator's consents, models and posts, in the app and by email."""

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
