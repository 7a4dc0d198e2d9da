"""What every API resource shares, whichever app it lives in: RFC 9457 problem details with a
stable `code`, the documented error responses, scope checks and cursor pages.

A client branches on `code` (stable) and shows `detail` (plain words, the same message the pages
show). `type` points at the code's description in the API's own documentation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import JsonResponse
from ninja import Schema

PROBLEM_TYPE = "application/problem+json"

# code: (HTTP status, title). Documented in the OpenAPI description; never renamed.
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (422, "The request doesn't match the schema"),
    "refused": (400, "The request was understood but can't be done"),
    "unauthenticated": (401, "A valid API token is needed"),
    "insufficient_scope": (403, "The token lacks the scope this needs"),
    "not_found": (404, "No such object"),
    "conflict": (409, "The request conflicts with the object's state"),
    "idempotency_key_reused": (409, "This Idempotency-Key was used for a different request"),
    "idempotency_in_progress": (409, "A request with this Idempotency-Key is still running"),
    "payload_too_large": (413, "The upload is too large"),
    "rate_limited": (429, "Too many requests"),
    "queue_unavailable": (503, "The job queue can't be reached"),
    "busy": (503, "The server is busy; retry after the Retry-After seconds"),
}
ERROR_STATUSES = frozenset(status for status, _ in CODES.values())

NO_TOKEN = "Send an API token as `Authorization: Bearer <token>` (make one on your account page)."  # noqa: S105
NEEDS_SCOPE = "This token can't do that: it needs the {scope!r} scope."
NOT_FOUND = "There is no such {kind}, or it isn't yours."
TOO_MANY = "Too many requests with this token: wait {wait} s and try again."
KEY_REUSED = (
    "This Idempotency-Key was already used for a different request; use a new key for a new "
    "request."
)
KEY_IN_PROGRESS = "A request with this Idempotency-Key is still being handled; retry shortly."


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict] | None = None  # invalid_request: what was wrong, field by field


class ApiError(Exception):
    def __init__(self, code: str, detail: str, *, errors=None, headers=None):
        super().__init__(detail)
        self.code, self.detail, self.errors, self.headers = code, detail, errors, headers or {}


def problem(code: str, detail: str, *, errors=None, headers=None) -> JsonResponse:
    status, title = CODES[code]
    body = {
        "type": f"/api/v1/docs#problem-{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    response = JsonResponse(body, status=status, content_type=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def not_found(kind: str) -> ApiError:
    return ApiError("not_found", NOT_FOUND.format(kind=kind))


def described() -> str:
    """The problem codes as a Markdown list, for the OpenAPI description."""
    return "\n".join(
        f'- <a id="problem-{code}"></a>`{code}` ({status}): {title}.'
        for code, (status, title) in CODES.items()
    )


def need(request, scope: str) -> None:
    """Refuse (403) unless the request's token has `scope` (read, write or train)."""
    if scope not in (getattr(request.auth, "scopes", None) or ()):
        raise ApiError("insufficient_scope", NEEDS_SCOPE.format(scope=scope))


DEFAULT_LIMIT, MAX_LIMIT = 20, 100
BAD_CURSOR = "This cursor is not one the API gave out; start again without it."


def errors(*statuses: int) -> dict:
    """The error responses an operation documents (every operation may answer 401 and 429)."""
    return {status: Problem for status in sorted({401, 422, 429, *statuses})}


class Page(Schema):
    next_cursor: str | None = None


def _encode(created_at: datetime, pk) -> str:
    raw = json.dumps([created_at.isoformat(), str(pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, pk = json.loads(raw)
        return datetime.fromisoformat(stamp), str(pk)
    except (ValueError, TypeError):
        raise ApiError(
            "invalid_request", BAD_CURSOR, errors=[{"loc": ["query", "cursor"], "msg": BAD_CURSOR}]
        ) from None


def page(queryset: QuerySet, cursor: str | None, limit: int, item: Callable) -> dict:
    """Newest first; `next_cursor` fetches the page after this one (None: this is the last).
    Stable while objects are added: the cursor is the last item's (created_at, id)."""
    limit = max(1, min(limit, MAX_LIMIT))
    queryset = queryset.order_by("-created_at", "-pk")
    if cursor:
        stamp, pk = _decode(cursor)
        try:
            queryset = queryset.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, pk__lt=pk))
            rows = list(queryset[: limit + 1])
        except (ValueError, TypeError):  # an id of the wrong kind for this resource
            raise ApiError("invalid_request", BAD_CURSOR) from None
    else:
        rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [item(row) for row in rows],
        "next_cursor": _encode(rows[-1].created_at, rows[-1].pk) if more else None,
    }
