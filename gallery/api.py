"""The gallery's part of the REST API: posts (show, caption, publish, share, delete, download the
signed file) and verify. Mounted by creator.api with the token auth; the gallery itself knows
nothing of tokens (only `request.auth.user` and its scopes, through config.api.need)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from config.api import ApiError, Page, errors, need, not_found, page
from config.files import stored_file_response
from config.refusal import Refusal
from gallery import kit_views, labelling, postkit, services, verify_views
from gallery.models import Post
from imaging.sniff import too_large

router = Router(tags=["posts"])
verify_router = Router(tags=["verify"])


class CredentialOut(Schema):
    signer: str
    digital_source_type: str
    actions: list[str]
    consent_revoked: bool
    withdrawn_by_person: bool
    watermarked: bool
    verify_url: str


class PostOut(Schema):
    id: UUID
    visibility: Literal["draft", "private", "public"]
    caption: str
    width: int
    height: int
    seed: int
    model_name: str
    base_model: str
    sha256: str
    created_at: datetime
    published_at: datetime | None
    share_url: str | None
    public_url: str | None
    credential: CredentialOut | None
    file_url: str
    origin: Literal["generated", "labelled", "edited"]
    source_type: str
    parent_id: UUID | None
    declared: dict
    upload_credentials: dict
    edit: dict
    visible_label: dict


class PostPage(Page):
    items: list[PostOut]


class CaptionIn(Schema):
    caption: str


class LabelIn(Schema):
    declaration: Literal["ai", "ai_edited_photo", "ai_composite", "photo"]
    tool: str = ""
    caption: str = ""


class EditIn(Schema):
    """One edit; which fields count depends on `op` (crop: x, y, width, height in pixels;
    resize: width; rotate: degrees 90/180/270 clockwise; caption: text; label: style)."""

    op: Literal["crop", "resize", "rotate", "caption", "label"]
    x: int | None = None
    y: int | None = None
    width: int | None = None
    height: int | None = None
    degrees: int | None = None
    text: str | None = None
    style: Literal["badge", "eu", "text"] | None = None


class KitIn(Schema):
    label_style: Literal["badge", "eu", "text"] | None = None


class KitFileOut(Schema):
    key: str
    width: int
    height: int
    labelled: bool
    file_url: str


class KitDestinationOut(Schema):
    key: str
    name: str
    credentials: str
    files: list[str]
    signed_original: bool
    caption: str
    caption_max: int
    caption_length: int  # as the platform counts it (X: every link as 23 characters)


class KitOut(Schema):
    built: bool
    label_style: str
    alt_text: str
    verify_url: str
    files: list[KitFileOut]
    destinations: list[KitDestinationOut]
    zip_url: str


class ShareOut(Schema):
    url: str


class VerifyOut(Schema):
    verdict: str
    headline: str
    explanation: str
    consent_revoked: bool
    withdrawn: bool
    post_url: str | None
    details: dict
    share_url: str | None = None


def credential_out(post: Post) -> dict | None:
    # From the prefetched list: a page of posts costs the same few queries however long it is.
    credential = next((c for c in post.credentials.all() if c.variant == "original"), None)
    if credential is None:
        return None
    actions = []
    source = ""
    for assertion in credential.manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                actions.append(action.get("action", ""))
                source = source or action.get("digitalSourceType", "")
    return {
        "signer": credential.signer,
        "digital_source_type": source,
        "actions": actions,
        "consent_revoked": credential.consent_revoked_at is not None,
        "withdrawn_by_person": credential.withdrawn_at is not None,
        "watermarked": credential.watermarked,
        "verify_url": settings.SITE_URL + reverse("verify_page"),
    }


def post_out(post: Post) -> dict:
    share = post.share_token and settings.SITE_URL + reverse("shared_post", args=[post.share_token])
    return {
        "id": post.pk,
        "visibility": post.visibility,
        "caption": post.caption,
        "width": post.width,
        "height": post.height,
        "seed": post.seed,
        "model_name": post.model_name,
        "base_model": post.base_model,
        "sha256": post.sha256,
        "created_at": post.created_at,
        "published_at": post.published_at,
        "share_url": share or None,
        "public_url": settings.SITE_URL + reverse("public_post", args=[post.pk])
        if post.is_public
        else None,
        "credential": credential_out(post),
        "file_url": reverse("api:post_download", args=[post.pk]),
        "origin": post.origin,
        "source_type": post.source_type,
        "parent_id": post.parent_id,
        "declared": post.declared,
        "upload_credentials": post.upload_credentials,
        "edit": post.edit,
        "visible_label": post.visible_label,
    }


def owned_post(request, post_id: UUID) -> Post:
    post = Post.objects.filter(owner=request.auth.user, pk=post_id).select_related("owner").first()
    if post is None:
        raise not_found("post")
    return post


def _refusing(action):
    try:
        return action()
    except Refusal as exc:
        raise ApiError("refused", exc.message) from None


@router.get("/posts", response={200: PostPage, **errors(403)}, summary="List posts")
def post_list(
    request,
    visibility: Literal["draft", "private", "public"] | None = None,
    cursor: str | None = None,
    limit: int = 20,
):
    need(request, "read")
    posts = Post.objects.filter(owner=request.auth.user).select_related("owner")
    posts = posts.prefetch_related("credentials")
    if visibility:
        posts = posts.filter(visibility=visibility)
    return page(posts, cursor, limit, post_out)


# Before /posts/{post_id}, which would take "labelled" for an id.
@router.post(
    "/posts/labelled",
    response={201: PostOut, **errors(400, 403, 413)},
    summary="Label an image made elsewhere",
)
def post_label(request, image: File[UploadedFile], body: Form[LabelIn]):
    """Upload an image made with another tool and declare what it is (IPTC digital source type
    in plain words). Its own Content Credentials, if any, are validated and kept as the parent
    ingredient; a declaration the file contradicts (an AI-labelled image as a photo) is refused.
    Returns a private draft post with signed files."""
    need(request, "write")
    if image.size > settings.PHOTO_MAX_BYTES:
        raise ApiError("payload_too_large", too_large(image.size, settings.PHOTO_MAX_BYTES))
    post = _refusing(
        lambda: labelling.post_label_upload(
            owner=request.auth.user,
            data=image.read(),
            filename=image.name or "",
            declaration=body.declaration,
            tool=body.tool,
            caption=body.caption,
        )
    )
    return Status(201, post_out(post))


@router.get("/posts/{post_id}", response={200: PostOut, **errors(403, 404)}, summary="Show a post")
def post_show(request, post_id: UUID):
    """The post with a summary of its signed Content Credential."""
    need(request, "read")
    return post_out(owned_post(request, post_id))


@router.patch(
    "/posts/{post_id}",
    response={200: PostOut, **errors(400, 403, 404)},
    summary="Change a post's caption",
)
def post_caption(request, post_id: UUID, body: CaptionIn):
    need(request, "write")
    post = owned_post(request, post_id)
    _refusing(lambda: services.post_update_caption(post=post, caption=body.caption))
    return post_out(post)


@router.post(
    "/posts/{post_id}/publish",
    response={200: PostOut, **errors(400, 403, 404)},
    summary="Publish a post",
)
def post_publish(request, post_id: UUID):
    """Public on your page — unless the person shown allowed private use only, withdrew the
    image, or their consent ended (each refused with its reason)."""
    need(request, "write")
    post = owned_post(request, post_id)
    _refusing(lambda: services.post_publish(post=post))
    return post_out(post)


@router.post(
    "/posts/{post_id}/unpublish",
    response={200: PostOut, **errors(403, 404)},
    summary="Unpublish a post",
)
def post_unpublish(request, post_id: UUID):
    need(request, "write")
    post = owned_post(request, post_id)
    services.post_unpublish(post=post)
    return post_out(post)


@router.post(
    "/posts/{post_id}/share-link",
    response={201: ShareOut, **errors(400, 403, 404)},
    summary="Make a share link",
)
def post_share(request, post_id: UUID):
    """An unlisted link to this post (the same one until revoked)."""
    need(request, "write")
    post = owned_post(request, post_id)
    token = _refusing(lambda: services.post_share_link(post=post))
    return Status(201, {"url": settings.SITE_URL + reverse("shared_post", args=[token])})


@router.delete(
    "/posts/{post_id}/share-link",
    response={204: None, **errors(403, 404)},
    summary="Revoke the share link",
)
def post_share_revoke(request, post_id: UUID):
    need(request, "write")
    services.post_share_revoke(post=owned_post(request, post_id))
    return Status(204, None)


@router.delete(
    "/posts/{post_id}", response={204: None, **errors(403, 404)}, summary="Delete a post"
)
def post_delete(request, post_id: UUID):
    need(request, "write")
    services.post_remove(post=owned_post(request, post_id))
    return Status(204, None)


@router.post(
    "/posts/{post_id}/edits",
    response={201: PostOut, **errors(400, 403, 404)},
    summary="Edit a post into a new one",
)
def post_edit(request, post_id: UUID, body: EditIn):
    """Crop, resize, rotate, add a caption bar or a visible label: a new post whose signed
    original names this post's as its parentOf ingredient, with the matching C2PA action."""
    need(request, "write")
    post = owned_post(request, post_id)
    data = {k: "" if v is None else str(v) for k, v in body.dict().items()}
    edited = _refusing(lambda: services.post_edit(post=post, data=data))
    return Status(201, post_out(edited))


@router.get(
    "/posts/{post_id}/file",
    response={200: None, **errors(403, 404)},
    url_name="post_download",
    summary="Download the signed original (PNG with its Content Credential)",
)
def post_download(request, post_id: UUID):
    need(request, "read")
    post = owned_post(request, post_id)
    return stored_file_response(
        post.image.name, content_type="image/png", download_name=f"candor-{post.pk}.png"
    )


def kit_out(post: Post) -> dict:
    files = postkit.kit_files(post)
    link = postkit.verify_url(post)
    return {
        "built": bool(files) and not postkit.refusal(post),
        "label_style": next((f.label_style for f in files.values() if f.label_style), ""),
        "alt_text": postkit.alt_text(post),
        "verify_url": link,
        "files": [
            {
                "key": key,
                "width": f.width,
                "height": f.height,
                "labelled": bool(f.label_style),
                "file_url": reverse("api:post_kit_download", args=[post.pk, key]),
            }
            for key, f in files.items()
        ],
        "destinations": [
            {
                "key": d.key,
                "name": d.name,
                "credentials": d.credentials,
                "files": list(d.formats),
                "signed_original": d.original,
                "caption": caption,
                "caption_max": d.caption_max,
                "caption_length": postkit.counted_length(caption, link, d),
            }
            for d in postkit.DESTINATIONS
            for caption in [postkit.caption_for(post, d, link)]
        ],
        "zip_url": reverse("api:post_kit_zip", args=[post.pk]),
    }


def _kit_may_go_out(post: Post) -> None:
    refused = postkit.refusal(post)
    if refused:
        raise ApiError("refused", refused)


@router.post(
    "/posts/{post_id}/kit",
    response={201: KitOut, **errors(400, 403, 404)},
    summary="Make the post kit",
)
def post_kit_build(request, post_id: UUID, body: KitIn | None = None):
    """One signed, watermarked file per platform size (the visible label on those for
    platforms that strip metadata), each with this post's original as its parent ingredient;
    captions and alt text per platform. Replaces an earlier kit."""
    need(request, "write")
    post = owned_post(request, post_id)
    style = (body.label_style if body else None) or ""
    _refusing(lambda: postkit.kit_build(post=post, label_style=style))
    return Status(201, kit_out(post))


@router.get(
    "/posts/{post_id}/kit", response={200: KitOut, **errors(403, 404)}, summary="Show the post kit"
)
def post_kit_show(request, post_id: UUID):
    need(request, "read")
    return kit_out(owned_post(request, post_id))


@router.get(
    "/posts/{post_id}/kit/files/{key}",
    response={200: None, **errors(400, 403, 404)},
    url_name="post_kit_download",
    summary="Download one post-kit file (signed JPEG)",
)
def post_kit_download(request, post_id: UUID, key: str):
    need(request, "read")
    post = owned_post(request, post_id)
    stored = post.kit_files.filter(key=key).first()
    if stored is None:
        raise not_found("kit file")
    _kit_may_go_out(post)
    return stored_file_response(
        stored.file.name, content_type="image/jpeg",
        download_name=postkit.FORMAT_BY_KEY[key].filename(post),
    )  # fmt: skip


@router.get(
    "/posts/{post_id}/kit/zip",
    response={200: None, **errors(400, 403, 404)},
    url_name="post_kit_zip",
    summary="Download the whole post kit (ZIP)",
)
def post_kit_zip(request, post_id: UUID):
    need(request, "read")
    post = owned_post(request, post_id)
    _kit_may_go_out(post)
    return kit_views.zip_response(post)


@verify_router.post(
    "/verify",
    auth=None,
    response={200: VerifyOut, **errors(400, 413, 503)},
    summary="Verify any image",
)
def verify(request: HttpRequest, image: UploadedFile = File(...)):  # noqa: B008
    """Anyone, no token: is this image one of ours, signed, labelled AI-generated? Reads its
    Content Credential, else finds it by watermark or fingerprint. Same as `POST /api/verify`."""
    if wait := verify_views.limited(request):
        raise ApiError("rate_limited", "Too many verifications: wait and try again.",
                       headers={"Retry-After": str(wait)})  # fmt: skip
    verdict, error, status = verify_views.check(request)
    if verdict is None:
        code = {400: "refused", 413: "payload_too_large", 503: "busy"}[status]
        wait = verify_views.busy_wait(status)
        raise ApiError(code, error, headers={"Retry-After": str(wait)} if wait else None)
    payload = verdict.as_json()
    if verdict.credential is not None:
        payload["share_url"] = request.build_absolute_uri(verify_views.result_path(verdict))
    return payload
