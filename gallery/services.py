"""State changes of the gallery: posts with signed files, publishing, share links."""

from __future__ import annotations

import hashlib
import io
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
from gallery import edits, signals, signing
from gallery.models import Credential, GalleryShare, KitFile, Post
from gallery.provenance.c2pa import Parent
from gallery.provenance.manifest import ImageFacts, derivation
from gallery.provenance.pipeline import MIME, Marked, mark
from gallery.renditions import FIELD_FOR_VARIANT, VARIANTS, badge_for
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
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
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
    """Store a generated image as a private draft post, every file marked and signed."""
    post = Post(
        owner=owner, prompt=prompt, seed=seed, generation_settings=generation_settings,
        model_name=model_name, base_model=base_model, lora_sha256=lora_sha256,
        consent_id=consent_id, consent_scope=consent_scope or {},
        consent_private=(consent_scope or {}).get("publish") == "private",
        prompt_in_credentials=prompt_in_credentials,
    )  # fmt: skip
    return post_store(post, image.convert("RGB"))


def file_facts(post: Post, credential: Credential, **values) -> ImageFacts:
    """What a post's file's manifest says: the post's facts, then this file's own."""
    owner = post.owner
    return ImageFacts(
        mime=credential.mime,
        author_handle=owner.handle,
        author_url=settings.SITE_URL + reverse("profile", args=[owner.handle]),
        instance_name=settings.SITE_NAME,
        software_version=software_version(),
        base_model=post.base_model,
        model_name=post.model_name,
        lora_sha256=post.lora_sha256,
        consent_id=post.consent_id,
        consent_scope=post.consent_scope or None,
        credential_id=str(credential.uuid),
        prompt=post.prompt if post.prompt_in_credentials else None,
        seed=post.seed if post.prompt_in_credentials else None,
        source_type=post.source_type,
        declared=post.declared or None,
        upload_credentials=post.upload_credentials or None,
        **values,
    )


def credential_start(*, post: Post, variant: str, fmt: str) -> Credential:
    """A file's credential row, made before the file: its id is the watermark's payload."""
    identity = signing.signer().identity
    return Credential.objects.create(
        post=post, variant=variant, mime=MIME[fmt], author_handle=post.owner.handle,
        consent_id=post.consent_id, signer=identity.subject,
        signer_fingerprint=identity.fingerprint,
    )  # fmt: skip


def credential_finish(*, credential: Credential, marked: Marked, pixels_phash: str) -> None:
    """What the signed file turned out to be: its hash, fingerprint, watermark and manifest."""
    credential.sha256 = hashlib.sha256(marked.data).hexdigest()
    credential.phash = pixels_phash
    credential.watermarked = marked.watermarked
    credential.manifest = marked.manifest
    credential.save(update_fields=["sha256", "phash", "watermarked", "manifest"])


def signed_file_create(
    *,
    post: Post,
    image: Image.Image,
    variant: str,
    fmt: str,
    parent: Parent | None,
    actions: tuple = (),
    visible_label: dict | None = None,
    quality: int = 92,
) -> tuple[bytes, Credential]:
    """One file of `post`, marked (XMP, watermark) and signed, with its credential stored: made
    from `parent` (a signed file, its parentOf ingredient) by `actions` when there is one. The
    caller stores the bytes, inside its transaction."""
    signer = signing.signer()
    pixels_phash = phash(image)
    credential = credential_start(post=post, variant=variant, fmt=fmt)
    facts = file_facts(
        post,
        credential,
        title=f"{variant.replace(':', '-')}.{EXTENSIONS[fmt]}",
        phash=pixels_phash,
        derived_actions=tuple(actions),
        opened=parent is not None,
        visible_label=visible_label,
    )
    marked = mark(
        image, fmt=fmt, facts=facts, watermark_id=credential.pk,
        watermark_key=signing.watermark_key(),
        signer=signer.derived_from(parent) if parent else signer, quality=quality,
    )  # fmt: skip
    credential_finish(credential=credential, marked=marked, pixels_phash=pixels_phash)
    return marked.data, credential


def post_store(
    post: Post,
    image: Image.Image,
    *,
    parent: Parent | None = None,
    actions: tuple = (),
) -> Post:
    """Save a new post with its files. The original is signed first — from `parent` by
    `actions` when it was made from another signed file — and each size made from it carries
    the signed original as its parent ingredient, so its credential says how it was derived
    rather than claiming a new creation. Nothing is left behind when any step fails."""
    post.width, post.height = image.size
    saved: list[str] = []
    badge = badge_for(post.source_type)
    try:
        with transaction.atomic():
            post.save()
            original: Parent | None = None
            for variant, fmt, ext, make in VARIANTS:
                pixels = make(image, badge)
                if original is None:
                    steps, source = actions, parent
                else:
                    steps = derivation(variant, resized=pixels.size != image.size)
                    source = original
                data, credential = signed_file_create(
                    post=post, image=pixels, variant=variant, fmt=fmt, parent=source,
                    actions=steps, visible_label=post.visible_label or None,
                )  # fmt: skip
                if original is None:
                    original = Parent(data, credential.mime, f"{variant}.{ext}")
                    post.sha256 = credential.sha256
                name = default_storage.save(
                    private_name("posts", post.owner_id, ext), ContentFile(data)
                )
                saved.append(name)
                setattr(post, FIELD_FOR_VARIANT[variant], name)
            post.save()
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return post


ORIGINAL_MISSING = (
    "This post's signed original is missing from storage, so nothing can be made from it. "
    "The site's operator can restore it from a backup."
)


def original_parent(post: Post) -> Parent:
    """A post's signed original, as the parent ingredient of a file made from it."""
    try:
        with default_storage.open(post.image.name) as handle:
            data = handle.read()
    except (OSError, ValueError):  # gone from storage (ValueError: no file name at all)
        raise Refusal(ORIGINAL_MISSING) from None
    return Parent(data, "image/png", f"{str(post.pk)[:8]}-original.png")


def original_image(parent: Parent) -> Image.Image:
    with Image.open(io.BytesIO(parent.data)) as opened:
        return opened.convert("RGB")


EDIT_TAKEN_DOWN = "This image was taken down for the person shown, so no new copies are made of it."


def post_edit(*, post: Post, data) -> Post:
    """A new post made from `post` by the edit `data` asks for (gallery/edits.py): its original
    has `post`'s signed original as parent ingredient, with the edit's C2PA action."""
    if post.taken_down:
        raise Refusal(EDIT_TAKEN_DOWN)
    edit = edits.edit_parse(data, size=(post.width, post.height))
    if edit.op == "label" and not post.ai_made:
        raise Refusal(edits.NO_AI_LABEL_ON_A_PHOTO)
    parent = original_parent(post)
    edited = edits.edit_apply(original_image(parent), edit, modified=post.modified)
    if max(edited.image.size) > edits.MAX_SIDE:  # caption bars add up
        raise Refusal(edits.RESULT_TOO_LARGE.format(max=edits.MAX_SIDE))
    child = Post(
        owner=post.owner, origin=Post.Origin.EDITED, parent=post,
        caption=post.caption, prompt=post.prompt, prompt_in_credentials=post.prompt_in_credentials,
        seed=post.seed, generation_settings=post.generation_settings,
        model_name=post.model_name, base_model=post.base_model, lora_sha256=post.lora_sha256,
        consent_id=post.consent_id, consent_scope=post.consent_scope,
        consent_private=post.consent_private, source_type=post.source_type,
        declared=post.declared, upload_credentials=post.upload_credentials,
        edit={**edit.record(), "words": edited.words}, visible_label=edited.label or {},
    )  # fmt: skip
    return post_store(child, edited.image, parent=parent, actions=edited.actions)


def post_history(post: Post) -> list[Post]:
    """The posts this one was made from, oldest first, then this one."""
    chain, seen = [post], {post.pk}
    while chain[0].parent_id and chain[0].parent_id not in seen:
        parent = Post.objects.filter(pk=chain[0].parent_id, owner_id=post.owner_id).first()
        if parent is None:
            break
        seen.add(parent.pk)
        chain.insert(0, parent)
    return chain


def post_update_caption(*, post: Post, caption: str) -> Post:
    caption = caption.strip()
    if len(caption) > CAPTION_MAX_CHARS:
        raise Refusal(CAPTION_TOO_LONG)
    post.caption = caption
    post.save(update_fields=["caption"])
    return post


def check_may_go_out(post: Post) -> None:
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
    check_may_go_out(post)
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
    check_may_go_out(post)
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
    # Post-kit files exist only to be posted elsewhere, which can't happen any more.
    KitFile.objects.filter(post__consent_id=consent_id).delete()
    taken_down = posts.update(
        visibility=Post.Visibility.PRIVATE, share_token="", consent_revoked_at=now
    )
    for post in down:
        _changed(post, signals.TAKEN_DOWN)
    return taken_down


def _descendants(post: Post) -> list[Post]:
    """Every post made from this one by edits, and from those, and so on."""
    found, frontier = [], [post.pk]
    while frontier:
        children = list(Post.objects.filter(parent_id__in=frontier).exclude(pk=post.pk))
        children = [c for c in children if c not in found]
        found += children
        frontier = [c.pk for c in children]
    return found


def post_withdraw(*, post: Post) -> Post:
    """The person shown takes down this one image: unpublished, its share link revoked, never
    listed again, and its credentials say "withdrawn by the person shown" from now on. Every
    edit made from it is a copy of it, so goes down with it."""
    now = timezone.now()
    with transaction.atomic():
        for each in [post, *_descendants(post)]:
            Credential.objects.filter(post=each, withdrawn_at=None).update(withdrawn_at=now)
            KitFile.objects.filter(post=each).delete()  # files go on commit (postkit receiver)
            each.visibility = Post.Visibility.PRIVATE
            each.share_token = ""
            was_withdrawn = each.withdrawn_at is not None
            each.withdrawn_at = each.withdrawn_at or now
            each.save(update_fields=["visibility", "share_token", "withdrawn_at"])
            if not was_withdrawn:
                _changed(each, signals.TAKEN_DOWN)
    return post


@receiver(post_delete, sender=Post)
def _post_files_deleted(sender, instance: Post, **kwargs):
    delete_files_on_commit([f.name for f in instance.files])
