import uuid

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


class Task(models.Model):
    """The state of one piece of background work, kept on our own row rather than only in RQ.

    Pages read this row for live progress; the reconciler fails it when its RQ job failed,
    was abandoned or vanished, so a row never stays RUNNING forever.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    queue = models.CharField(max_length=40, default="default")
    job_func = models.CharField(max_length=200)
    job_kwargs = models.JSONField(default=dict, blank=True)
    rq_job_id = models.CharField(max_length=80, unique=True)
    attempts = models.PositiveIntegerField(default=1)

    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker_name = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def can_retry(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELLED)

    @property
    def percent(self) -> int:
        return round(100 * self.progress)
