"""The public verify page and API: anyone can check an image; nothing uploaded is stored."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config import ratelimit
from gallery.models import Credential
from gallery.verify import RECOVERED_BY_WATERMARK, Verdict, _from_credential, verify_bytes
from imaging.sniff import ImageRejected, too_large

NO_IMAGE = "Choose an image to verify."
TOO_MANY = "Too many verifications from your network. Please wait a minute and try again."
WINDOW = 60


def _limited(request: HttpRequest) -> bool:
    hits = ratelimit.hit("verify", ratelimit.client_ip(request), window=WINDOW)
    return hits > settings.VERIFY_RATE_LIMIT


def _check(request: HttpRequest) -> tuple[Verdict | None, str, int]:
    """(verdict, error message, HTTP status) for the uploaded field `image`."""
    if _limited(request):
        return None, TOO_MANY, 429
    upload = request.FILES.get("image")
    if upload is None:
        return None, NO_IMAGE, 400
    if upload.size > settings.PHOTO_MAX_BYTES:
        return None, too_large(upload.size, settings.PHOTO_MAX_BYTES), 413
    try:
        return verify_bytes(upload.read()), "", 200
    except ImageRejected as exc:
        return None, exc.message, 400


@require_http_methods(["GET", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "gallery/verify.html", {})
    verdict, error, status = _check(request)
    return render(
        request, "gallery/verify.html", {"verdict": verdict, "error": error}, status=status
    )


@csrf_exempt  # changes nothing and stores nothing: any client may call it
@require_POST
def verify_api(request: HttpRequest) -> JsonResponse:
    verdict, error, status = _check(request)
    if verdict is None:
        return JsonResponse({"error": error}, status=status)
    payload = verdict.as_json()
    if verdict.credential is not None:
        payload["share_url"] = request.build_absolute_uri(f"/verify/c/{verdict.credential.uuid}/")
    return JsonResponse(payload)


@require_GET
def verify_shared(request: HttpRequest, uuid) -> HttpResponse:
    """A shareable result for a Candor credential (nothing of the upload is kept)."""
    credential = Credential.objects.select_related("post").filter(uuid=uuid).first()
    if credential is None:
        raise Http404("No such credential.")
    verdict = _from_credential(RECOVERED_BY_WATERMARK, credential)
    return render(request, "gallery/verify.html", {"verdict": verdict, "shared": True})
