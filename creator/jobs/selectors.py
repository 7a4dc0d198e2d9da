"""Reads of the job runtime."""

from django.db.models import QuerySet

from creator.jobs.models import Task


def tasks_for_user(user, *, limit: int = 10) -> QuerySet[Task]:
    return Task.objects.filter(owner=user).order_by("-created_at")[:limit]
