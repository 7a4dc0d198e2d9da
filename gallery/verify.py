"""Verify any image: read its Content Credentials, or find Candor's again after stripping.

Answers with a stable machine-readable verdict and a plain-language explanation.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from gallery import fingerprints, signing
from gallery.models import Credential, KitFile, Post
from gallery.provenance import c2pa, watermark
from gallery.provenance.xmp import in_a_sentence
from gallery.renditions import (
    DISPLAY_MAX,
    FIELD_FOR_VARIANT,
    KIT_MAX_SIDE,
    PREVIEW_SIZE,
    decode_sizes,
)
from imaging.decode import decode_srgb
from imaging.limits import (
    CheckedImage,
    ImageLimits,
    ImageRejected,
    Reason,
    check_image,
    open_image,
)
from imaging.phash import phash

logger = logging.getLogger(__name__)

SIGNED_BY_THIS_INSTANCE = "signed_by_this_instance"
VALID_TRUSTED_SIGNER = "valid_trusted_signer"
VALID_UNKNOWN_SIGNER = "valid_unknown_signer"
TAMPERED = "tampered"
UNREADABLE = "unreadable"
RECOVERED_BY_WATERMARK = "recovered_by_watermark"
RECOVERED_BY_SIMILARITY = "recovered_by_similarity"
NO_CREDENTIALS = "no_credentials"
EXPIRED_SIGNER = "expired_signer"
MODIFIED_COPY = "modified_copy"
RELABELLED = "relabelled"

HEADLINES = {
    SIGNED_BY_THIS_INSTANCE: "AI-generated, signed by this Candor instance",
    VALID_TRUSTED_SIGNER: "Valid Content Credentials from a trusted signer",
    VALID_UNKNOWN_SIGNER: "Valid Content Credentials from a signer this site does not know",
    TAMPERED: "Tampered: the image or its credentials changed after signing",
    UNREADABLE: "Credentials present but unreadable here",
    RECOVERED_BY_WATERMARK: "Credentials were stripped from this image; Candor recovered them",
    RECOVERED_BY_SIMILARITY: "Credentials were stripped from this image; Candor recovered them",
    NO_CREDENTIALS: "No Content Credentials",
    EXPIRED_SIGNER: "Signed with a certificate that has since expired",
    MODIFIED_COPY: "A modified copy of an AI image Candor made",
    RELABELLED: "Relabelled: this is a copy of an AI image Candor made",
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
    EXPIRED_SIGNER: (
        "Nothing in the image or its credentials changed, but the certificate that signed them "
        "has expired and no trusted timestamp shows they were signed while it was valid."
    ),
    MODIFIED_COPY: (
        "This file carries Candor's credentials, but it was changed after signing ({what}). "
        "These are the credentials of the original it was copied from."
    ),
    RELABELLED: (
        "This file carries other credentials ({what}), but Candor's watermark or fingerprint shows "
        "it is a copy of an image Candor made with AI; these are the original's credentials."
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
# An image its creator made elsewhere and labelled with Candor: Candor vouches for the declaration
# having been made, not for how the image was made.
DECLARED_HEADLINES = {
    SIGNED_BY_THIS_INSTANCE: "Labelled by its creator, signed by this Candor instance",
    MODIFIED_COPY: "A modified copy of an image labelled with Candor",
    RELABELLED: "Relabelled: this is a copy of an image labelled with Candor",
}
DECLARED = (
    "{by} declared it {words}{tool}; Candor recorded and signed that declaration, but did not "
    "make the image. {upload}"
)
UPLOAD_CREDENTIALS = {
    "Trusted": "The file they uploaded carried valid credentials from a trusted signer ({signer}), "
    "kept in the chain.",
    "Valid": "The file they uploaded carried intact credentials from a signer this site does not "
    "know ({signer}), kept in the chain.",
    "Invalid": "The file they uploaded carried credentials that did not validate ({failures}): "
    "they are kept as they were found, and nothing about them is vouched for.",
    "Unreadable": "The file they uploaded carried credentials this site couldn't read ({error}).",
}
NOT_KEPT = (
    "The file they uploaded carried credentials ({state}) that were not kept in the chain: {why}."
)
SIMILARITY_BITS = 8

# The pHash works on 32×32 pixels: a smaller image can't be matched to anything.
MIN_SIDE = 32
# Candor marks files at most this long (the 1200-px preview, 1024 displays, the kit's 1350-px
# portrait), so a larger
# image is only worth decoding down to it, and is tried only at the sizes Candor writes.
MARKED_MAX_SIDE = max(PREVIEW_SIZE[0], DISPLAY_MAX, KIT_MAX_SIDE)
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
    withdrawn: bool = False  # this one image, by the person shown
    details: dict = field(default_factory=dict)
    credential: Credential | None = None
    post_url: str = ""
    why: str = ""

    @property
    def declared(self) -> dict:
        return self.details.get("declared") or {}

    @property
    def headline(self) -> str:
        if self.declared and self.verdict in DECLARED_HEADLINES:
            return DECLARED_HEADLINES[self.verdict]
        return HEADLINES[self.verdict]

    @property
    def explanation(self) -> str:
        text = EXPLANATIONS[self.verdict]
        if self.declared and self.verdict in (
            SIGNED_BY_THIS_INSTANCE, RECOVERED_BY_WATERMARK, RECOVERED_BY_SIMILARITY,
            MODIFIED_COPY, RELABELLED,
        ):  # fmt: skip
            text = text.replace("made by AI with Candor", "labelled with Candor")
            text = text.replace("one Candor made and signed", "one Candor labelled and signed")
            text = text.replace("an image Candor made with AI", "an image labelled with Candor")
            text = text.format(what=self.why or "unknown", why=self.why or "unsupported")
            return f"{text} {self.declaration}"
        return text.format(what=self.why or "unknown", why=self.why or "unsupported")

    @property
    def declaration(self) -> str:
        """Who declared what, for an image made elsewhere ("" for one Candor made)."""
        declared = self.declared
        if not declared:
            return ""
        upload = self.details.get("upload_credentials") or {}
        said = UPLOAD_CREDENTIALS.get(upload.get("state", ""), "")
        if upload.get("not_kept"):
            said = NOT_KEPT.format(state=upload["state"].lower(), why=upload["not_kept"])
        failures = (
            ", ".join(FAILURE_WORDS.get(code, code) for code in upload.get("failures", []))
            or "unknown reasons"
        )
        return DECLARED.format(
            by=declared.get("by", "its creator"),
            words=f"“{in_a_sentence(declared.get('words', ''))}”",
            tool=f", made with {declared['tool']}" if declared.get("tool") else "",
            upload=said.format(
                signer=upload.get("signer") or "unnamed",
                failures=failures,
                error=upload.get("error", ""),
            ),
        ).strip()

    def as_json(self) -> dict:
        return {
            "verdict": self.verdict,
            "headline": self.headline,
            "explanation": self.explanation,
            "declared": self.declared,
            "consent_revoked": self.consent_revoked,
            "withdrawn": self.withdrawn,
            "post_url": self.post_url,
            "details": self.details,
        }


def manifest_details(manifest: dict | None) -> dict:
    if not manifest:
        return {}
    signature = manifest.get("signature_info") or {}
    actions = (c2pa.assertion(manifest, "c2pa.actions") or {}).get("actions", [])
    first = actions[0] if actions else {}
    agent = first.get("softwareAgent")
    # cawg.training-mining since C2PA 2.0; c2pa.training-mining in credentials made before.
    mining = (
        c2pa.assertion(manifest, "cawg.training-mining")
        or c2pa.assertion(manifest, "c2pa.training-mining")
        or {}
    ).get("entries", {})
    work = c2pa.assertion(manifest, "stds.schema-org.CreativeWork") or {}
    authors = [a.get("name", "") for a in work.get("author", []) if isinstance(a, dict)]
    if not authors:  # C2PA 2.x credentials may state the creator only in CAWG metadata
        creators = (c2pa.assertion(manifest, "cawg.metadata") or {}).get("dc:creator", [])
        authors = [a for a in creators if isinstance(a, str)]
    generator = manifest.get("claim_generator_info") or [{}]
    candor = c2pa.assertion(manifest, "org.candor.provenance") or {}
    scope = candor.get("consent_scope")
    return {
        # An image made elsewhere: who declared what, and how its own credentials validated.
        "declared": candor.get("declared") or {},
        "upload_credentials": candor.get("upload_credentials") or {},
        "visible_label": candor.get("visible_label") or {},
        "consent_scope": scope if isinstance(scope, dict) else {},
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
    details = manifest_details(manifest)
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
        withdrawn=credential.withdrawn_at is not None,
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
    with slot():
        return _verdict(data, checked)


@contextlib.contextmanager
def slot():
    """One of this process's VERIFY_CONCURRENCY verification slots, or VerifierBusy at once."""
    if not _slots.acquire(blocking=False):
        raise VerifierBusy(BUSY)
    try:
        yield
    finally:
        _slots.release()


def _verdict(data: bytes, checked: CheckedImage) -> Verdict:
    result = read_credentials(data)
    if result.error and not _says_no_manifest(result.error):
        return _relabelled(data, checked, claims="credentials this site can't read") or Verdict(
            UNREADABLE, why=plain_error(result.error)
        )
    if not (result.found and result.state):
        return _recover(data, checked)
    details = manifest_details(result.manifest)
    credential = candor_credential(result.manifest)
    if result.state == "Invalid":
        codes = [code for code in result.failure_codes if code]
        details["failures"] = codes
        # An unknown signer is not a change; it is reported, but not as what was tampered with.
        changed = [code for code in codes if not code.endswith(".untrusted")]
        if changed and set(changed) <= {"signingCredential.expired"}:
            if credential is not None:
                return _from_credential(EXPIRED_SIGNER, credential, {"failures": codes})
            return Verdict(EXPIRED_SIGNER, details=details)
        if credential is not None:
            return _modified_copy(data, checked, credential, codes)
        words = [FAILURE_WORDS.get(code, code) for code in changed] or ["it no longer validates"]
        why = "; ".join(dict.fromkeys(words))
        return _relabelled(data, checked, claims=f"broken: {why}") or Verdict(
            TAMPERED, details=details, why=why
        )
    if result.state == "Trusted" and credential is not None:
        return _from_credential(SIGNED_BY_THIS_INSTANCE, credential)
    # Someone else's manifest: Candor still looks for its own watermark and fingerprint.
    claims = ", ".join(
        v
        for v in (details.get("signer"), details.get("digital_source_type", "").rsplit("/", 1)[-1])
        if v
    )
    relabelled = _relabelled(data, checked, claims=claims or "another signer's")
    if relabelled is not None:
        return relabelled
    if result.state == "Trusted":
        return Verdict(VALID_TRUSTED_SIGNER, details=details)
    return Verdict(VALID_UNKNOWN_SIGNER, details=details)


def candor_credential(manifest: dict | None) -> Credential | None:
    """This instance's credential a manifest names, if it names one this instance has."""
    candor = c2pa.assertion(manifest, "org.candor.provenance") or {}
    if not _is_uuid(candor.get("credential_id")):
        return None
    return Credential.objects.select_related("post").filter(uuid=candor["credential_id"]).first()


def recognise(data: bytes, checked: CheckedImage) -> Credential | None:
    """This instance's credential for an image with no readable Candor manifest, by its
    watermark or fingerprint (None too when it is too large to search)."""
    try:
        return _recover(data, checked).credential
    except ImageRejected:
        return None


def _relabelled(data: bytes, checked: CheckedImage, *, claims: str) -> Verdict | None:
    """A file whose own credentials don't say so, but that Candor recognises as its image."""
    try:
        found = _recover(data, checked)
    except ImageRejected:  # too large to search: what the manifest says stands
        return None
    if found.credential is None:
        return None
    found.details["claims"] = claims
    return Verdict(
        RELABELLED,
        consent_revoked=found.consent_revoked,
        withdrawn=found.withdrawn,
        details=found.details,
        credential=found.credential,
        post_url=found.post_url,
        why=claims,
    )


def _modified_copy(data: bytes, checked: CheckedImage, credential: Credential, codes) -> Verdict:
    """Candor's manifest is present but the file changed: say whether only its metadata or also
    its pixels did, by comparing them with the original file this credential signed."""
    what = "its pixels changed"
    try:
        image = decode_srgb(
            open_image(data, checked, verify_limits()), max_side=max(checked.width, checked.height)
        )
        if _same_pixels(image, credential):
            what = "only its metadata changed; the pixels are the original's"
    except (ImageRejected, OSError, ValueError):
        what = "it could not be compared with the original"
    verdict = _from_credential(MODIFIED_COPY, credential, {"failures": codes, "what_changed": what})
    verdict.why = what
    return verdict


def _same_pixels(image: Image.Image, credential: Credential) -> bool:
    post = credential.post
    field = FIELD_FOR_VARIANT.get(credential.variant)
    stored = getattr(post, field, None) if post is not None and field else None
    if not stored and post is not None and credential.variant.startswith("kit:"):
        kit_file = KitFile.objects.filter(credential=credential).first()
        stored = kit_file.file if kit_file else None
    if not stored:
        return False
    with default_storage.open(stored.name) as handle:
        original = Image.open(handle)
        original.load()
    original = original.convert("RGB")
    return original.size == image.size and original.tobytes() == image.convert("RGB").tobytes()


def read_credentials(data: bytes, mime: str | None = None) -> c2pa.ReadResult:
    """An uploaded file's credentials against this instance's trust anchors; a reader failure
    becomes an unreadable result, never an exception."""
    try:
        return c2pa.read(data, mime, trust_anchors_pem=signing.trust_anchors_pem())
    except Exception:  # the native reader on hostile bytes: say so, don't answer 500
        logger.exception("c2pa could not read an uploaded image")
        return c2pa.ReadResult(state="", error="Other: the reader failed", found=True)


def _says_no_manifest(error: str) -> bool:
    """c2pa errors that mean there is no manifest to read, not one this site can't check: a
    format c2pa does not handle (BMP), or a container too damaged to look inside."""
    return error.startswith("NotSupported") or "asset could not be parsed" in error


def decode_for_search(data: bytes, checked: CheckedImage) -> Image.Image:
    """The image decoded as far as the watermark and fingerprint searches need; ImageRejected
    when it declares more pixels than VERIFY_DECODE_MAX_PIXELS."""
    if checked.pixels > settings.VERIFY_DECODE_MAX_PIXELS:
        raise ImageRejected(
            Reason.TOO_MANY_PIXELS,
            TOO_LARGE_TO_SEARCH.format(
                width=checked.width,
                height=checked.height,
                limit=f"{settings.VERIFY_DECODE_MAX_PIXELS / 1e6:g}",
            ),
        )
    return decode_srgb(open_image(data, checked, verify_limits()), max_side=MARKED_MAX_SIDE)


def watermark_credential(image: Image.Image, size: tuple[int, int]) -> Credential | None:
    """The credential whose keyed watermark the image carries, only when the second factor
    agrees too: the mark must belong to a picture that looks like this one."""
    found = _find_watermark(image, size)
    if found is None:
        return None
    credential = Credential.objects.select_related("post").filter(pk=found.watermark_id).first()
    if credential is not None and watermark.looks_like(image, found, credential.phash):
        return credential
    return None


def _recover(data: bytes, checked: CheckedImage) -> Verdict:
    """No manifest: look for Candor's watermark, then a near-identical image Candor signed."""
    image = decode_for_search(data, checked)
    credential = watermark_credential(image, (checked.width, checked.height))
    if credential is not None:
        return _from_credential(RECOVERED_BY_WATERMARK, credential)
    # By index (gallery/fingerprints.py): every stored hash within SIMILARITY_BITS is found.
    best = fingerprints.nearest(phash(image), max_bits=SIMILARITY_BITS)
    if best:
        distance, pk = best[0]
        credential = Credential.objects.select_related("post").get(pk=pk)
        return _from_credential(
            RECOVERED_BY_SIMILARITY, credential, {"similarity_bits_apart": distance}
        )
    return Verdict(NO_CREDENTIALS)


def _find_watermark(image: Image.Image, size: tuple[int, int]) -> watermark.Found | None:
    """The watermark, read at the image's own size when Candor could have marked it at that
    size, then at each size Candor writes for its shape (a resized copy decodes only there)."""
    key = signing.watermark_key()
    as_is = max(size) <= MARKED_MAX_SIDE
    return watermark.find(image, decode_sizes(size), key=key, as_is=as_is)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def plain_error(error: str) -> str:
    lowered = error.lower()
    if "remote" in lowered:
        return "they are stored online and this site does not fetch them"
    if "prerelease" in lowered:
        return "they were made with a pre-release version of the standard"
    if "algorithm" in lowered:
        return "they use a signature algorithm this site does not support"
    return "they could not be parsed"
