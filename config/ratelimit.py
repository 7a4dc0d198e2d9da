"""Sliding-window rate limits kept in Django's cache (the database by default).

Counting in the database keeps limits shared by every web process and working while Redis is down.
Each key keeps the times of its last `limit` hits (a sliding log): a hit is allowed while fewer
than `limit` hits fall in the last `window` seconds, so a burst cannot be doubled by straddling
the boundary of a fixed minute or hour, and the wait until the next allowed hit is exact.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def client_ip(request: HttpRequest) -> str:
    """The address that reached the outermost trusted proxy (settings.TRUSTED_PROXY_HOPS).

    Each trusted proxy appends the address it saw to X-Forwarded-For, so the N-th entry from the
    right is the client's; anything further left came from the client and may be forged.
    """
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
        if entries:
            # Fewer entries than proxies: the request skipped the outer ones, and every entry
            # there was still appended by one we trust; the leftmost is the client.
            return entries[-min(hops, len(entries))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(scope: str, ident: str) -> str:
    digest = hashlib.sha256(ident.lower().encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}"


def _recent(key: str, window: int, now: float) -> list[float]:
    """Times of the hits counted under `key` in the last `window` seconds, oldest first."""
    return [t for t in cache.get(key) or [] if t > now - window]


def _wait(hits: list[float], limit: int, window: int, now: float) -> int:
    if len(hits) < limit:
        return 0
    # The hit that must leave the window before another fits in it.
    frees_at = hits[len(hits) - limit] + window
    return max(1, math.ceil(frees_at - now))


def retry_after(
    scope: str, ident: str, *, limit: int, window: int, now: float | None = None
) -> int:
    """Seconds until `ident` may be counted again; 0 when it may be now."""
    now = time.time() if now is None else now
    return _wait(_recent(_key(scope, ident), window, now), limit, window, now)


def hit(scope: str, ident: str, *, limit: int, window: int, now: float | None = None) -> None:
    """Count one hit (e.g. a failed login), whether or not the limit is already reached."""
    now = time.time() if now is None else now
    key = _key(scope, ident)
    # Only the last `limit` times matter for deciding, so the log never grows past that.
    hits = [*_recent(key, window, now), now][-limit:]
    cache.set(key, hits, timeout=window + 1)


def attempt(scope: str, ident: str, *, limit: int, window: int, now: float | None = None) -> int:
    """Count a hit if the limit allows it and return 0; else count nothing and return the wait.

    A refused request is not counted, so a client that waits the seconds it was told gets in.
    """
    now = time.time() if now is None else now
    key = _key(scope, ident)
    hits = _recent(key, window, now)
    wait = _wait(hits, limit, window, now)
    if not wait:
        cache.set(key, [*hits, now][-limit:], timeout=window + 1)
    return wait


def with_retry_after(response: HttpResponse, seconds: int) -> HttpResponse:
    """Tell the client how long to wait (RFC 9110 Retry-After) when it must; returns `response`."""
    if seconds > 0:
        response["Retry-After"] = str(seconds)
    return response
