"""Personal API tokens: made, revoked, and checked on each API request.

A token is `cnd_` and 43 URL-safe characters. Candor keeps only its SHA-256 digest, so a copy of
the database lets nobody call the API; the token itself is shown once, when it is made. A token
this random needs no slow hash: nobody can guess one from its digest.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config import ratelimit
from creator.accounts.models import (
    SCOPE_LABELS,
    SCOPE_TITLES,
    SCOPES,
    TOKEN_NAME_MAX_LENGTH,
    TOKENS_MAX_ACTIVE,
    ApiToken,
    User,
)

__all__ = [
    "SCOPES",
    "SCOPE_LABELS",
    "SCOPE_TITLES",
    "token_authenticate",
    "token_create",
    "token_has_scope",
    "token_rate_limited",
    "token_revoke",
]

TOKEN_PREFIX = "cnd_"  # noqa: S105 - how every token starts, not a secret
PREFIX_LENGTH = 12  # characters of the token kept in the clear, to tell tokens apart
_TOKEN_LENGTH = len(TOKEN_PREFIX) + 43  # token_urlsafe(32)
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
RATE_WINDOW = 60  # seconds; API_RATE_LIMIT counts requests per token in this sliding window

# Messages, not passwords.
TOKEN_NAME_REQUIRED = "Give the token a name, so you can tell it apart later."  # noqa: S105
TOKEN_NAME_TOO_LONG = f"A token's name is at most {TOKEN_NAME_MAX_LENGTH} characters."
TOKEN_SCOPES_REQUIRED = "Choose at least one thing the token may do."  # noqa: S105
TOKEN_SCOPE_UNKNOWN = "Unknown scope. Choose from " + ", ".join(SCOPES) + "."
TOKENS_TOO_MANY = (
    f"You have {TOKENS_MAX_ACTIVE} active tokens, the most an account may have. "
    "Revoke one you no longer use, then make a new one."
)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, user: User, name: str, scopes: list[str]) -> tuple[ApiToken, str]:
    """Make a token; returns it with the raw token, which is never available again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(TOKEN_NAME_REQUIRED, code="name")
    if len(name) > TOKEN_NAME_MAX_LENGTH:
        raise ValidationError(TOKEN_NAME_TOO_LONG, code="name")
    if not scopes:
        raise ValidationError(TOKEN_SCOPES_REQUIRED, code="scopes")
    if any(scope not in SCOPES for scope in scopes):
        raise ValidationError(TOKEN_SCOPE_UNKNOWN, code="scopes")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        # The user's row is locked so two requests at once cannot both take the last slot.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= TOKENS_MAX_ACTIVE:
            raise ValidationError(TOKENS_TOO_MANY, code="too_many")
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=raw[:PREFIX_LENGTH],
            digest=_digest(raw),
            scopes=[scope for scope in SCOPES if scope in scopes],
        )
    return token, raw


def token_revoke(*, token: ApiToken) -> None:
    """Stop a token working at once. Revoking a revoked token changes nothing."""
    if token.revoked_at is None:
        now = timezone.now()
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        token.refresh_from_db(fields=["revoked_at"])


def token_authenticate(raw: str) -> ApiToken | None:
    """The active token `raw` is, with its user loaded; None for anything else.

    The lookup is by digest, so how long it takes tells nothing about the token's characters.
    """
    if not isinstance(raw, str) or len(raw) != _TOKEN_LENGTH or not raw.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(raw)
    token = ApiToken.objects.select_related("user").filter(digest=digest).first()
    if token is None or not hmac.compare_digest(token.digest, digest):
        return None
    if token.revoked_at is not None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_has_scope(token: ApiToken, scope: str) -> bool:
    return scope in SCOPES and scope in token.scopes


def token_rate_limited(token: ApiToken) -> int | None:
    """Seconds to wait when the token has used its API_RATE_LIMIT for the last minute, else None
    (and this request is counted)."""
    wait = ratelimit.attempt(
        "api-token", str(token.pk), limit=settings.API_RATE_LIMIT, window=RATE_WINDOW
    )
    return wait or None
