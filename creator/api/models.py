"""What the API keeps of its own: the answers to requests sent with an Idempotency-Key."""

from django.conf import settings
from django.db import models


class IdempotentRequest(models.Model):
    """The first answer to a POST with an Idempotency-Key: a retry gets the same answer and
    starts no second piece of work. Kept for API_IDEMPOTENCY_HOURS."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # method, path and body, hashed
    status = models.PositiveSmallIntegerField(null=True)  # None: the first request still runs
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key}"
