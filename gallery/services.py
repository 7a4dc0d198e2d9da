"""State changes of the gallery: posts with signed files, publishing, share links."""

from __future__ import annotations

import hashlib
from importlib import metadata

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from config.files import delete_files_on_commit, new_token, private_name
from config.refusal import Refusal
from gallery import signals, signing
from gallery.models import Credential, GalleryShare, Post
from gallery.provenance.c2pa import Parent
from gallery.provenance.manifest import ImageFacts, derivation
from gallery.provenance.pipeline import mark
from gallery.renditions import FIELD_FOR_VARIANT, VARIANTS
from imaging.phash import phash

CONSENT_WITHDRAWN = (
    "The person shown withdrew their consent, so this image was taken down. It can't be "
    "published or shared again; it stays in your gallery, labelled as such."
)
WITHDRAWN_BY_PERSON = (
    "The person shown took this image down, so it can't be published or shared again; it stays "
    "in your gallery, labelled as such."
)
PRIVATE_BY_CONSENT = (
    "The person shown agreed only to images kept private, so this one can't be published or shared."
)
CONSENT_ENDED = (
    "The person shown agreed until {date}, which has passed, so this image can't be published or "
    "shared now."
)
CAPTION_MAX_CHARS = 2000
CAPTION_TOO_LONG = (
    f"The caption is too long: at most {CAPTION_MAX_CHARS} characters. Nothing was saved."
)


def software_version() -> str:
    try:
        return metadata.version("candor")
    except metadata.PackageNotFoundError:
        return "dev"


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
    consent_scope: dict | None = None,
    prompt_in_credentials: bool = False,
) -> Post:
    """Store a generated image as a private draft post. Every file made here — the original and
    each display size — is marked (XMP, watermark) and signed before it is stored. The original
    is signed first; each size made from it carries the signed original as its parent
    ingredient, so its credential says how it was derived rather than claiming a new creation."""
    image = image.convert("RGB")
    signer = signing.signer()
    parent: Parent | None = None
    saved: list[str] = []
    try:
        with transaction.atomic():
            post = Post.objects.create(
                owner=owner, image="", width=image.width, height=image.height, sha256="",
                prompt=prompt, seed=seed, generation_settings=generation_settings,
                model_name=model_name, base_model=base_model, lora_sha256=lora_sha256,
                consent_id=consent_id, consent_scope=consent_scope or {},
                consent_private=(consent_scope or {}).get("publish") == "private",
                prompt_in_credentials=prompt_in_credentials,
            )  # fmt: skip
            for variant, fmt, ext, make in VARIANTS:
                pixels = make(image)
                fingerprint = phash(pixels)
                credential = Credential.objects.create(
                    post=post, variant=variant, mime=f"image/{fmt.lower()}",
                    author_handle=owner.handle, consent_id=consent_id,
                    signer=signer.identity.subject, signer_fingerprint=signer.identity.fingerprint,
                )  # fmt: skip
                facts = ImageFacts(
                    title=f"{variant}.{ext}",
                    mime=credential.mime,
                    author_handle=owner.handle,
                    author_url=settings.SITE_URL + reverse("profile", args=[owner.handle]),
                    instance_name=settings.SITE_NAME,
                    software_version=software_version(),
                    base_model=base_model,
                    model_name=model_name,
                    lora_sha256=lora_sha256,
                    consent_id=consent_id,
                    consent_scope=consent_scope,
                    credential_id=str(credential.uuid),
                    phash=fingerprint,
                    derived_actions=(
                        derivation(variant, resized=pixels.size != image.size) if parent else ()
                    ),
                    prompt=prompt if prompt_in_credentials else None,
                    seed=seed if prompt_in_credentials else None,
                )
                marked = mark(
                    pixels, fmt=fmt, facts=facts, watermark_id=credential.pk,
                    watermark_key=signing.watermark_key(),
                    signer=signer.derived_from(parent) if parent else signer,
                )  # fmt: skip
                if parent is None:
                    parent = Parent(marked.data, credential.mime, facts.title)
                name = default_storage.save(
                    private_name("posts", owner.pk, ext), ContentFile(marked.data)
                )
                saved.append(name)
                credential.sha256 = hashlib.sha256(marked.data).hexdigest()
                credential.phash = fingerprint
                credential.watermarked = marked.watermarked
                credential.manifest = marked.manifest
                credential.save(update_fields=["sha256", "phash", "watermarked", "manifest"])
                setattr(post, FIELD_FOR_VARIANT[variant], name)
                if variant == "original":
                    post.sha256 = credential.sha256
            post.save()
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return post


def post_update_caption(*, post: Post, caption: str) -> Post:
    caption = caption.strip()
    if len(caption) > CAPTION_MAX_CHARS:
        raise Refusal(CAPTION_TOO_LONG)
    post.caption = caption
    post.save(update_fields=["caption"])
    return post


def _check_may_go_out(post: Post) -> None:
    """Publishing and sharing need the person shown to allow it, still."""
    if post.consent_revoked_at:
        raise Refusal(CONSENT_WITHDRAWN)
    if post.withdrawn_at:
        raise Refusal(WITHDRAWN_BY_PERSON)
    if post.private_by_consent:
        raise Refusal(PRIVATE_BY_CONSENT)
    ends = post.consent_scope.get("ends")
    if ends and ends < timezone.now().date().isoformat():
        raise Refusal(CONSENT_ENDED.format(date=ends))


def _changed(post: Post, change: str) -> None:
    signals.post_changed.send(sender=Post, post_id=post.pk, owner_id=post.owner_id, change=change)


def post_publish(*, post: Post) -> Post:
    _check_may_go_out(post)
    was_public = post.is_public
    post.visibility = Post.Visibility.PUBLIC
    post.published_at = post.published_at or timezone.now()
    post.save(update_fields=["visibility", "published_at"])
    if not was_public:
        _changed(post, signals.PUBLISHED)
    return post


def post_unpublish(*, post: Post) -> Post:
    was_public = post.is_public
    post.visibility = Post.Visibility.PRIVATE
    post.save(update_fields=["visibility"])
    if was_public:
        _changed(post, signals.UNPUBLISHED)
    return post


def post_share_link(*, post: Post) -> str:
    """An unlisted link token for one post (made once, until revoked)."""
    _check_may_go_out(post)
    if not post.share_token:
        post.share_token = new_token()
        post.save(update_fields=["share_token"])
    return post.share_token


def post_share_revoke(*, post: Post) -> None:
    post.share_token = ""
    post.save(update_fields=["share_token"])


def gallery_share_create(*, owner) -> GalleryShare:
    return GalleryShare.objects.create(owner=owner)


def gallery_share_revoke(*, share: GalleryShare) -> None:
    share.revoked_at = timezone.now()
    share.save(update_fields=["revoked_at"])


def post_remove(*, post: Post) -> None:
    post.delete()


def consent_withdrawn(*, consent_id: int) -> int:
    """The person shown withdrew the consent these images were made under: every post made under
    it is taken down at once (unpublished, its share link revoked, never listed again) and their
    credentials say so from now on. Returns how many posts were taken down."""
    now = timezone.now()
    Credential.objects.filter(consent_id=consent_id, consent_revoked_at=None).update(
        consent_revoked_at=now
    )
    posts = Post.objects.filter(consent_id=consent_id, consent_revoked_at=None)
    down = list(posts.only("pk", "owner_id"))
    taken_down = posts.update(
        visibility=Post.Visibility.PRIVATE, share_token="", consent_revoked_at=now
    )
    for post in down:
        _changed(post, signals.TAKEN_DOWN)
    return taken_down


def post_withdraw(*, post: Post) -> Post:
    """The person shown takes down this one image: unpublished, its share link revoked, never
    listed again, and its credentials say "withdrawn by the person shown" from now on."""
    now = timezone.now()
    with transaction.atomic():
        Credential.objects.filter(post=post, withdrawn_at=None).update(withdrawn_at=now)
        post.visibility = Post.Visibility.PRIVATE
        post.share_token = ""
        was_withdrawn = post.withdrawn_at is not None
        post.withdrawn_at = post.withdrawn_at or now
        post.save(update_fields=["visibility", "share_token", "withdrawn_at"])
        if not was_withdrawn:
            _changed(post, signals.TAKEN_DOWN)
    return post


@receiver(post_delete, sender=Post)
def _post_files_deleted(sender, instance: Post, **kwargs):
    delete_files_on_commit([f.name for f in instance.files])
