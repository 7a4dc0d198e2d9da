"""The C2PA Soft Binding Resolution API: find a Candor credential by its watermark or pHash.

Follows the specification's OpenAPI document (C2PA Soft Binding Resolution API 1.0.0, as
referenced by C2PA 2.x), with these deviations:
- the algorithm names are Candor's own (org.candor.*), not entries of the C2PA soft binding
  algorithm list;
- `value` is accepted as base64 (as the specification says) and also in Candor's own notation:
  the watermark id in decimal, the pHash as 16 hex digits;
- /manifests/{manifestId} answers JSON (the manifest as c2pa reads it, the consent status and the
  public post's address) rather than application/c2pa bytes: Candor keeps the manifest's JSON, not
  its JUMBF; returnActiveManifest is accepted and changes nothing (only the active one is kept);
- byContent also takes the image as the multipart field `image` (like /api/verify), and ignores
  hintAlg/hintValue;
- no OAuth: anyone may call it, rate-limited per client like verify.

What anyone learns is no more than a public post shows: matches by binding (a watermark id is a
small counter, so it proves nothing) are only credentials of public posts. Matching by content —
the caller shows they hold the image — also finds credentials of drafts, private and deleted
posts; those come back with a manifestId signed for CONTENT_PROOF_MAX_AGE seconds, the only way
/manifests/ answers for them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid as uuidlib

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config import ratelimit
from gallery import fingerprints, verify
from gallery.models import Credential, Post
from imaging.limits import ImageRejected, Reason, check_image
from imaging.phash import phash
from imaging.sniff import too_large

WATERMARK_ALG = "org.candor.watermark.1"
PHASH_ALG = "org.candor.phash.1"
ALGORITHMS = {"watermarks": [WATERMARK_ALG], "fingerprints": [PHASH_ALG]}
MAX_RESULTS_DEFAULT = 10  # the specification's default
MAX_RESULTS_LIMIT = 100
CONTENT_PROOF_MAX_AGE = 3600  # seconds a manifestId from byContent opens a non-public manifest
WINDOW = 60

BAD_ALG = "Unknown soft binding algorithm. Supported: " + ", ".join([WATERMARK_ALG, PHASH_ALG])
BAD_VALUE = "The soft binding value is not one this algorithm produces."
BAD_MAX_RESULTS = f"maxResults must be a whole number from 1 to {MAX_RESULTS_LIMIT}."
BAD_QUERY = 'Send a JSON object {"alg": ..., "value": ...}.'
BAD_MANIFEST_ID = "Not a manifest id."
NO_MANIFEST = "No such manifest."
NO_IMAGE = "Send an image: the request body (Content-Type image/*) or the form field `image`."
TOO_MANY = "Too many requests from your network. Please wait a minute and try again."

_HEX = re.compile(r"[0-9a-fA-F]{16}")
_DECIMAL = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also takes "²"
_signer = signing.TimestampSigner(salt="gallery.soft_binding.content")


class BadRequest(Exception):
    pass


def _error(message: str, status: int, retry_after: int = 0) -> JsonResponse:
    return ratelimit.with_retry_after(JsonResponse({"error": message}, status=status), retry_after)


def _limited(request: HttpRequest, scope: str) -> int:
    return ratelimit.attempt(
        scope, ratelimit.client_ip(request), limit=settings.VERIFY_RATE_LIMIT, window=WINDOW
    )


def _max_results(request: HttpRequest) -> int:
    raw = request.GET.get("maxResults", str(MAX_RESULTS_DEFAULT))
    if not _DECIMAL.fullmatch(raw) or not 1 <= int(raw) <= MAX_RESULTS_LIMIT:
        raise BadRequest(BAD_MAX_RESULTS)
    return int(raw)


def _base64(value: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when it is neither."""
    padded = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def watermark_id(value: str) -> int | None:
    """The watermark payload a binding value names: Candor's decimal id, or its big-endian bytes
    in base64 (a value of digits only is read as decimal). The one place that knows the payload's
    form (today: Credential.pk)."""
    if _DECIMAL.fullmatch(value):
        found = int(value)
    else:
        raw = _base64(value)
        found = int.from_bytes(raw, "big") if raw else None
    return found if found is not None and found < 2**63 else None


def phash_value(value: str) -> str | None:
    """A binding value as a pHash: 16 hex digits, or its 8 bytes in base64."""
    if _HEX.fullmatch(value):
        return value.lower()
    raw = _base64(value)
    return raw.hex() if raw is not None and len(raw) == 8 else None


def _score(bits_apart: int) -> int:
    return round(100 * (64 - bits_apart) / 64)


def _by_binding(alg: str, value: str, limit: int) -> list[tuple[Credential, int]]:
    public = Credential.objects.select_related("post").filter(
        post__visibility=Post.Visibility.PUBLIC
    )
    if alg == WATERMARK_ALG:
        found = watermark_id(value)
        if found is None:
            raise BadRequest(BAD_VALUE)
        return [(credential, 100) for credential in public.filter(pk=found)]
    if alg == PHASH_ALG:
        fingerprint = phash_value(value)
        if fingerprint is None:
            raise BadRequest(BAD_VALUE)
        return _with_scores(
            fingerprints.nearest(
                fingerprint, max_bits=verify.SIMILARITY_BITS, limit=limit, queryset=public
            )
        )
    raise BadRequest(BAD_ALG)


def _with_scores(nearest: list[tuple[int, int]]) -> list[tuple[Credential, int]]:
    by_pk = Credential.objects.select_related("post").in_bulk([pk for _, pk in nearest])
    return [(by_pk[pk], _score(bits)) for bits, pk in nearest if pk in by_pk]


def _by_watermark(image, size: tuple[int, int]) -> list[tuple[Credential, int]]:
    """The credential whose watermark the image carries, read and checked as verify does."""
    credential = verify.watermark_credential(image, size)
    return [(credential, 100)] if credential is not None else []


def _by_content(data: bytes, algs: set[str], limit: int) -> list[tuple[Credential, int]]:
    """Matches for an uploaded image, checked and decoded exactly as verify does. Raises
    ImageRejected and verify.VerifierBusy like verify.verify_bytes."""
    checked = check_image(data, verify.verify_limits())
    # The same slots as verify: together they never run more than VERIFY_CONCURRENCY at once.
    with verify.slot():
        image = verify.decode_for_search(data, checked)
        matches: list[tuple[Credential, int]] = []
        if WATERMARK_ALG in algs:
            matches += _by_watermark(image, (checked.width, checked.height))
        if PHASH_ALG in algs:
            matches += _with_scores(
                fingerprints.nearest(phash(image), max_bits=verify.SIMILARITY_BITS, limit=limit)
            )
    best: dict[int, tuple[Credential, int]] = {}
    for credential, score in matches:
        if credential.pk not in best or score > best[credential.pk][1]:
            best[credential.pk] = (credential, score)
    return sorted(best.values(), key=lambda match: -match[1])[:limit]


def _is_public(credential: Credential) -> bool:
    return credential.post is not None and credential.post.visibility == Post.Visibility.PUBLIC


def _matches_json(matches: list[tuple[Credential, int]], *, by_content: bool) -> JsonResponse:
    return JsonResponse(
        {
            "matches": [
                {
                    "manifestId": str(credential.uuid)
                    if _is_public(credential) or not by_content
                    else _signer.sign(str(credential.uuid)),
                    "similarityScore": score,
                }
                for credential, score in matches
            ]
        }
    )


@csrf_exempt  # reads only: any client may call it, without a session
@require_http_methods(["GET", "HEAD", "POST"])
def matches_by_binding(request: HttpRequest) -> JsonResponse:
    if wait := _limited(request, "soft-binding"):
        return _error(TOO_MANY, 429, wait)
    try:
        limit = _max_results(request)
        if request.method == "POST":
            try:
                query = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                raise BadRequest(BAD_QUERY) from None
            if not isinstance(query, dict):
                raise BadRequest(BAD_QUERY)
        else:
            query = request.GET
        alg, value = query.get("alg"), query.get("value")
        if not isinstance(alg, str) or not isinstance(value, str) or not alg or not value:
            raise BadRequest(BAD_QUERY if request.method == "POST" else BAD_VALUE)
        matches = _by_binding(alg, value.strip(), limit)
    except BadRequest as exc:
        return _error(str(exc), 400)
    return _matches_json(matches, by_content=False)


@csrf_exempt  # stores nothing: any client may call it, without a session
@require_POST
def matches_by_content(request: HttpRequest) -> JsonResponse:
    if wait := _limited(request, "verify"):  # the work of a verification: the same budget
        return _error(TOO_MANY, 429, wait)
    try:
        limit = _max_results(request)
        alg = request.GET.get("alg")
        if alg and alg not in (WATERMARK_ALG, PHASH_ALG):
            raise BadRequest(BAD_ALG)
    except BadRequest as exc:
        return _error(str(exc), 400)
    upload = request.FILES.get("image")
    if upload is not None:
        size, read = upload.size, upload.read
    elif request.content_type.startswith("image/"):
        size = int(request.META.get("CONTENT_LENGTH") or 0)
        read = request.read
    else:
        return _error(NO_IMAGE, 415 if request.META.get("CONTENT_LENGTH", "0") != "0" else 400)
    if size > settings.PHOTO_MAX_BYTES:
        return _error(too_large(size, settings.PHOTO_MAX_BYTES), 413)
    data = read(settings.PHOTO_MAX_BYTES + 1)  # a body without a length can't run on
    if len(data) > settings.PHOTO_MAX_BYTES:
        return _error(too_large(len(data), settings.PHOTO_MAX_BYTES), 413)
    try:
        matches = _by_content(data, {alg} if alg else {WATERMARK_ALG, PHASH_ALG}, limit)
    except ImageRejected as exc:
        status = 415 if exc.reason in (Reason.NOT_AN_IMAGE, Reason.SVG, Reason.TEXT) else 400
        return _error(exc.message, status)
    except verify.VerifierBusy as exc:
        return _error(str(exc), 503, verify.BUSY_RETRY_AFTER)
    return _matches_json(matches, by_content=True)


def _credential_for(manifest_id: str) -> Credential | None:
    """The credential a manifestId opens: a public post's by its uuid, any by a signed id."""
    signed = ":" in manifest_id
    if signed:
        try:
            manifest_id = _signer.unsign(manifest_id, max_age=CONTENT_PROOF_MAX_AGE)
        except signing.BadSignature:  # expired ones too
            return None
    try:
        key = uuidlib.UUID(manifest_id)
    except ValueError:
        raise BadRequest(BAD_MANIFEST_ID) from None
    credential = Credential.objects.select_related("post").filter(uuid=key).first()
    if credential is None or not (signed or _is_public(credential)):
        return None
    return credential


@csrf_exempt
@require_safe
def manifest(request: HttpRequest, manifest_id: str) -> HttpResponse:
    if wait := _limited(request, "soft-binding"):
        return _error(TOO_MANY, 429, wait)
    try:
        credential = _credential_for(manifest_id)
    except BadRequest as exc:
        return _error(str(exc), 400)
    if credential is None:
        return _error(NO_MANIFEST, 404)
    post_url = ""
    if _is_public(credential):
        post_url = settings.SITE_URL + reverse("public_post", args=[credential.post.pk])
    return JsonResponse(
        {
            "manifestId": manifest_id,
            "manifest": credential.manifest or {},
            "consentRevoked": credential.consent_revoked_at is not None,
            "withdrawnByPersonShown": credential.withdrawn_at is not None,
            "postUrl": post_url,
        }
    )


@require_safe
def supported_algorithms(request: HttpRequest) -> JsonResponse:
    return JsonResponse({kind: [{"alg": alg} for alg in algs] for kind, algs in ALGORITHMS.items()})
