"""Reads of the creator app."""

from django.db.models import Count, QuerySet

from creator.models import Subject, Task, User


def tasks_for_user(user: User, *, limit: int = 10) -> QuerySet[Task]:
    return Task.objects.filter(owner=user).order_by("-created_at")[:limit]


def latest_photo_check(subject: Subject) -> Task | None:
    return Task.objects.filter(subject=subject, kind="photo_check").order_by("-created_at").first()


def subjects_for_user(user: User) -> QuerySet[Subject]:
    return Subject.objects.filter(owner=user).annotate(photo_count=Count("photos"))
