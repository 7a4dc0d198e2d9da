"""State changes of the gallery: creating posts from generated images."""

import hashlib
import io
import secrets

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from PIL import Image

from gallery.models import Post


def post_create(
    *,
    owner,
    image: Image.Image,
    prompt: str,
    seed: int,
    generation_settings: dict,
    model_name: str,
    base_model: str,
    lora_sha256: str = "",
    consent_id: int | None = None,
) -> Post:
    """Store a generated image as a private draft post.

    The provenance issue adds the marking pipeline here (XMP, watermark, C2PA signature), so
    every image file Candor serves passes through this one function.
    """
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG", optimize=True)
    data = buffer.getvalue()
    name = default_storage.save(f"posts/{owner.pk}/{secrets.token_hex(16)}.png", ContentFile(data))
    try:
        return Post.objects.create(
            owner=owner,
            image=name,
            width=image.width,
            height=image.height,
            sha256=hashlib.sha256(data).hexdigest(),
            prompt=prompt,
            seed=seed,
            generation_settings=generation_settings,
            model_name=model_name,
            base_model=base_model,
            lora_sha256=lora_sha256,
            consent_id=consent_id,
        )
    except BaseException:
        default_storage.delete(name)
        raise


def post_remove(*, post: Post) -> None:
    post.delete()


@receiver(post_delete, sender=Post)
def _post_file_deleted(sender, instance: Post, **kwargs):
    name = instance.image.name
    transaction.on_commit(lambda: default_storage.delete(name))
