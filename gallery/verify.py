"""Verify any image: read its Content Credentials, or find Candor's again after stripping.

Answers with a stable machine-readable verdict and a plain-language explanation.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from PIL import Image

from gallery import signing
from gallery.models import Credential, Post
from gallery.provenance import c2pa, watermark
from gallery.renditions import DISPLAY_MAX, PREVIEW_SIZE, decode_sizes
from imaging.decode import decode_srgb
from imaging.limits import (
    CheckedImage,
    ImageLimits,
    ImageRejected,
    Reason,
    check_image,
    open_image,
)
from imaging.phash import hamming, phash

logger = logging.getLogger(__name__)

SIGNED_BY_THIS_INSTANCE = "signed_by_this_instance"
VALID_TRUSTED_SIGNER = "valid_trusted_signer"
VALID_UNKNOWN_SIGNER = "valid_unknown_signer"
TAMPERED = "tampered"
UNREADABLE = "unreadable"
RECOVERED_BY_WATERMARK = "recovered_by_watermark"
RECOVERED_BY_SIMILARITY = "recovered_by_similarity"
NO_CREDENTIALS = "no_credentials"

HEADLINES = {
    SIGNED_BY_THIS_INSTANCE: "AI-generated, signed by this Candor instance",
    VALID_TRUSTED_SIGNER: "Valid Content Credentials from a trusted signer",
    VALID_UNKNOWN_SIGNER: "Valid Content Credentials from a signer this site does not know",
    TAMPERED: "Tampered: the image or its credentials changed after signing",
    UNREADABLE: "Credentials present but unreadable here",
    RECOVERED_BY_WATERMARK: "Credentials were stripped from this image; Candor recovered them",
    RECOVERED_BY_SIMILARITY: "Credentials were stripped from this image; Candor recovered them",
    NO_CREDENTIALS: "No Content Credentials",
}
EXPLANATIONS = {
    SIGNED_BY_THIS_INSTANCE: (
        "This image was made by AI with Candor, and its signed credentials are intact."
    ),
    VALID_TRUSTED_SIGNER: (
        "The credentials are intact and signed by an organisation this site trusts."
    ),
    VALID_UNKNOWN_SIGNER: (
        "The credentials are intact, but the signer is not on this site's list of trusted signers, "
        "so who signed them can't be confirmed."
    ),
    TAMPERED: (
        "Something in the image or its credentials was changed after they were signed: {what}."
    ),
    UNREADABLE: (
        "The image carries credentials this site can't check ({why}). That says nothing either way "
        "about the image."
    ),
    RECOVERED_BY_WATERMARK: (
        "The metadata was removed, but the invisible watermark led back to the credentials of the "
        "original, made by AI with Candor."
    ),
    RECOVERED_BY_SIMILARITY: (
        "The metadata was removed, but the image is nearly identical to one Candor made and "
        "signed; these are the original's credentials."
    ),
    NO_CREDENTIALS: (
        "No credentials were found, and no Candor watermark. No credentials means unknown, "
        "not real: most images carry none."
    ),
}
FAILURE_WORDS = {
    "assertion.dataHash.mismatch": "the image data (its pixels or bytes) was changed",
    "assertion.boxesHash.mismatch": "the image data was changed",
    "assertion.bmffHash.mismatch": "the image data was changed",
    "assertion.hashedURI.mismatch": "a statement in the credentials was changed",
    "assertion.missing": "a statement in the credentials is missing",
    "claimSignature.mismatch": "the signature does not match the credentials",
    "claim.missing": "the credentials' claim is missing",
    "signingCredential.invalid": "the signing certificate is not valid",
    "signingCredential.revoked": "the signing certificate was revoked",
    "signingCredential.expired": "the signing certificate had expired",
    "ingredient.manifest.missing": "an ingredient's credentials are missing",
    "timeStamp.mismatch": "the signature's timestamp does not match",
}
SIMILARITY_BITS = 8

# The pHash works on 32×32 pixels: a smaller image can't be matched to anything.
MIN_SIDE = 32
# Candor marks files at most this long (the 1200-px link preview; displays are 1024), so a larger
# image is only worth decoding down to it, and is tried only at the sizes Candor writes.
MARKED_MAX_SIDE = max(PREVIEW_SIZE[0], DISPLAY_MAX)
# The pixel cap for decoding (settings.VERIFY_DECODE_MAX_PIXELS) and the verifications one web
# process runs at once (settings.VERIFY_CONCURRENCY; more are answered 503 at once rather than
# queued behind them, so other pages keep their threads) are settings.
BUSY_RETRY_AFTER = 5  # seconds

TOO_LARGE_TO_SEARCH = (
    "No Content Credentials were found in this {width}×{height} image, and it is too large to "
    "search for a Candor watermark (the limit is {limit} megapixels). Upload a smaller copy to "
    "check for one."
)
BUSY = "The verifier is busy with other images right now. Please try again in a few seconds."

_slots = threading.BoundedSemaphore(settings.VERIFY_CONCURRENCY)


class VerifierBusy(Exception):
    """Every verification slot of this process is taken; the client should retry shortly."""


@dataclass
class Verdict:
    verdict: str
    consent_revoked: bool = False
    details: dict = field(default_factory=dict)
    credential: Credential | None = None
    post_url: str = ""
    why: str = ""

    @property
    def headline(self) -> str:
        return HEADLINES[self.verdict]

    @property
    def explanation(self) -> str:
        text = EXPLANATIONS[self.verdict]
        return text.format(what=self.why or "unknown", why=self.why or "unsupported")

    def as_json(self) -> dict:
        return {
            "verdict": self.verdict,
            "headline": self.headline,
            "explanation": self.explanation,
            "consent_revoked": self.consent_revoked,
            "post_url": self.post_url,
            "details": self.details,
        }


def _manifest_details(manifest: dict | None) -> dict:
    if not manifest:
        return {}
    signature = manifest.get("signature_info") or {}
    actions = (c2pa.assertion(manifest, "c2pa.actions") or {}).get("actions", [])
    first = actions[0] if actions else {}
    agent = first.get("softwareAgent")
    mining = (c2pa.assertion(manifest, "c2pa.training-mining") or {}).get("entries", {})
    work = c2pa.assertion(manifest, "stds.schema-org.CreativeWork") or {}
    authors = [a.get("name", "") for a in work.get("author", []) if isinstance(a, dict)]
    generator = manifest.get("claim_generator_info") or [{}]
    return {
        "signer": signature.get("common_name") or signature.get("issuer") or "",
        "issuer": signature.get("issuer", ""),
        "signed_at": signature.get("time", ""),
        "actions": [a.get("action", "") for a in actions],
        "digital_source_type": first.get("digitalSourceType", ""),
        "software_agent": agent.get("name", "") if isinstance(agent, dict) else (agent or ""),
        "claim_generator": generator[0].get("name", "") if generator else "",
        "training_mining": {k: v.get("use", "") for k, v in mining.items() if isinstance(v, dict)},
        "author": ", ".join(a for a in authors if a),
        "title": manifest.get("title", ""),
    }


def _from_credential(verdict: str, credential: Credential, extra: dict | None = None) -> Verdict:
    post = credential.post
    post_url = ""
    if post is not None and post.visibility == Post.Visibility.PUBLIC:
        post_url = settings.SITE_URL + reverse("public_post", args=[post.pk])
    manifest = credential.manifest or {}
    details = _manifest_details(manifest)
    details.update(
        signer=credential.signer,
        signed_at=credential.created_at.isoformat(),
        author=f"@{credential.author_handle}"
        if credential.author_handle
        else details.get("author", ""),
        credential_id=str(credential.uuid),
        **(extra or {}),
    )
    return Verdict(
        verdict=verdict,
        consent_revoked=credential.consent_revoked_at is not None,
        details=details,
        credential=credential,
        post_url=post_url,
    )


def verify_limits() -> ImageLimits:
    """Photo intake's limits on bytes, pixels, strips and JPEG scans, for any image kind."""
    return ImageLimits(
        max_bytes=settings.PHOTO_MAX_BYTES, max_pixels=settings.PHOTO_MAX_PIXELS, min_side=MIN_SIDE
    )


def verify_bytes(data: bytes) -> Verdict:
    """The verdict for an uploaded image. Raises ImageRejected for bad input (nothing stored) and
    VerifierBusy when this process is already verifying VERIFY_CONCURRENCY images."""
    checked = check_image(data, verify_limits())  # header only: cheap, so outside the slots
    if not _slots.acquire(blocking=False):
        raise VerifierBusy(BUSY)
    try:
        return _verdict(data, checked)
    finally:
        _slots.release()


def _verdict(data: bytes, checked: CheckedImage) -> Verdict:
    result = _read_credentials(data)
    if result.error and not _says_no_manifest(result.error):
        return Verdict(UNREADABLE, why=_plain_error(result.error))
    if result.found and result.state:
        details = _manifest_details(result.manifest)
        if result.state == "Invalid":
            codes = [code for code in result.failure_codes if code]
            # An unknown signer is not a change; it is reported, but not as what was tampered with.
            changed = [code for code in codes if not code.endswith(".untrusted")]
            words = [FAILURE_WORDS.get(code, code) for code in changed] or [
                "it no longer validates"
            ]
            details["failures"] = codes
            return Verdict(TAMPERED, details=details, why="; ".join(dict.fromkeys(words)))
        candor = c2pa.assertion(result.manifest, "org.candor.provenance") or {}
        credential = (
            Credential.objects.select_related("post")
            .filter(uuid=candor.get("credential_id") or None)
            .first()
            if _is_uuid(candor.get("credential_id"))
            else None
        )
        if result.state == "Trusted" and credential is not None:
            return _from_credential(SIGNED_BY_THIS_INSTANCE, credential)
        if result.state == "Trusted":
            return Verdict(VALID_TRUSTED_SIGNER, details=details)
        return Verdict(VALID_UNKNOWN_SIGNER, details=details)
    return _recover(data, checked)


def _read_credentials(data: bytes) -> c2pa.ReadResult:
    try:
        return c2pa.read(data, trust_anchors_pem=signing.trust_anchors_pem())
    except Exception:  # the native reader on hostile bytes: say so, don't answer 500
        logger.exception("c2pa could not read an uploaded image")
        return c2pa.ReadResult(state="", error="Other: the reader failed", found=True)


def _says_no_manifest(error: str) -> bool:
    """c2pa errors that mean there is no manifest to read, not one this site can't check: a
    format c2pa does not handle (BMP), or a container too damaged to look inside."""
    return error.startswith("NotSupported") or "asset could not be parsed" in error


def _recover(data: bytes, checked: CheckedImage) -> Verdict:
    """No manifest: look for Candor's watermark, then a near-identical image Candor signed."""
    if checked.pixels > settings.VERIFY_DECODE_MAX_PIXELS:
        raise ImageRejected(
            Reason.TOO_MANY_PIXELS,
            TOO_LARGE_TO_SEARCH.format(
                width=checked.width,
                height=checked.height,
                limit=f"{settings.VERIFY_DECODE_MAX_PIXELS / 1e6:g}",
            ),
        )
    image = decode_srgb(open_image(data, checked, verify_limits()), max_side=MARKED_MAX_SIDE)
    found = _find_watermark(image, (checked.width, checked.height))
    if found is not None:
        credential = Credential.objects.select_related("post").filter(pk=found).first()
        if credential is not None:
            return _from_credential(RECOVERED_BY_WATERMARK, credential)
    fingerprint = phash(image)
    best = None
    for pk, other in Credential.objects.exclude(phash="").values_list("pk", "phash").iterator():
        distance = hamming(fingerprint, other)
        if distance <= SIMILARITY_BITS and (best is None or distance < best[0]):
            best = (distance, pk)
    if best is not None:
        credential = Credential.objects.select_related("post").get(pk=best[1])
        return _from_credential(
            RECOVERED_BY_SIMILARITY, credential, {"similarity_bits_apart": best[0]}
        )
    return Verdict(NO_CREDENTIALS)


def _find_watermark(image: Image.Image, size: tuple[int, int]) -> int | None:
    """The watermark id, read at the image's own size when Candor could have marked it at that
    size, then at each size Candor writes for its shape (a resized copy decodes only there)."""
    sizes = decode_sizes(size)
    if max(size) <= MARKED_MAX_SIDE:
        sizes.insert(0, image.size)
    for target in dict.fromkeys(sizes):
        candidate = (
            image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)
        )
        found = watermark.detect(candidate)
        if found is not None:
            return found
    return None


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _plain_error(error: str) -> str:
    lowered = error.lower()
    if "remote" in lowered:
        return "they are stored online and this site does not fetch them"
    if "prerelease" in lowered:
        return "they were made with a pre-release version of the standard"
    if "algorithm" in lowered:
        return "they use a signature algorithm this site does not support"
    return "they could not be parsed"
