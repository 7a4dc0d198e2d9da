from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from gallery import selectors, services
from gallery.models import Post


def _get_post_for_user(request: HttpRequest, pk) -> Post:
    try:
        return Post.objects.get(pk=pk, owner=request.user)
    except Post.DoesNotExist:
        raise Http404("No such post.") from None


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    posts = selectors.posts_for_user(request.user)
    return render(request, "gallery/gallery.html", {"posts": posts})


@login_required
@require_GET
def post_detail(request: HttpRequest, pk) -> HttpResponse:
    return render(request, "gallery/post_detail.html", {"post": _get_post_for_user(request, pk)})


@login_required
@require_GET
def post_image(request: HttpRequest, pk) -> HttpResponse:
    post = _get_post_for_user(request, pk)
    try:
        handle = default_storage.open(post.image.name)
    except FileNotFoundError:
        raise Http404("No such image.") from None
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_POST
def post_delete(request: HttpRequest, pk) -> HttpResponse:
    services.post_remove(post=_get_post_for_user(request, pk))
    messages.success(request, "Post deleted.")
    return redirect("gallery")
