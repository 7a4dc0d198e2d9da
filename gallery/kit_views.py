"""The post kit's pages (gallery/postkit.py): build it, download one file or all of them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from config.files import PRIVATE_NO_STORE, stored_file_response
from config.refusal import Refusal
from gallery import postkit
from gallery.views import _get_post_for_user

KIT_MADE = "Post kit ready: one download per platform, each signed and watermarked."


def _kit_anchor(post) -> str:
    return reverse("post_detail", args=[post.pk]) + "#kit"


def _may_go_out(request: HttpRequest, post) -> bool:
    """Kit files are for posting elsewhere: once the post may not go out, none are handed out."""
    refused = postkit.refusal(post)
    if refused:
        messages.error(request, refused)
    return not refused


@login_required
@require_POST
def kit_build(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    try:
        postkit.kit_build(post=post, label_style=request.POST.get("label_style", ""))
    except Refusal as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, KIT_MADE)
    return redirect(_kit_anchor(post))


@login_required
@require_safe
def kit_file(request: HttpRequest, pk, key: str, ext: str) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    stored = post.kit_files.filter(key=key).first()
    fmt = postkit.FORMAT_BY_KEY.get(key)
    if stored is None or fmt is None or ext != postkit.KIT_EXT:
        raise Http404("No such file.")
    if not _may_go_out(request, post):
        return redirect(_kit_anchor(post))
    download = request.GET.get("download") == "1"
    return stored_file_response(
        stored.file.name,
        content_type="image/jpeg",
        download_name=fmt.filename(post) if download else "",
    )


def zip_response(post) -> HttpResponse:
    """The whole kit as a private download (the page's and the API's)."""
    response = HttpResponse(postkit.kit_zip(post), content_type="application/zip")
    name = f"candor-{str(post.pk)[:8]}-kit.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = PRIVATE_NO_STORE
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_safe
def kit_zip(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    if not _may_go_out(request, post):
        return redirect(_kit_anchor(post))
    return zip_response(post)
