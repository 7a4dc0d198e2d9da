"""Verify any image: read its Content Credentials, or find Candor's again after stripping.

Answers with a stable machine-readable verdict and a plain-language explanation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from gallery import signing
from gallery.models import Credential, Post
from gallery.provenance import c2pa, watermark
from gallery.renditions import decode_sizes
from imaging.phash import hamming, phash
from imaging.sniff import ImageRejected, check_image_bytes

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


def verify_bytes(data: bytes) -> Verdict:
    """The verdict for an uploaded image. Raises ImageRejected for bad input (nothing stored)."""
    kind = check_image_bytes(
        data, max_bytes=settings.PHOTO_MAX_BYTES, max_pixels=settings.PHOTO_MAX_PIXELS
    )
    result = c2pa.read(data, trust_anchors_pem=signing.trust_anchors_pem())
    if result.error:
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
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        image = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageRejected(f"This {kind.upper()} file could not be decoded.") from None
    found = watermark.detect_rescaled(image, decode_sizes(image.size))
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


def _is_uuid(value) -> bool:
    import uuid

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
