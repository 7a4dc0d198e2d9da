"""The public verify page and API: anyone can check an image; nothing uploaded is stored."""

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config import ratelimit
from gallery.models import Credential
from gallery.verify import (
    BUSY_RETRY_AFTER,
    HEADLINES,
    SIGNED_BY_THIS_INSTANCE,
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
RESULT_SALT = "candor.verify-result"


def result_path(verdict: Verdict) -> str:
    """A link to this result: only the verdict reached and the credential, signed so a link can't
    claim a verdict that was never given. Nothing of the upload is in it."""
    token = signing.dumps(
        {"v": verdict.verdict, "c": str(verdict.credential.uuid)}, salt=RESULT_SALT
    )
    return reverse("verify_result", args=[token])


def limited(request: HttpRequest) -> int:
    """Count a verification; when over the limit, the seconds to wait instead (else 0)."""
    return ratelimit.attempt(
        "verify", ratelimit.client_ip(request), limit=settings.VERIFY_RATE_LIMIT, window=WINDOW
    )


def check(request: HttpRequest) -> tuple[Verdict | None, str, int]:
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


def busy_wait(status: int) -> int:
    """Seconds for Retry-After: set only when the verifier was busy."""
    return BUSY_RETRY_AFTER if status == 503 else 0


@require_http_methods(["GET", "HEAD", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "gallery/verify.html", {})
    if wait := limited(request):
        response = render(request, "gallery/verify.html", {"error": TOO_MANY}, status=429)
        return ratelimit.with_retry_after(response, wait)
    verdict, error, status = check(request)
    share = result_path(verdict) if verdict and verdict.credential else ""
    context = {"verdict": verdict, "error": error, "share_path": share}
    response = render(request, "gallery/verify.html", context, status=status)
    return ratelimit.with_retry_after(response, busy_wait(status))


@csrf_exempt  # changes nothing and stores nothing: any client may call it
@require_POST
def verify_api(request: HttpRequest) -> JsonResponse:
    if wait := limited(request):
        return ratelimit.with_retry_after(JsonResponse({"error": TOO_MANY}, status=429), wait)
    verdict, error, status = check(request)
    if verdict is None:
        response = JsonResponse({"error": error}, status=status)
        return ratelimit.with_retry_after(response, busy_wait(status))
    payload = verdict.as_json()
    if verdict.credential is not None:
        payload["share_url"] = request.build_absolute_uri(result_path(verdict))
    return JsonResponse(payload)


@require_safe
def credential_result(request: HttpRequest, credential: str) -> HttpResponse:
    """A short, stable link to one of this instance's credentials, for captions a platform
    counts in characters (the post kit's): it says what the credential says, today — no more
    than that this instance signed it, which is true of every credential it holds."""
    found = Credential.objects.select_related("post").filter(uuid=credential).first()
    if found is None:
        raise Http404("No such credential.")
    verdict = _from_credential(SIGNED_BY_THIS_INSTANCE, found)
    return render(request, "gallery/verify.html", {"verdict": verdict, "shared": True})


@require_safe
def verify_result(request: HttpRequest, token: str) -> HttpResponse:
    """A shared result: the verdict that was reached, with the credential's details today."""
    try:
        data = signing.loads(token, salt=RESULT_SALT)
    except signing.BadSignature:
        raise Http404("No such result.") from None
    credential = Credential.objects.select_related("post").filter(uuid=data.get("c")).first()
    if credential is None or data.get("v") not in HEADLINES:
        raise Http404("No such result.")
    verdict = _from_credential(data["v"], credential)
    return render(request, "gallery/verify.html", {"verdict": verdict, "shared": True})
