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
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile

from config.api import ApiError, Page, errors, need, not_found, page
from config.files import stored_file_response
from config.refusal import Refusal
from gallery import services, verify_views
from gallery.models import Post

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


class PostPage(Page):
    items: list[PostOut]


class CaptionIn(Schema):
    caption: str


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
