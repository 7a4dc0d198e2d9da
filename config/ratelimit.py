"""Fixed-window rate limits kept in Django's cache (the database by default).

Counting in the database keeps limits shared by every web process and working while Redis is down.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(scope: str, ident: str, window: int) -> str:
    digest = hashlib.sha256(ident.lower().encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}:{int(time.time() // window)}"


def is_limited(scope: str, ident: str, *, limit: int, window: int) -> bool:
    """True when `limit` hits were already counted for `ident` in the current window."""
    return (cache.get(_key(scope, ident, window)) or 0) >= limit


def hit(scope: str, ident: str, *, window: int) -> int:
    """Count one hit and return the count in the current window."""
    key = _key(scope, ident, window)
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window)
        return 1
