"""The public verify page and API: anyone can check an image; nothing uploaded is stored."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config import ratelimit
from gallery.models import Credential
from gallery.verify import (
    BUSY_RETRY_AFTER,
    RECOVERED_BY_WATERMARK,
    Verdict,
    VerifierBusy,
    _from_credential,
    verify_bytes,
)
from imaging.limits import ImageRejected
from imaging.sniff import too_large

NO_IMAGE = "Choose an image to verify."
TOO_MANY = "Too many verifications from your network. Please wait a minute and try again."
WINDOW = 60


def _limited(request: HttpRequest) -> int:
    """Count a verification; when over the limit, the seconds to wait instead (else 0)."""
    return ratelimit.attempt(
        "verify", ratelimit.client_ip(request), limit=settings.VERIFY_RATE_LIMIT, window=WINDOW
    )


def _check(request: HttpRequest) -> tuple[Verdict | None, str, int]:
    """(verdict, error message, HTTP status) for the uploaded field `image`."""
    upload = request.FILES.get("image")
    if upload is None:
        return None, NO_IMAGE, 400
    if upload.size > settings.PHOTO_MAX_BYTES:
        return None, too_large(upload.size, settings.PHOTO_MAX_BYTES), 413
    try:
        return verify_bytes(upload.read()), "", 200
    except ImageRejected as exc:
        return None, exc.message, 400
    except VerifierBusy as exc:
        return None, str(exc), 503


def _busy_wait(status: int) -> int:
    """Seconds for Retry-After: set only when the verifier was busy."""
    return BUSY_RETRY_AFTER if status == 503 else 0


@require_http_methods(["GET", "HEAD", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "gallery/verify.html", {})
    if wait := _limited(request):
        response = render(request, "gallery/verify.html", {"error": TOO_MANY}, status=429)
        return ratelimit.with_retry_after(response, wait)
    verdict, error, status = _check(request)
    response = render(
        request, "gallery/verify.html", {"verdict": verdict, "error": error}, status=status
    )
    return ratelimit.with_retry_after(response, _busy_wait(status))


@csrf_exempt  # changes nothing and stores nothing: any client may call it
@require_POST
def verify_api(request: HttpRequest) -> JsonResponse:
    if wait := _limited(request):
        return ratelimit.with_retry_after(JsonResponse({"error": TOO_MANY}, status=429), wait)
    verdict, error, status = _check(request)
    if verdict is None:
        response = JsonResponse({"error": error}, status=status)
        return ratelimit.with_retry_after(response, _busy_wait(status))
    payload = verdict.as_json()
    if verdict.credential is not None:
        payload["share_url"] = request.build_absolute_uri(f"/verify/c/{verdict.credential.uuid}/")
    return JsonResponse(payload)


@require_safe
def verify_shared(request: HttpRequest, uuid) -> HttpResponse:
    """A shareable result for a Candor credential (nothing of the upload is kept)."""
    credential = Credential.objects.select_related("post").filter(uuid=uuid).first()
    if credential is None:
        raise Http404("No such credential.")
    verdict = _from_credential(RECOVERED_BY_WATERMARK, credential)
    return render(request, "gallery/verify.html", {"verdict": verdict, "shared": True})
