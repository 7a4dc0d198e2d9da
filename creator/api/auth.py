"""Bearer tokens: who is asking, and how often they may ask."""

from __future__ import annotations

from ninja.security import HttpBearer

from config.api import TOO_MANY, ApiError
from creator.accounts import tokens


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cnd_…`. Session cookies are never accepted here, so the API needs
    no CSRF token: a browser can't send a bearer token on its own."""

    openapi_description = "A personal API token from your account page (`candor api-token`)."

    def authenticate(self, request, token: str):
        found = tokens.token_authenticate(token)
        if found is None:
            return None
        wait = tokens.token_rate_limited(found)
        if wait:
            raise ApiError(
                "rate_limited", TOO_MANY.format(wait=wait), headers={"Retry-After": str(wait)}
            )
        request.user = found.user
        return found
