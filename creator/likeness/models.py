"""Subjects, their reference photos and the likeness lock (consent)."""

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone


def hash_token(token: str) -> str:
    """What is stored of a consent link's token or a challenge's nonce: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class Subject(models.Model):
    """The person a personal model depicts: the creator themself, or someone who consents."""

    class Kind(models.TextChoices):
        SELF = "self", "Me"
        OTHER = "other", "Someone else"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subjects"
    )
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

    @property
    def scope(self) -> str:
        """The key its jobs carry (Task.scope), so they go when the subject goes."""
        return f"subject:{self.pk}"

    def active_consent(self) -> "Consent | None":
        """The consent in force: granted, and its agreed end date not passed."""
        return (
            self.consents.filter(status=Consent.Status.GRANTED)
            .filter(models.Q(ends_at=None) | models.Q(ends_at__gt=timezone.now()))
            .order_by("-granted_at")
            .first()
        )


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
    # The job checking it. A photo stays CHECKING until every check, identity included, has
    # passed; one whose job ended without that (cancelled, failed, its worker killed) is stopped.
    check_task = models.ForeignKey(
        "jobs.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
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

    @property
    def check_stopped(self) -> bool:
        """Not usable, and no job will finish its checks: it was cancelled, failed or died."""
        return self.status == self.Status.CHECKING and (
            self.check_task is None or not self.check_task.is_active
        )


class Consent(models.Model):
    """The likeness lock: the depicted person confirmed, with a fresh selfie, that they agree."""

    class Method(models.TextChoices):
        SELFIE = "selfie", "Selfie by the creator (it is me)"
        LINK = "link", "Selfie by the subject through a consent link"

    class SelfieMethod(models.TextChoices):
        CHALLENGE = "challenge", "Live camera challenge"
        UPLOAD = "upload", "A still picture (weaker: no liveness check)"

    class Publish(models.TextChoices):
        PUBLIC = "public", "May be published publicly"
        PRIVATE = "private", "Kept private: never published or shared"

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
    expiry_noticed = models.BooleanField(default=False)  # the creator was told it expired
    signed_name = models.CharField(max_length=80, blank=True)
    # What the check found. No selfie image is kept: its hash, its 128-number face signature
    # (the anchor later photos and the trained model are compared against) and the distances.
    selfie_sha256 = models.CharField(max_length=64, blank=True)
    selfie_embedding = models.JSONField(null=True, blank=True)
    distances = models.JSONField(default=dict, blank=True)
    # How the selfie was taken, and for the live challenge what it measured (scores, no images).
    selfie_method = models.CharField(max_length=10, choices=SelfieMethod, blank=True)
    liveness = models.JSONField(default=dict, blank=True)
    # What was agreed (the scope): publishing, until when, and content ruled out (codes of
    # creator.likeness.scope.CATEGORIES; "intimate" always).
    publish = models.CharField(max_length=8, choices=Publish, default=Publish.PUBLIC)
    ends_at = models.DateTimeField(null=True, blank=True)
    ruled_out = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Consent {self.pk} for {self.subject} ({self.status})"

    @property
    def max_distance(self) -> float | None:
        return max(self.distances.values()) if self.distances else None

    @property
    def ended(self) -> bool:
        """Granted, but its agreed end date has passed."""
        return self.ends_at is not None and self.ends_at <= timezone.now()

    @property
    def scope_summary(self) -> dict:
        """The scope as plain values, for credentials and verify."""
        return {
            "publish": self.publish,
            "ends": self.ends_at.date().isoformat() if self.ends_at else None,
            "ruled_out": list(self.ruled_out),
        }


class Challenge(models.Model):
    """A live-camera challenge issued to whoever is about to consent: a random order of head
    turns and a mouth opening, answered once before it expires. Only its nonce's hash is kept."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="challenges")
    consent = models.ForeignKey(
        Consent, on_delete=models.CASCADE, null=True, blank=True, related_name="challenges"
    )  # the consent link it was issued on; None for the creator's own selfie
    nonce_hash = models.CharField(max_length=64, unique=True)
    steps = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Challenge {self.pk} ({', '.join(self.steps)})"


class SeenFrame(models.Model):
    """The SHA-256 of a challenge frame already submitted: the same frame twice is a replay."""

    digest = models.CharField(max_length=64, primary_key=True)
    seen_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Frame {self.digest[:12]}"


class FaceBlock(models.Model):
    """A face the person shown asked never to be trained on here again: only its 128-number
    signature, no image and no link to who or whose photos. Reference photos matching it are
    refused for every creator on the instance."""

    signature = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Blocked face {self.pk}"
