"""Reads of notices."""

from django.db.models import QuerySet

from creator.notices.models import Notice, WebhookDelivery, WebhookEndpoint

PAGE_SIZE = 50


def unread_count(user) -> int:
    return Notice.objects.filter(user=user, read_at__isnull=True).count()


def notices_for(user) -> QuerySet[Notice]:
    """A creator's notices, latest first (the page shows PAGE_SIZE at a time)."""
    return Notice.objects.filter(user=user).order_by("-created_at", "-pk")


def webhook_endpoints_for(user) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(user=user).order_by("-created_at", "-pk")


def webhook_deliveries_for(endpoint: WebhookEndpoint, limit: int = 50) -> list[WebhookDelivery]:
    """An endpoint's delivery log, latest first."""
    return list(endpoint.deliveries.order_by("-created_at", "-pk")[:limit])
