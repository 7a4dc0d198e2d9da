"""Label an image made elsewhere: the creator uploads it and declares what it is; Candor keeps
its Content Credentials as the parent ingredient when it has any, checks the declaration against
what the file already says, and makes it a post like any other (XMP, watermark, signed
manifest, credential store). A state change, so a service; split from services.py by feature.
"""

from __future__ import annotations

import logging

from django.conf import settings
from PIL import Image, ImageOps

from config.refusal import Refusal
from config.uploads import photo_limits
from gallery.models import Post
from gallery.provenance import c2pa
from gallery.provenance.c2pa import Parent
from gallery.provenance.embedded import (
    EmbeddedClaim,
    ai_claim,
    c2pa_source_types,
    c2pa_store_bytes,
    embedded_claims,
    short_source_type,
)
from gallery.provenance.xmp import AI_MADE, DECLARATIONS, IPTC_SOURCE_TYPES, in_a_sentence
from gallery.services import CAPTION_MAX_CHARS, CAPTION_TOO_LONG, post_store
from gallery.verify import (
    candor_credential,
    manifest_details,
    plain_error,
    read_credentials,
    recognise,
)
from imaging.decode import load, to_srgb
from imaging.limits import ImageLimits, ImageRejected, check_image, open_image

logger = logging.getLogger(__name__)

TOOL_MAX_CHARS = 80
# An upload's Content Credentials are kept whole in every file made from it (each size, each
# kit file): real ones take kilobytes, so a store past this is recorded, not carried along.
KEEP_STORE_MAX_BYTES = 1_000_000
NO_FILE = "Choose the image to label."
CHOOSE_DECLARATION = (
    "Say what this image is: "
    + "; ".join(in_a_sentence(words) for words, _ in DECLARATIONS.values())
    + "."
)
TOOL_TOO_LONG = f"The tool's name is too long: at most {TOOL_MAX_CHARS} characters."
RELABEL_REFUSED = (
    "This file is already labelled “{said}” in its {where}, so it can't be labelled as "
    "{declared}. Choose “{fits}” to label it."
)
RELABEL_AS_PHOTO_REFUSED = (
    "This file is already labelled as made by AI (“{said}”) in its {where}, so it can't be "
    "labelled as {declared}."
)
# Where a file says what it is, in words (gallery/provenance/embedded.py names the places).
WHERE = {"XMP": "IPTC metadata", "C2PA": "Content Credentials"}
NOT_KEPT = "they take {mb} MB, more than this site carries into every copy"
YOURS_ALREADY = (
    "This is a copy of one of your posts here, and it keeps that post's credentials and history. "
    "To change it, open that post and use Edit."
)
SOMEONE_ELSES = (
    "This is a copy of an image @{handle} made or labelled with {site}: it already carries its "
    "credentials, so it can't be labelled again here."
)
DAMAGED = "This image could not be read: the file is damaged or incomplete. Nothing was saved."
MIME_FOR_KIND = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heif": "image/heic",
}
SOURCE_TYPE_WORDS = {url: in_a_sentence(words) for words, url in DECLARATIONS.values()}


def _words(source_type: str) -> str:
    full = source_type if "/" in source_type else IPTC_SOURCE_TYPES + source_type
    return SOURCE_TYPE_WORDS.get(full, short_source_type(source_type))


def _check_declaration(data: bytes, result: c2pa.ReadResult, declared_type: str) -> None:
    """A file that already says AI made it keeps saying so: a different declaration is refused.
    Its whole C2PA history counts, not only the last step (an AI image resized and re-signed by
    an editor says `c2pa.resized` last, and AI in its ingredient)."""
    claims = embedded_claims(data, result.manifest)
    for manifest in result.manifests.values():
        claims += [
            EmbeddedClaim(name, "Content Credentials history")
            for name in c2pa_source_types(manifest)
        ]
    claim = ai_claim(claims)
    if claim is None:
        return
    embedded = IPTC_SOURCE_TYPES + claim.source_type
    if embedded == declared_type:
        return
    declared = _words(declared_type)
    if declared_type not in AI_MADE:
        raise Refusal(
            RELABEL_AS_PHOTO_REFUSED.format(
                where=WHERE.get(claim.where, claim.where),
                said=_words(claim.source_type),
                declared=declared,
            )
        )
    fits = next((words for words, url in DECLARATIONS.values() if url == embedded), "")
    if fits:  # a different AI type than the file states: say which one fits
        raise Refusal(
            RELABEL_REFUSED.format(
                where=WHERE.get(claim.where, claim.where),
                said=_words(claim.source_type),
                declared=declared,
                fits=fits,
            )
        )
    # The file says AI in a way none of the declarations states exactly: any AI one will do.


def _check_not_ours(data: bytes, checked, result: c2pa.ReadResult, owner) -> None:
    """An image this site already signed keeps its own post, consent and history: labelling a
    copy again would make a post without the consent it was made under (or that the person
    shown took down). Found by a Candor credential anywhere in its C2PA history, else by the
    watermark or the fingerprint, as verify finds it."""
    credential = None
    for manifest in result.manifests.values():
        credential = candor_credential(manifest)
        if credential is not None:
            break
    if credential is None:
        credential = recognise(data, checked)
    if credential is None:
        return
    post = credential.post
    if post is not None and post.owner_id == owner.pk:
        raise Refusal(YOURS_ALREADY)
    handle = credential.author_handle or "another creator"
    raise Refusal(SOMEONE_ELSES.format(handle=handle, site=settings.SITE_NAME))


def _upload_credentials(result: c2pa.ReadResult) -> dict:
    """How the upload's own credentials validated, recorded as found: never better than that."""
    if not result.found:
        return {}
    record = {"state": result.state or "Unreadable"}
    if result.error:
        record["error"] = plain_error(result.error)
        return record
    details = manifest_details(result.manifest)
    ingredients = [f.get("code", "") for f in result.ingredient_failures]
    record.update(
        failures=list(dict.fromkeys(code for code in result.failure_codes + ingredients if code)),
        signer=details.get("signer", ""),
        claim_generator=details.get("claim_generator", ""),
        source_type=details.get("digital_source_type", ""),
        title=details.get("title", ""),
    )
    return record


def _decode(data: bytes, limits: ImageLimits) -> Image.Image:
    """Upright sRGB pixels, at most PHOTO_STORE_MAX_SIDE long; EXIF and GPS are not kept."""
    checked = check_image(data, limits)
    longest = settings.PHOTO_STORE_MAX_SIDE
    try:
        image = load(open_image(data, checked, limits), at_least=longest)
        image = to_srgb(ImageOps.exif_transpose(image))
    except ImageRejected:
        raise
    except Exception:
        raise Refusal(DAMAGED) from None
    if max(image.size) > longest:
        image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return image


def _resized(before: tuple[int, int], image: Image.Image) -> tuple[dict, ...]:
    """The c2pa.resized action when the kept image is smaller than the upload (either way up)."""
    if sorted(before) == sorted(image.size):
        return ()
    words = (
        f"Resized from {max(before)}×{min(before)} pixels to {image.width}×{image.height} "
        "(the largest size this site keeps)"
    )
    if image.width < image.height:
        words = words.replace(f"{max(before)}×{min(before)}", f"{min(before)}×{max(before)}")
    return ({"action": "c2pa.resized", "parameters": {"description": words}},)


def post_label_upload(
    *, owner, data: bytes, filename: str, declaration: str, tool: str = "", caption: str = ""
) -> Post:
    """A post for an image made elsewhere, as its creator declared it. Refusal (nothing stored)
    for a bad file, a declaration the file contradicts, or a field out of range."""
    if declaration not in DECLARATIONS:
        raise Refusal(CHOOSE_DECLARATION)
    words, source_type = DECLARATIONS[declaration]
    tool = " ".join(tool.split())
    if len(tool) > TOOL_MAX_CHARS:
        raise Refusal(TOOL_TOO_LONG)
    caption = caption.strip()
    if len(caption) > CAPTION_MAX_CHARS:
        raise Refusal(CAPTION_TOO_LONG)
    limits = photo_limits()
    try:
        checked = check_image(data, limits)
    except ImageRejected as exc:
        raise Refusal(exc.message) from None
    kind = checked.kind
    result = read_credentials(data, MIME_FOR_KIND[kind])
    _check_not_ours(data, checked, result, owner)
    _check_declaration(data, result, source_type)
    try:
        image = _decode(data, limits)
    except ImageRejected as exc:
        raise Refusal(exc.message) from None
    actions = _resized((checked.width, checked.height), image)
    credentials = _upload_credentials(result)
    # Readable credentials are kept whole as the parent ingredient, with the validation c2pa
    # records for them (a broken chain stays marked broken); unreadable ones are only recorded.
    keeps = result.found and not result.error
    store = c2pa_store_bytes(data)
    if keeps and store > KEEP_STORE_MAX_BYTES:
        keeps = False
        credentials = {**credentials, "not_kept": NOT_KEPT.format(mb=f"{store / 1e6:.1f}")}
    title = (filename or f"upload.{kind}").rsplit("/", 1)[-1][:120]
    parent = Parent(data, MIME_FOR_KIND[kind], title) if keeps else None
    post = Post(
        owner=owner, origin=Post.Origin.LABELLED, caption=caption, prompt="", seed=0,
        model_name=tool, base_model="", source_type=source_type,
        declared={"by": f"@{owner.handle}", "declaration": declaration, "words": words,
                  "tool": tool},
        upload_credentials=credentials,
    )  # fmt: skip
    return post_store(post, image, parent=parent, actions=actions)
