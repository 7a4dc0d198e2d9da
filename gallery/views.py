from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config.confirm import confirm_page, confirmed
from config.files import PRIVATE_NO_STORE, stored_file_response
from config.refusal import Refusal
from gallery import edits, labelling, labels, postkit, selectors, services, signing
from gallery.models import GalleryShare, Post
from gallery.provenance.xmp import DECLARATIONS
from imaging.sniff import too_large

VARIANT_FIELDS = {"original": "image", "display": "display", "thumb": "thumb", "preview": "preview"}
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
# A public file's bytes never change, but it can be taken down (unpublished, link revoked,
# consent withdrawn): caches may keep it five minutes, not a year, so a take-down takes effect.
PUBLIC_REVOCABLE = "public, max-age=300, must-revalidate"


def _get_post_for_user(request: HttpRequest, pk) -> Post:
    try:
        return Post.objects.select_related("owner").get(pk=pk, owner=request.user)
    except Post.DoesNotExist:
        raise Http404("No such post.") from None


def _get_public_post(pk) -> Post:
    try:
        return Post.objects.select_related("owner").get(pk=pk, visibility=Post.Visibility.PUBLIC)
    except Post.DoesNotExist:
        raise Http404("No such post.") from None


def _get_shared_post(token: str) -> Post:
    post = Post.objects.select_related("owner").filter(share_token=token).first() if token else None
    if post is None:
        raise Http404("This link doesn't work (any more).")
    return post


def _get_gallery_share(token: str) -> GalleryShare:
    share = (
        GalleryShare.objects.select_related("owner").filter(token=token, revoked_at=None).first()
    )
    if share is None:
        raise Http404("This link doesn't work (any more).")
    return share


def _serve(post: Post, variant: str, *, public: bool, download: bool = False) -> FileResponse:
    """The signed bytes exactly as stored: downloading keeps the credentials intact."""
    field = VARIANT_FIELDS.get(variant)
    file = getattr(post, field) if field else None
    name = file.name if file else ""
    ext = name.rsplit(".", 1)[-1]
    response = stored_file_response(
        name,
        content_type=CONTENT_TYPES.get(ext, "application/octet-stream"),
        # Files never change once made (a new post makes new files), so caches may keep them.
        cache_control=PUBLIC_REVOCABLE if public else PRIVATE_NO_STORE,
        download_name=f"candor-{str(post.pk)[:8]}-{variant}.{ext}" if download else "",
    )
    if public:
        response["Access-Control-Allow-Origin"] = "*"  # verifiers fetch originals cross-origin
    return response


# --- the creator's own gallery ---------------------------------------------------------------


@login_required
@require_safe
def gallery(request: HttpRequest) -> HttpResponse:
    context = {
        "posts": selectors.posts_for_user(request.user),
        "shares": selectors.active_gallery_shares(request.user),
    }
    return render(request, "gallery/gallery.html", context)


@login_required
@require_safe
def post_detail(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    context = _post_context(request, post, owner_view=True)
    context.update(
        history=services.post_history(post),
        edits=post.edits.order_by("created_at"),
        edit_ops=edits.OPS,
        rotations=edits.ROTATIONS,
        label_styles=labels.LABEL_STYLES,
        default_label_style=settings.LABEL_STYLE,
        caption_bar_max=labels.CAPTION_BAR_MAX_CHARS,
        edit_min_side=edits.MIN_SIDE,
        edit_max_side=edits.MAX_SIDE,
        **postkit.kit_context(post),
    )
    return render(request, "gallery/post_detail.html", context)


@login_required
@require_POST
def post_edit(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    try:
        edited = services.post_edit(post=post, data=request.POST)
    except Refusal as exc:
        messages.error(request, exc.message)
        return redirect(reverse("post_detail", args=[post.pk]) + "#edit")
    messages.success(request, f"{edited.edit['words']}: a new post, with this one as its parent.")
    return redirect("post_detail", pk=edited.pk)


def _label_context(**values) -> dict:
    return {
        "declarations": [(key, words) for key, (words, _) in DECLARATIONS.items()],
        "tool_max": labelling.TOOL_MAX_CHARS,
        "caption_max": services.CAPTION_MAX_CHARS,
        **values,
    }


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def label_upload(request: HttpRequest) -> HttpResponse:
    """Label an image made elsewhere: upload it, say what it is, get a signed post."""
    if request.method != "POST":
        return render(request, "gallery/label.html", _label_context())
    upload = request.FILES.get("image")
    chosen = {
        "declaration": request.POST.get("declaration", ""),
        "tool": request.POST.get("tool", ""),
        "caption": request.POST.get("caption", ""),
    }
    try:
        if upload is None:
            raise Refusal(labelling.NO_FILE)
        if upload.size > settings.PHOTO_MAX_BYTES:
            raise Refusal(too_large(upload.size, settings.PHOTO_MAX_BYTES))
        post = labelling.post_label_upload(
            owner=request.user, data=upload.read(), filename=upload.name or "", **chosen
        )
    except Refusal as exc:
        context = _label_context(error=exc.message, chosen=chosen)
        return render(request, "gallery/label.html", context, status=400)
    messages.success(request, "Labelled and signed: it is a private draft in your gallery.")
    return redirect("post_detail", pk=post.pk)


@login_required
@require_safe
def post_file(request: HttpRequest, pk, variant: str, ext: str) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    return _serve(post, variant, public=False, download=request.GET.get("download") == "1")


@login_required
@require_POST
def post_caption(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    try:
        services.post_update_caption(post=post, caption=request.POST.get("caption", ""))
    except Refusal as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Caption saved.")
    return redirect("post_detail", pk=post.pk)


@login_required
@require_POST
def post_publish(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    if request.POST.get("publish") == "0":
        services.post_unpublish(post=post)
        messages.success(request, "Unpublished: only you can see it now.")
    else:
        try:
            services.post_publish(post=post)
        except Refusal as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Published on your public gallery.")
    return redirect("post_detail", pk=post.pk)


@login_required
@require_POST
def post_share(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    if request.POST.get("revoke") == "1":
        services.post_share_revoke(post=post)
        messages.success(request, "Share link revoked: it no longer works.")
    else:
        try:
            services.post_share_link(post=post)
        except Refusal as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Share link ready. Anyone with it can see this post.")
    return redirect("post_detail", pk=post.pk)


@login_required
@require_POST
def post_delete(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Delete the post “{post}”?",
            consequences=[
                "the image in every size, and its public page and share link if it has them"
            ],
            keeps=["its Content Credentials record, so a copy found later can still be verified"],
            button="Delete this post",
            cancel_url=reverse("post_detail", args=[post.pk]),
        )
    services.post_remove(post=post)
    messages.success(request, "Post deleted.")
    return redirect("gallery")


@login_required
@require_POST
def gallery_share(request: HttpRequest) -> HttpResponse:
    services.gallery_share_create(owner=request.user)
    messages.success(request, "Gallery link ready: it shows your public and private posts.")
    return redirect("gallery")


@login_required
@require_POST
def gallery_share_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    share = GalleryShare.objects.filter(pk=pk, owner=request.user, revoked_at=None).first()
    if share is None:
        raise Http404("No such link.")
    services.gallery_share_revoke(share=share)
    messages.success(request, "Gallery link revoked.")
    return redirect("gallery")


# --- public pages ------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


def _post_context(request, post: Post, *, owner_view=False, token: str = "") -> dict:
    if owner_view:
        original = reverse("post_file", args=[post.pk, "original", "png"])
        preview = reverse("post_file", args=[post.pk, "preview", "jpg"])
    elif token:
        original = reverse("shared_file", args=[token, "original", "png"])
        preview = reverse("shared_file", args=[token, "preview", "jpg"])
    else:
        original = reverse("public_file", args=[post.pk, "original", "png"])
        preview = reverse("public_file", args=[post.pk, "preview", "jpg"])
    identity = signing.identity()
    return {
        "post": post,
        "owner_view": owner_view,
        "token": token,
        "original_url": original,
        "display_url": original.replace("original.png", "display.jpg"),
        "preview_absolute": _absolute(preview),
        "page_absolute": _absolute(request.path),
        "verify_url": "https://contentcredentials.org/verify?source="
        + quote(_absolute(original), safe=""),
        "signer": identity.subject,
        "share_url": (
            request.build_absolute_uri(reverse("shared_post", args=[post.share_token]))
            if post.share_token
            else ""
        ),
    }


@require_safe
def profile(request: HttpRequest, handle: str) -> HttpResponse:
    owner = get_user_model().objects.filter(handle=handle.lower(), is_active=True).first()
    if owner is None:
        raise Http404("No such creator.")
    posts = selectors.public_posts(owner)
    return render(request, "gallery/profile.html", {"owner": owner, "posts": posts})


@require_safe
def public_post(request: HttpRequest, pk) -> HttpResponse:
    post = _get_public_post(pk)
    return render(request, "gallery/public_post.html", _post_context(request, post))


@require_safe
def public_file(request: HttpRequest, pk, variant: str, ext: str) -> HttpResponse:
    post = _get_public_post(pk)
    return _serve(post, variant, public=True, download=request.GET.get("download") == "1")


@require_safe
def shared_post(request: HttpRequest, token: str) -> HttpResponse:
    post = _get_shared_post(token)
    return render(request, "gallery/public_post.html", _post_context(request, post, token=token))


@require_safe
def shared_file(request: HttpRequest, token: str, variant: str, ext: str) -> HttpResponse:
    post = _get_shared_post(token)
    return _serve(post, variant, public=True, download=request.GET.get("download") == "1")


@require_safe
def shared_gallery(request: HttpRequest, token: str) -> HttpResponse:
    share = _get_gallery_share(token)
    posts = selectors.shared_gallery_posts(share)
    return render(
        request,
        "gallery/profile.html",
        {"owner": share.owner, "posts": posts, "gallery_token": token},
    )


@require_safe
def shared_gallery_file(
    request: HttpRequest, token: str, pk, variant: str, ext: str
) -> HttpResponse:
    share = _get_gallery_share(token)
    post = selectors.shared_gallery_posts(share).filter(pk=pk).first()
    if post is None:
        raise Http404("No such image.")
    return _serve(post, variant, public=True)


@require_safe
def trust_anchor(request: HttpRequest) -> HttpResponse:
    """This instance's root certificates (current and rotated out): add them to a verifier's
    trust anchors."""
    response = HttpResponse(signing.instance_roots_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="candor-trust-anchor.pem"'
    response["Access-Control-Allow-Origin"] = "*"
    return response
