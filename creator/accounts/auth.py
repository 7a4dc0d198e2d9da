"""Logging in: the handle-or-email backend, the account a login attempt is counted against, and
the "known device" cookie that lets an account's owner in while someone else guesses at it."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q
from django.http import HttpRequest, HttpResponse

KNOWN_DEVICE_COOKIE = "candor_device"
_KNOWN_DEVICE_SALT = "candor.accounts.known-device"
_MAX_IDENTIFIER = 254  # the longest email address; nothing longer can name an account


def normalise_identifier(raw: str | None) -> str:
    """A handle (with or without the @) or an email address, as accounts are looked up."""
    return (raw or "").strip().removeprefix("@").lower()


def find_account(identifier: str):
    """The account whose handle or email is `identifier` (any case), or None."""
    identifier = normalise_identifier(identifier)
    if not identifier or len(identifier) > _MAX_IDENTIFIER:
        return None
    User = get_user_model()
    return User.objects.filter(Q(handle__iexact=identifier) | Q(email__iexact=identifier)).first()


def login_bucket(request: HttpRequest, identifier: str) -> tuple[str, str] | None:
    """The (scope, key) a failed login counts against besides its address, None without a name.

    One key per account, whether it is named by handle or by email; a browser that logged in
    to that account before counts on its own instead, so guessing from elsewhere cannot lock
    it out. A name that is no account counts under itself, normalised, so made-up names cost
    the same and do not tell which accounts exist.
    """
    name = normalise_identifier(identifier)
    if not name:
        return None
    user = find_account(name)
    if user is None:
        return "login-account", f"name:{name[:_MAX_IDENTIFIER]}"
    device = known_device(request, user.pk)
    if device:
        return "login-device", device
    return "login-account", f"user:{user.pk}"


def known_device(request: HttpRequest, user_id: int) -> str | None:
    """This browser's device id when it logged in to account `user_id` before, else None."""
    value = request.get_signed_cookie(
        KNOWN_DEVICE_COOKIE,
        default=None,
        salt=_KNOWN_DEVICE_SALT,
        max_age=settings.LOGIN_KNOWN_DEVICE_DAYS * 86400,
    )
    owner, _, device = (value or "").partition(":")
    return device if device and owner == str(user_id) else None


def known_device_remember(request: HttpRequest, response: HttpResponse, user) -> None:
    """Mark this browser as one that logged in to `user`'s account (signed, so unforgeable)."""
    # Keep the device id across logins so its own failure count stays with it.
    device = known_device(request, user.pk) or secrets.token_urlsafe(16)
    response.set_signed_cookie(
        KNOWN_DEVICE_COOKIE,
        f"{user.pk}:{device}",
        salt=_KNOWN_DEVICE_SALT,
        max_age=settings.LOGIN_KNOWN_DEVICE_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


class HandleOrEmailBackend(ModelBackend):
    """Log in with either the public handle (with or without the @) or the email address."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        identifier = username or kwargs.get("handle")
        if not normalise_identifier(identifier) or password is None:
            return None
        user = find_account(identifier)
        if user is None:
            # Spend the same time as a real check so timing does not reveal which accounts exist.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
