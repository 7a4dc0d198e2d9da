"""The Task row: the state of every background job, kept by Candor rather than only in RQ."""

import uuid

from django.conf import settings
from django.db import models


class Task(models.Model):
    """The state of one piece of background work, kept on our own row rather than only in RQ.

    Pages read this row for live progress; the reconciler fails it when its RQ job failed,
    was abandoned or vanished, so a row never stays RUNNING forever. The runtime knows nothing
    of what a job is about: `scope` lets the context that started it find its own jobs again,
    and `link` is the page a person goes to from the job's card.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks"
    )
    scope = models.CharField(max_length=80, blank=True, db_index=True)  # e.g. "subject:12"
    link = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    queue = models.CharField(max_length=40, default="default")
    job_func = models.CharField(max_length=200)
    job_kwargs = models.JSONField(default=dict, blank=True)
    rq_job_id = models.CharField(max_length=80, unique=True)
    attempts = models.PositiveIntegerField(default=1)

    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker_name = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def can_retry(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELLED)

    @property
    def percent(self) -> int:
        return round(100 * self.progress)
