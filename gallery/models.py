"""Posts, their signed files, share links and the Content Credentials store.

The gallery never imports the creator app: it gets users through AUTH_USER_MODEL and everything
else (model names, hashes, the consent record's id) as plain values.
"""

import uuid

from django.conf import settings
from django.db import models

from config.files import new_token
from gallery.provenance.xmp import AI_MADE, TRAINED_ALGORITHMIC_MEDIA


class Post(models.Model):
    class Visibility(models.TextChoices):
        DRAFT = "draft", "Draft"
        PRIVATE = "private", "Private"
        PUBLIC = "public", "Public"

    class Origin(models.TextChoices):
        GENERATED = "generated", "Made with a personal model"
        LABELLED = "labelled", "Made elsewhere, labelled here"
        EDITED = "edited", "Edited in Candor"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    origin = models.CharField(max_length=10, choices=Origin, default=Origin.GENERATED)
    # The post an edit was made from: its signed original is this one's parent ingredient.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="edits"
    )
    source_type = models.CharField(max_length=120, default=TRAINED_ALGORITHMIC_MEDIA)
    # An image made elsewhere: what its creator declared ({"by", "declaration", "words",
    # "tool"}) and how the upload's own Content Credentials validated, if it had any.
    declared = models.JSONField(default=dict, blank=True)
    upload_credentials = models.JSONField(default=dict, blank=True)
    # An edit: what was done ({"op", "words", ...parameters}); a burned-in visible label.
    edit = models.JSONField(default=dict, blank=True)
    visible_label = models.JSONField(default=dict, blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility, default=Visibility.DRAFT, db_index=True
    )
    # The signed files: the original and display sizes made once, at creation.
    image = models.FileField(max_length=200)  # original, PNG
    display = models.FileField(max_length=200, blank=True)  # JPEG, longest side 1024
    thumb = models.FileField(max_length=200, blank=True)  # JPEG, 320 square-ish
    preview = models.FileField(max_length=200, blank=True)  # JPEG 1200x630, badge burned in
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    caption = models.TextField(blank=True, max_length=2000)
    # How it was made, as recorded at generation time.
    prompt = models.TextField()
    prompt_in_credentials = models.BooleanField(default=False)
    seed = models.BigIntegerField()
    generation_settings = models.JSONField(default=dict)
    model_name = models.CharField(max_length=120)
    base_model = models.CharField(max_length=300)
    lora_sha256 = models.CharField(max_length=64, blank=True)
    consent_id = models.BigIntegerField(null=True, blank=True)  # likeness.Consent, by value
    share_token = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Set when the person shown withdrew consent: the post was taken down and stays down.
    consent_revoked_at = models.DateTimeField(null=True, blank=True)
    # Set when the person shown took this one image down from their own page.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # What the person shown agreed to ({"publish", "ends", "ruled_out"}), copied at creation;
    # `consent_private` says whether it keeps the image private (never published or shared).
    consent_scope = models.JSONField(default=dict, blank=True)
    consent_private = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "visibility", "-created_at"])]

    def __str__(self) -> str:
        return self.caption[:40] or f"Post {str(self.pk)[:8]}"

    @property
    def is_public(self) -> bool:
        return self.visibility == self.Visibility.PUBLIC

    @property
    def taken_down(self) -> bool:
        """Taken down for the person shown (consent withdrawn, or this image): it stays down."""
        return bool(self.consent_revoked_at or self.withdrawn_at)

    @property
    def private_by_consent(self) -> bool:
        return self.consent_private

    @property
    def files(self) -> list:
        return [f for f in (self.image, self.display, self.thumb, self.preview) if f]

    @property
    def ai_made(self) -> bool:
        """AI made all or part of it (always, for what Candor's models make)."""
        return self.source_type in AI_MADE

    @property
    def badge(self) -> str:
        """The words its badge shows: "AI-generated", "AI-modified", or none (a photo)."""
        from gallery.renditions import badge_for  # renditions draws; models stay light

        return badge_for(self.source_type)

    @property
    def alt_text(self) -> str:
        what = f"{self.badge} image" if self.badge else "Image"
        return f"{what}: {self.caption}" if self.caption else what

    @property
    def modified(self) -> bool:
        """A photo edited with AI ("AI-modified") rather than an image AI made whole."""
        return self.source_type != TRAINED_ALGORITHMIC_MEDIA and self.ai_made


class KitFile(models.Model):
    """One file of a post's post kit: a size for a platform, signed with the post's original as
    its parent ingredient (gallery/postkit.py)."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="kit_files")
    key = models.CharField(max_length=40)  # the kit format (gallery/postkit.py FORMATS)
    file = models.FileField(max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    label_style = models.CharField(max_length=20, blank=True)  # "" = no visible label
    credential = models.ForeignKey(
        "Credential", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "key"], name="one_kit_file_a_key")]

    def __str__(self) -> str:
        return f"{self.key} of {self.post_id}"


class GalleryShare(models.Model):
    """An unlisted link to a creator's published and private posts, revocable."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gallery_shares"
    )
    token = models.CharField(max_length=64, unique=True, default=new_token)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Gallery link of {self.owner}"


# The 64-bit pHash split into bands, high bits first, each kept in its own indexed integer column
# so a near-identical image is found by index lookups, not by reading every row (see
# gallery/fingerprints.py for the search and the guarantee it gives).
PHASH_BAND_BITS = (22, 21, 21)
PHASH_BAND_FIELDS = ("phash_band0", "phash_band1", "phash_band2")


def phash_bands(phash: str) -> tuple[int, ...] | tuple[None, ...]:
    """The bands of a 16-hex-digit pHash; all None when there is none."""
    if not phash:
        return (None,) * len(PHASH_BAND_BITS)
    value, bands, shift = int(phash, 16), [], 64
    for bits in PHASH_BAND_BITS:
        shift -= bits
        bands.append((value >> shift) & ((1 << bits) - 1))
    return tuple(bands)


class CredentialQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for credential in objs:
            credential.fill_phash_bands()
        return super().bulk_create(objs, *args, **kwargs)


class Credential(models.Model):
    """One signed file's Content Credential, kept so it can be found again after stripping.

    Its numeric id is the watermark id woven into the pixels; `uuid` is the public one. The pHash
    bands are derived from `phash` on every save and bulk_create (not on queryset.update()).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    post = models.ForeignKey(
        Post, on_delete=models.SET_NULL, null=True, blank=True, related_name="credentials"
    )
    variant = models.CharField(max_length=40)  # original, display, thumb, preview, kit:<key>
    mime = models.CharField(max_length=20)
    sha256 = models.CharField(max_length=64, blank=True)
    phash = models.CharField(max_length=16, blank=True, db_index=True)
    phash_band0 = models.IntegerField(null=True, blank=True, db_index=True, editable=False)
    phash_band1 = models.IntegerField(null=True, blank=True, db_index=True, editable=False)
    phash_band2 = models.IntegerField(null=True, blank=True, db_index=True, editable=False)
    watermarked = models.BooleanField(default=False)
    manifest = models.JSONField(default=dict)
    signer = models.CharField(max_length=300, blank=True)
    signer_fingerprint = models.CharField(max_length=64, blank=True)
    author_handle = models.CharField(max_length=30, blank=True)
    consent_id = models.BigIntegerField(null=True, blank=True)
    consent_revoked_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)  # by the person shown
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CredentialQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Credential {self.uuid} ({self.variant})"

    def save(self, *args, **kwargs):
        self.fill_phash_bands()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "phash" in update_fields:
            kwargs["update_fields"] = [*update_fields, *PHASH_BAND_FIELDS]
        super().save(*args, **kwargs)

    def fill_phash_bands(self) -> None:
        for name, band in zip(PHASH_BAND_FIELDS, phash_bands(self.phash), strict=True):
            setattr(self, name, band)
