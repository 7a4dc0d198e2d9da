"""Accounts: the creator, whose handle is their public name."""

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

HANDLE_INVALID = (
    "A handle is 3–30 characters: lowercase letters, digits and underscores, "
    "starting with a letter or digit."
)
# Handles appear in public URLs (/@handle) and as the author of signed images, so names that
# could pass for the site itself are kept back.
RESERVED_HANDLES = frozenset(
    {
        "about", "account", "accounts", "admin", "administrator", "api", "app", "candor",
        "dashboard", "help", "jobs", "login", "logout", "me", "media", "moderator", "official",
        "root", "settings", "signup", "staff", "static", "support", "system", "verify", "www",
    }
)  # fmt: skip

HANDLE_TAKEN = "That handle is taken. Try another one."
EMAIL_TAKEN = "An account with this email address already exists. Log in or reset your password."

handle_validator = RegexValidator(r"^[a-z0-9][a-z0-9_]{2,29}\Z", HANDLE_INVALID)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, handle: str, email: str, password: str | None, **extra):
        user = self.model(handle=handle.lower(), email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, handle: str, email: str = "", password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(handle, email, password, **extra)

    def create_superuser(self, handle: str, email: str = "", password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(handle, email, password, **extra)

    def get_by_natural_key(self, handle: str):
        return self.get(handle__iexact=handle)


class User(AbstractUser):
    """A creator. The handle is their public name: /@handle and the author of their images."""

    username = None
    first_name = None
    last_name = None
    handle = models.CharField(
        max_length=30,
        unique=True,
        validators=[handle_validator],
        help_text="Your public name on Candor, shown as @handle.",
    )
    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=80, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("handle"), name="user_handle_ci_unique", violation_error_message=HANDLE_TAKEN
            ),
            models.UniqueConstraint(
                Lower("email"), name="user_email_ci_unique", violation_error_message=EMAIL_TAKEN
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"

    def get_full_name(self) -> str:
        return self.display_name or f"@{self.handle}"

    def get_short_name(self) -> str:
        return self.display_name or self.handle
