"""Reads of the creator app."""

from django.db.models import QuerySet

from creator.models import Task, User


def tasks_for_user(user: User, *, limit: int = 10) -> QuerySet[Task]:
    return Task.objects.filter(owner=user).order_by("-created_at")[:limit]
