"""The post kit: one download per destination, holding what that platform keeps and needs.

Every kit file is made from the post's signed original, which is its parentOf ingredient, and
carries its own credential, watermark and XMP, so verify finds the original from any of them:
with its manifest where a platform keeps it, by the watermark where one strips it.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from PIL import Image, ImageOps

from config.files import delete_files_on_commit, private_name
from config.refusal import Refusal
from gallery import signing
from gallery.labels import LABEL_STYLES, UNKNOWN_STYLE, burn_label
from gallery.models import Credential, KitFile, Post
from gallery.provenance.c2pa import Parent, Signer
from gallery.provenance.manifest import ImageFacts
from gallery.provenance.pipeline import Marked, mark
from gallery.renditions import KIT_SIZES
from gallery.services import (
    check_may_go_out,
    credential_finish,
    credential_start,
    file_facts,
    original_image,
    original_parent,
)
from imaging.phash import phash

KIT_QUALITY = 90
KIT_FORMAT = "JPEG"
KIT_EXT = "jpg"
ALT_TEXT_MAX = 1000  # X's limit on alt text; the others allow as much or more


@dataclass(frozen=True)
class KitFormat:
    """One file of a kit: a size platforms publish, centre-cropped to its shape. `label`: meant
    for platforms that strip metadata, so the visible label is burned in (on AI images)."""

    key: str
    title: str
    size: tuple[int, int]
    label: bool
    quality: int = KIT_QUALITY

    @property
    def shape(self) -> str:
        w, h = self.size
        g = math.gcd(w, h)
        return f"{w // g}:{h // g}"

    def filename(self, post: Post) -> str:
        w, h = self.size
        return f"candor-{str(post.pk)[:8]}-{self.key}-{w}x{h}.{KIT_EXT}"


FORMATS = (
    KitFormat("square", "Square", KIT_SIZES["square"], label=True),
    KitFormat("portrait", "Portrait", KIT_SIZES["portrait"], label=True),
    KitFormat("landscape", "Landscape", KIT_SIZES["landscape"], label=True),
    KitFormat("linkedin", "LinkedIn square", KIT_SIZES["linkedin"], label=False),
    KitFormat("vertical", "Vertical", KIT_SIZES["vertical"], label=False),
    KitFormat("wide", "Wide", KIT_SIZES["wide"], label=False),
)
FORMAT_BY_KEY = {f.key: f for f in FORMATS}

KEEPS = "Keeps Content Credentials and shows the CR mark on the image."
READS = "Reads Content Credentials at upload to label the post as AI."
STRIPS = (
    "Strips metadata: the visible label and the invisible watermark carry the disclosure, and "
    "the watermark leads verify back to the credentials."
)
READS_THEN_STRIPS = (
    "Reads Content Credentials at upload to label the post, then strips metadata: the visible "
    "label and the invisible watermark carry the disclosure from there."
)


@dataclass(frozen=True)
class Destination:
    key: str
    name: str
    credentials: str  # what the platform does with Content Credentials, in plain words
    formats: tuple[str, ...]  # FORMATS keys
    caption_max: int  # characters the platform takes in a post's text
    # What the platform counts a link as, whatever its length (X wraps every link in a 23-character
    # t.co address); 0: its own length.
    link_counts_as: int = 0
    original: bool = False  # the signed original too: the platform keeps its credentials


DESTINATIONS = (
    Destination("instagram", "Instagram", READS_THEN_STRIPS, ("square", "portrait"), 2200),
    Destination("facebook", "Facebook", STRIPS, ("square", "portrait", "landscape"), 63206),
    Destination("threads", "Threads", STRIPS, ("square", "portrait"), 500),
    Destination("x", "X", STRIPS, ("landscape", "square"), 280, link_counts_as=23),
    Destination("bluesky", "Bluesky", STRIPS, ("square", "landscape"), 300),
    Destination("reddit", "Reddit", STRIPS, ("square", "landscape"), 300),
    Destination("linkedin", "LinkedIn", KEEPS, ("linkedin",), 3000, original=True),
    Destination("tiktok", "TikTok", READS, ("vertical",), 2200),
    Destination("youtube", "YouTube", READS, ("wide",), 5000),
)

HASHTAG = "#AIgenerated"
NO_ORIGINAL = "This post has no signed original to make a kit from."


# --- captions and alt text ------------------------------------------------------------------


def disclosure(post: Post) -> str:
    """What a caption says about how the image was made: the post's own badge words for AI
    images; a camera photo its creator declared gets no AI claim."""
    badge = post.badge
    if not badge:
        return "Labelled with Candor."
    if post.declared:
        return f"{badge}, labelled with Candor."
    return f"{badge} with Candor."


def verify_url(post: Post) -> str:
    """The public verify result of the post's signed original, by a link short enough for a
    caption (X counts every character of a long one against its 280)."""
    original = Credential.objects.filter(post=post, variant="original").order_by("pk").first()
    if original is None:
        return settings.SITE_URL + reverse("verify_page")
    return settings.SITE_URL + reverse("credential_result", args=[original.uuid])


def _trim(text: str, room: int) -> str:
    text = text.strip()
    if len(text) <= room:
        return text
    if room <= 1:
        return ""
    return text[: room - 1].rstrip() + "…"


def counted_length(text: str, link: str, destination: Destination) -> int:
    """`text`'s length as the destination counts it (a link may count as fewer characters)."""
    if not destination.link_counts_as or link not in text:
        return len(text)
    return len(text) - text.count(link) * (len(link) - destination.link_counts_as)


def caption_for(post: Post, destination: Destination, verify_link: str) -> str:
    """The creator's caption, then the disclosure, the verify link and hashtags, within the
    destination's limit: only the creator's part is shortened, never the disclosure or link."""
    tail = f"{disclosure(post)} Verify: {verify_link}"
    if post.ai_made:
        tail += f" {HASHTAG}"
    counted = counted_length(tail, verify_link, destination)
    room = destination.caption_max - counted - 2  # the blank line between
    own = _trim(post.caption, room)
    return f"{own}\n\n{tail}" if own else tail


def alt_text(post: Post) -> str:
    badge = post.badge
    kind = f"{badge} image" if badge else "Image"
    # With no caption, who shared it: a declaration's own words would repeat (or, for a camera
    # photo, contradict) the kind of image this already names.
    about = post.caption.strip() or (
        f"shared by @{post.owner.handle}"
        if post.declared
        else f"made with Candor by @{post.owner.handle}"
    )
    prefix = f"{kind}: "
    return prefix + _trim(" ".join(about.split()), ALT_TEXT_MAX - len(prefix))


# --- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What one format's worker thread needs: plain values only, no database."""

    format: KitFormat
    facts: ImageFacts
    watermark_id: int
    style: str  # "" = no visible label


def _pixels(source: Image.Image, job: _Job, modified: bool) -> tuple[Image.Image, tuple, dict]:
    """The format's pixels, the C2PA actions that made them from the original, the label."""
    fmt = job.format
    w, h = fmt.size
    actions: list[dict] = []
    if source.width * h != source.height * w:
        actions.append(
            {
                "action": "c2pa.cropped",
                "parameters": {"description": f"Centre-cropped to {fmt.shape}"},
            }
        )
    image = ImageOps.fit(source, fmt.size, Image.Resampling.LANCZOS)
    if source.size != fmt.size:
        actions.append(
            {"action": "c2pa.resized", "parameters": {"description": f"Resized to {w}×{h}"}}
        )
    label: dict = {}
    if job.style:
        image, burned = burn_label(image, job.style, modified=modified)
        label = burned.record()
        actions.append(
            {
                "action": "c2pa.edited",
                "parameters": {"description": f"Added a visible label: {burned.text}"},
            }
        )
    return image, tuple(actions), label


def _mark(
    source: Image.Image, job: _Job, *, parent: Parent, signer: Signer, key: bytes, modified: bool
) -> tuple[Marked, str]:
    """One kit file, marked and signed, with its pixels' pHash. Runs in a worker thread: c2pa's
    native calls release the GIL, and nothing here touches the database."""
    image, actions, label = _pixels(source, job, modified)
    pixels_phash = phash(image)
    facts = replace(
        job.facts, phash=pixels_phash, derived_actions=actions, visible_label=label or None
    )
    marked = mark(
        image, fmt=KIT_FORMAT, facts=facts, watermark_id=job.watermark_id, watermark_key=key,
        signer=signer.derived_from(parent), quality=job.format.quality,
    )  # fmt: skip
    return marked, pixels_phash


def _workers() -> int:
    return max(1, min(len(FORMATS), os.cpu_count() or 1))


def kit_build(*, post: Post, label_style: str = "", workers: int | None = None) -> list[KitFile]:
    """Make (or remake) the post's kit: every format, signed with the post's original as its
    parent ingredient, labelled in `label_style` (the operator's LABEL_STYLE when not given)
    where a format is meant for a stripping platform. The previous kit's files go once this
    commits; on any failure nothing new is left behind. Refusal when the post may not go out."""
    check_may_go_out(post)
    label_style = label_style or settings.LABEL_STYLE
    if label_style not in LABEL_STYLES:
        raise Refusal(UNKNOWN_STYLE)
    if not post.image:
        raise Refusal(NO_ORIGINAL)
    parent = original_parent(post)
    source = original_image(parent)
    style = label_style if post.ai_made else ""  # no AI label on a declared camera photo
    signer, key = signing.signer(), signing.watermark_key()
    # Credentials first, on this thread (their ids are the watermarks; Django's connections are
    # per thread), then the slow marking and signing outside any transaction — on SQLite a
    # transaction holds the whole database's write lock — then one short one to store it all.
    # (services.signed_file_create, split in three.)
    with transaction.atomic():
        jobs, credentials = [], []
        for fmt in FORMATS:
            credential = credential_start(post=post, variant=f"kit:{fmt.key}", fmt=KIT_FORMAT)
            facts = file_facts(post, credential, title=fmt.filename(post), opened=True)
            jobs.append(_Job(fmt, facts, credential.pk, style if fmt.label else ""))
            credentials.append(credential)
    saved: list[str] = []
    try:

        def make(job: _Job) -> tuple[Marked, str]:
            return _mark(source, job, parent=parent, signer=signer, key=key, modified=post.modified)

        count = workers or _workers()
        if count > 1:
            with ThreadPoolExecutor(max_workers=count) as pool:
                made = list(pool.map(make, jobs))
        else:
            made = [make(job) for job in jobs]
        with transaction.atomic():
            # One build of a post stores at a time: a second waits here, then replaces it.
            Post.objects.select_for_update().filter(pk=post.pk).first()
            for kit_file in list(post.kit_files.all()):
                kit_file.delete()  # its stored file goes on commit (receiver below)
            kit: list[KitFile] = []
            for job, credential, (marked, pixels_phash) in zip(
                jobs, credentials, made, strict=True
            ):
                credential_finish(credential=credential, marked=marked, pixels_phash=pixels_phash)
                name = default_storage.save(
                    private_name("kit", post.owner_id, KIT_EXT), ContentFile(marked.data)
                )
                saved.append(name)
                w, h = job.format.size
                kit_file = KitFile.objects.create(
                    post=post, key=job.format.key, file=name, width=w, height=h,
                    label_style=job.style, credential=credential,
                )  # fmt: skip
                kit.append(kit_file)
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        Credential.objects.filter(pk__in=[c.pk for c in credentials]).delete()
        raise
    return kit


@receiver(post_delete, sender=KitFile)
def _kit_file_deleted(sender, instance: KitFile, **kwargs):
    if instance.file:
        delete_files_on_commit([instance.file.name])


# --- reading --------------------------------------------------------------------------------


def refusal(post: Post) -> str:
    """Why no kit is made or handed out for this post now ("" when it may go out)."""
    try:
        check_may_go_out(post)
    except Refusal as exc:
        return exc.message
    return ""


def kit_files(post: Post) -> dict[str, KitFile]:
    return {f.key: f for f in post.kit_files.all()}


def _file_url(post: Post, key: str, *, download: bool = False) -> str:
    url = reverse("post_kit_file", args=[post.pk, key, KIT_EXT])
    return url + "?download=1" if download else url


def kit_context(post: Post) -> dict:
    """What templates/gallery/_kit.html reads, under one name: `kit`."""
    files = kit_files(post)
    refused = refusal(post)
    link = verify_url(post)
    style = next((f.label_style for f in files.values() if f.label_style), "")
    destinations = []
    for destination in DESTINATIONS:
        entries = []
        for key in destination.formats:
            fmt, stored = FORMAT_BY_KEY[key], files.get(key)
            entries.append(
                {
                    "key": key,
                    "title": fmt.title,
                    "shape": fmt.shape,
                    "width": fmt.size[0],
                    "height": fmt.size[1],
                    "labelled": bool(stored and stored.label_style),
                    "url": _file_url(post, key) if stored else "",
                    "download_url": _file_url(post, key, download=True) if stored else "",
                }
            )
        caption = caption_for(post, destination, link)
        destinations.append(
            {
                "key": destination.key,
                "name": destination.name,
                "credentials": destination.credentials,
                "files": entries,
                "original_url": (
                    reverse("post_file", args=[post.pk, "original", "png"]) + "?download=1"
                    if destination.original
                    else ""
                ),
                "caption": caption,
                "caption_max": destination.caption_max,
                "caption_length": counted_length(caption, link, destination),
            }
        )
    return {
        "kit": {
            "built": bool(files) and not refused,
            "refusal": refused,
            "destinations": destinations,
            "alt_text": alt_text(post),
            "verify_url": link,
            "labels_apply": post.ai_made,
            "label_styles": LABEL_STYLES,
            "label_style": style or settings.LABEL_STYLE,
            "build_url": reverse("post_kit_build", args=[post.pk]),
            "zip_url": reverse("post_kit_zip", args=[post.pk]),
        }
    }


def kit_readme(post: Post, files: dict[str, KitFile], verify_link: str) -> str:
    lines = [
        f"Post kit for {post} ({settings.SITE_NAME})",
        "",
        "Every image here carries signed Content Credentials, IPTC XMP and an invisible "
        "watermark; the signed original is each one's parent ingredient.",
        f"Verify: {verify_link}",
        "",
    ]
    for destination in DESTINATIONS:
        names = [FORMAT_BY_KEY[k].filename(post) for k in destination.formats if k in files]
        if destination.original:
            names.insert(0, original_filename(post))
        lines += [
            f"{destination.name}: {destination.credentials}",
            "  Files: " + ", ".join(names),
            f"  Caption: captions/{destination.key}.txt",
            "",
        ]
    return "\n".join(lines)


def original_filename(post: Post) -> str:
    return f"candor-{str(post.pk)[:8]}-original.png"


def kit_zip(post: Post) -> bytes:
    """Every kit file, the signed original, a README and each destination's caption and alt
    text, as one ZIP. The images are stored as they are (JPEG and PNG don't compress further,
    and their signatures cover their bytes)."""
    files = kit_files(post)
    link = verify_url(post)
    alt = alt_text(post)
    folder = f"candor-{str(post.pk)[:8]}-kit"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        with default_storage.open(post.image.name) as handle:
            archive.writestr(f"{folder}/{original_filename(post)}", handle.read())
        for fmt in FORMATS:
            stored = files.get(fmt.key)
            if stored is None:
                continue
            with default_storage.open(stored.file.name) as handle:
                archive.writestr(f"{folder}/{fmt.filename(post)}", handle.read())
        text = zipfile.ZIP_DEFLATED
        archive.writestr(f"{folder}/README.txt", kit_readme(post, files, link), compress_type=text)
        for destination in DESTINATIONS:
            body = (
                f"{destination.name} caption (at most {destination.caption_max} characters):\n\n"
                f"{caption_for(post, destination, link)}\n\nAlt text:\n\n{alt}\n"
            )
            archive.writestr(f"{folder}/captions/{destination.key}.txt", body, compress_type=text)
    return buffer.getvalue()
