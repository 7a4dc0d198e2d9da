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


# Personal API tokens. What a token may do, with the words the account page uses; the API
# checks these names, so they never change once issued.
SCOPES = ("read", "write", "train")
SCOPE_TITLES = {"read": "Read", "write": "Write", "train": "Train & generate"}
SCOPE_LABELS = {
    "read": "Read your subjects, models, posts",
    "write": "Change them: upload photos, publish, delete",
    "train": "Start training and generation (uses the worker)",
}
TOKEN_NAME_MAX_LENGTH = 60
TOKENS_MAX_ACTIVE = 20  # per user


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is kept: the token itself is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    # The token's first characters, shown in lists so its owner can tell tokens apart.
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def scope_titles(self) -> list[str]:
        return [SCOPE_TITLES[s] for s in SCOPES if s in self.scopes]
