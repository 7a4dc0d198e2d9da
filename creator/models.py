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
    subject = models.ForeignKey(
        "Subject", on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
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


def _private_path(prefix: str, owner_id: int, ext: str = "jpg") -> str:
    # Random names: nothing about the person or the original file leaks into storage paths.
    return f"{prefix}/{owner_id}/{uuid.uuid4().hex}.{ext}"


class Subject(models.Model):
    """The person a personal model depicts: the creator themself, or someone who consents."""

    class Kind(models.TextChoices):
        SELF = "self", "Me"
        OTHER = "other", "Someone else"

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="subjects")
    kind = models.CharField(max_length=8, choices=Kind, default=Kind.SELF)
    name = models.CharField(max_length=80, help_text="Who is in the photos.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_self(self) -> bool:
        return self.kind == self.Kind.SELF

    def active_consent(self) -> "Consent | None":
        return self.consents.filter(status=Consent.Status.GRANTED).order_by("-granted_at").first()


class ReferencePhoto(models.Model):
    """A reference photo: the normalised image, its face crop and what the checks found."""

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        OK = "ok", "Looks good"
        FLAGGED = "flagged", "Needs attention"

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(max_length=200)  # normalised upright sRGB JPEG, no metadata
    thumbnail = models.FileField(max_length=200)
    crop = models.FileField(max_length=200, blank=True)  # square face-centred, for training
    original_name = models.CharField(max_length=120, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    phash = models.CharField(max_length=16)
    status = models.CharField(max_length=10, choices=Status, default=Status.CHECKING)
    verdict = models.CharField(max_length=300, blank=True)
    # Biometric: a 128-number face signature, kept only to check that the set shows one person
    # and matches the consent selfie. Deleted with the photo.
    embedding = models.JSONField(null=True, blank=True)
    face_box = models.JSONField(null=True, blank=True)
    sharpness = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "sha256"], name="photo_unique_per_subject")
        ]

    def __str__(self) -> str:
        return self.original_name or f"Photo {self.pk}"

    @property
    def files(self) -> list:
        return [f for f in (self.image, self.thumbnail, self.crop) if f]


class Consent(models.Model):
    """The likeness lock: the depicted person confirmed, with a fresh selfie, that they agree."""

    class Method(models.TextChoices):
        SELFIE = "selfie", "Selfie by the creator (it is me)"
        LINK = "link", "Selfie by the subject through a consent link"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the subject"
        GRANTED = "granted", "Granted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    # SET_NULL: when a subject is deleted its consents stay behind as revoked records, with no
    # biometric data left in them, so credentials of images already made can say so.
    subject = models.ForeignKey(
        Subject, on_delete=models.SET_NULL, null=True, related_name="consents"
    )
    method = models.CharField(max_length=8, choices=Method)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=10, blank=True)  # "creator" or "subject"
    # The consent link (method LINK): only a hash of its token is stored.
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    invited_email = models.EmailField(blank=True)
    signed_name = models.CharField(max_length=80, blank=True)
    # What the check found. No selfie image is kept: its hash, its 128-number face signature
    # (the anchor later photos and the trained model are compared against) and the distances.
    selfie_sha256 = models.CharField(max_length=64, blank=True)
    selfie_embedding = models.JSONField(null=True, blank=True)
    distances = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Consent {self.pk} for {self.subject} ({self.status})"

    @property
    def max_distance(self) -> float | None:
        return max(self.distances.values()) if self.distances else None


class PersonalModel(models.Model):
    """A trained personal model (a LoRA) of a subject, made under one consent: a training run."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="models")
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="models")
    task = models.OneToOneField(Task, on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(max_length=80)
    base_model = models.CharField(max_length=300)
    config = models.JSONField(default=dict, blank=True)
    lora = models.FileField(max_length=200, blank=True)
    lora_sha256 = models.CharField(max_length=64, blank=True)
    best_step = models.PositiveIntegerField(null=True, blank=True)
    seconds_per_step = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"Model {self.pk} of {self.subject}"

    @property
    def is_ready(self) -> bool:
        return bool(self.lora) and self.consent.status == Consent.Status.GRANTED


class Generation(models.Model):
    """One request to make images from a personal model; its images become gallery posts."""

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="generations")
    model = models.ForeignKey(PersonalModel, on_delete=models.CASCADE, related_name="generations")
    task = models.OneToOneField(Task, on_delete=models.SET_NULL, null=True, blank=True)
    prompt = models.TextField(max_length=1000)
    negative_prompt = models.TextField(max_length=1000, blank=True)
    style = models.CharField(max_length=20, default="none")
    size = models.CharField(max_length=20, default="square")
    steps = models.PositiveIntegerField(default=25)
    guidance = models.FloatField(default=7.0)
    seed = models.BigIntegerField()
    count = models.PositiveSmallIntegerField(default=1)
    # The prompt goes into the images' signed credentials only when the creator says so.
    include_prompt = models.BooleanField(default=False)
    post_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.prompt[:40]
