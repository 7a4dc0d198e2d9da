"""Posts: every image Candor makes, kept in the creator's gallery.

The gallery never imports the creator app: it gets users through AUTH_USER_MODEL and everything
else (model names, hashes, the consent record's id) as plain values.
"""

import uuid

from django.conf import settings
from django.db import models


class Post(models.Model):
    class Visibility(models.TextChoices):
        DRAFT = "draft", "Draft"
        PRIVATE = "private", "Private"
        PUBLIC = "public", "Public"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    visibility = models.CharField(
        max_length=8, choices=Visibility, default=Visibility.DRAFT, db_index=True
    )
    image = models.FileField(max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    caption = models.TextField(blank=True, max_length=2000)
    # How it was made, as recorded at generation time.
    prompt = models.TextField()
    seed = models.BigIntegerField()
    generation_settings = models.JSONField(default=dict)
    model_name = models.CharField(max_length=120)
    base_model = models.CharField(max_length=300)
    lora_sha256 = models.CharField(max_length=64, blank=True)
    consent_id = models.BigIntegerField(null=True, blank=True)  # creator.Consent, by value
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.caption[:40] or f"Post {str(self.pk)[:8]}"
