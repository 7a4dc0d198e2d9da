"""The studio's work, run by its jobs in a worker: train a model, make a generation's images."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import asdict

import torch
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.urls import reverse

from config.files import STORAGE_FAILED, private_name
from creator.engine import faces
from creator.engine.base_models import native_resolution
from creator.engine.generate import GenerationRequest, LoraMismatch, LoraRef
from creator.engine.options import (
    OTHER_PLACEHOLDER,
    STYLES,
    SUBJECT_PLACEHOLDER,
    full_prompt,
    size_for,
)
from creator.engine.train import TrainConfig, TrainingStopped, train_lora
from creator.jobs.runtime import Cancelled, JobError, Progress
from creator.likeness.models import Consent, ReferencePhoto
from creator.notices import webhooks
from creator.studio import pipelines, services
from creator.studio.models import Generation, PersonalModel
from creator.studio.services import MODEL_NOT_READY
from gallery.services import CAPTION_MAX_CHARS, post_create, post_update_caption

log = logging.getLogger(__name__)

LOSS_POINTS = 200
CONSENT_REVOKED_DURING = "Consent for this person was revoked or has ended, so this stopped."
TRAIN_OUT_OF_MEMORY = (
    "Training ran out of GPU memory at {resolution} px. Try, one at a time: "
    "TRAIN_GRADIENT_CHECKPOINTING=on, TRAIN_OPTIMIZER=adamw8bit, QUANTIZE=nf4, or a smaller "
    "TRAIN_RESOLUTION (README: Memory and speed). Then retry this run."
)
GENERATION_OUT_OF_MEMORY = (
    "Making these images ran out of GPU memory. Make fewer images at a time or a smaller size, "
    "or set QUANTIZE=nf4 (README: Memory and speed)."
)


def _thin(points: list, limit: int = LOSS_POINTS) -> list[list]:
    """At most `limit` points, evenly spread, always keeping the last (for the loss chart)."""
    if len(points) > limit:
        stride = len(points) / limit
        points = [points[int(i * stride)] for i in range(limit - 1)] + [points[-1]]
    return [list(p) for p in points]


class _Likeness:
    """Scores a sample: face distance to the consent selfie (None when no face is found)."""

    def __init__(self, anchor):
        self.anchor = anchor
        self.engine = faces.FaceEngine.get()

    def __call__(self, image) -> float | None:
        face = self.engine.analyse(image).face
        if face is None or self.anchor is None:
            return None
        return round(faces.distance(face.embedding, self.anchor), 4)


class _TrainingReport:
    """Carries the trainer's progress and samples to the job's row and to storage."""

    def __init__(self, model: PersonalModel, progress: Progress):
        self.model = model
        self.progress = progress
        self.losses: list = []
        self.samples: list[dict] = []
        self.percent_seen = 0  # the last training.progress milestone passed

    def details(self) -> dict:
        return {"model_id": self.model.pk, "loss": _thin(self.losses), "samples": self.samples}

    def on_progress(self, report) -> None:
        self.losses = list(report.losses)
        # Webhooks hear of 25, 50 and 75 % once each (reports are at most once a second, so
        # one report may pass two milestones).
        percent = 100 * report.step // report.total if report.total else 0
        for milestone in webhooks.TRAINING_MILESTONES:
            if self.percent_seen < milestone <= percent:
                webhooks.emit(
                    user=self.model.subject.owner_id,
                    event="training.progress",
                    data={
                        "model_id": self.model.pk,
                        "subject_id": self.model.subject_id,
                        "percent": milestone,
                        "step": report.step,
                        "total": report.total,
                        "url": webhooks.site_url(reverse("model_detail", args=[self.model.pk])),
                    },
                )
        self.percent_seen = max(self.percent_seen, percent)
        message = f"{report.phase} · loss {report.loss:.4f}" if report.step else report.phase
        # A cancel is noticed by the trainer's `should_stop`, its one way to stop: it keeps
        # the last checkpoint. A report that finds the run cancelled is simply not written.
        with contextlib.suppress(Cancelled):
            self.progress.update(report.step, report.total, message=message, details=self.details())

    def on_sample(self, sample) -> None:
        owner = self.model.subject.owner_id
        with open(sample.path, "rb") as handle:
            name = default_storage.save(
                f"samples/{owner}/{self.model.pk}/step-{sample.step}.png", File(handle)
            )
        self.samples.append({"step": sample.step, "name": name, "likeness": sample.likeness})


def model_train(*, model: PersonalModel, progress: Progress) -> None:
    """Train a model's LoRA in this process, reporting to `progress`."""
    if model.consent.status != Consent.Status.GRANTED or model.consent.ended:
        raise JobError(CONSENT_REVOKED_DURING)
    photos = list(
        model.subject.photos.filter(status=ReferencePhoto.Status.OK).exclude(crop="").order_by("pk")
    )
    crops = [pipelines.local_path(p.crop.name) for p in photos]
    progress.phase("Loading the base model")
    pipe = pipelines.load_base_pipeline()
    config = training_config(model, native_resolution(pipe))
    steps = config.steps
    report = _TrainingReport(model, progress)
    # Checkpoints live in var/ across retries: a run retried after a crash resumes from them.
    out_dir = settings.VAR_DIR / "training" / f"{model.pk}-{model.task_id}"
    try:
        result = train_lora(
            config,
            pipe=pipe,
            base_id=model.base_model,
            images=crops,
            out_dir=out_dir,
            metadata={
                "candor.consent_id": str(model.consent_id),
                "candor.model_id": str(model.pk),
            },
            should_stop=progress.stop_requested,
            on_progress=report.on_progress,
            on_sample=report.on_sample,
            likeness=_Likeness(model.consent.selfie_embedding),
            face_boxes=[face_box_in_crop(p) for p in photos],
        )
    except TrainingStopped:
        raise Cancelled() from None
    except torch.OutOfMemoryError:
        # The job fails with what to try; the worker lives on with its memory given back.
        del pipe
        pipelines.free_memory()
        raise JobError(TRAIN_OUT_OF_MEMORY.format(resolution=config.resolution)) from None
    try:
        with open(result.lora_path, "rb") as handle:
            model.lora = default_storage.save(
                private_name("models", model.subject.owner_id, "safetensors"), File(handle)
            )
    except OSError as exc:  # full or read-only storage; the checkpoint stays for a retry
        log.warning("Could not store a trained model: %s", exc)
        raise JobError(STORAGE_FAILED) from None
    model.lora_sha256 = result.sha256
    model.best_step = result.best_step
    model.seconds_per_step = result.seconds_per_step
    asked = (model.config or {}).get("requested", {})
    model.config = {**asdict(config), "resumed_from": result.resumed_from, "requested": asked}
    model.save()
    report.losses = list(result.losses)
    progress.update(steps, steps, message="Trained", details=report.details(), force=True)
    shutil.rmtree(out_dir, ignore_errors=True)


def training_config(model: PersonalModel, native: int) -> TrainConfig:
    """The run's options: the operator's settings, and the base family's defaults for the rest."""
    defaults = services.base_defaults(model.base_model)
    asked = (model.config or {}).get("requested", {})  # what an API client asked for
    steps = asked.get("steps") or settings.TRAIN_STEPS or defaults.train_steps
    checkpointing = {"on": True, "off": False}.get(settings.TRAIN_GRADIENT_CHECKPOINTING)
    return TrainConfig(
        resolution=settings.TRAIN_RESOLUTION or native,
        steps=steps,
        rank=asked.get("rank") or settings.TRAIN_RANK or defaults.rank,
        learning_rate=asked.get("learning_rate")
        or settings.TRAIN_LEARNING_RATE
        or defaults.learning_rate,
        mixed_precision=settings.MIXED_PRECISION,
        checkpoint_every=settings.TRAIN_CHECKPOINT_EVERY or max(1, steps // 5),
        seed=model.pk,
        face_weight=asked.get("face_weight", settings.TRAIN_FACE_WEIGHT),
        optimizer=settings.TRAIN_OPTIMIZER,
        gradient_checkpointing=checkpointing,
        compile=settings.TRAIN_COMPILE,
    )


def face_box_in_crop(photo: ReferencePhoto) -> tuple[float, float, float, float] | None:
    """Where the photo checks found the face, as fractions of the square training crop."""
    if not photo.face_box:
        return None
    left, top, right, bottom = photo.face_box
    x0, y0, x1, _ = faces.face_crop_box((photo.width, photo.height), tuple(photo.face_box))
    side = float(x1 - x0) or 1.0
    return ((left - x0) / side, (top - y0) / side, (right - x0) / side, (bottom - y0) / side)


def generation_run(*, generation: Generation, progress: Progress) -> list:
    """Make a generation's images with the warm pipeline and file them as draft posts."""
    model = generation.model
    if model.consent.status != Consent.Status.GRANTED or model.consent.ended:
        raise JobError(CONSENT_REVOKED_DURING)
    if not model.lora:
        raise JobError(MODEL_NOT_READY)
    cache = pipelines.pipeline_cache()
    progress.phase("Loading the model")
    width, height = size_for(generation.size, native_resolution(cache.pipeline()))
    prompt, style_negative = full_prompt(generation.prompt, generation.style, with_subject=True)
    negative = ", ".join(p for p in (generation.negative_prompt, style_negative) if p)
    if not cache.family.negative_prompt:
        negative = ""  # FLUX.1 takes none: the post must not claim one was used
    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=negative,
        seed=generation.seed,
        steps=generation.steps,
        guidance=generation.guidance,
        width=width,
        height=height,
        count=generation.count,
        lora=LoraRef(name=model.lora_sha256, path=str(pipelines.local_path(model.lora.name))),
    )
    try:
        images = cache.generate(
            request,
            on_step=lambda step, total: progress.update(step, total, message="Generating"),
        )
    except LoraMismatch as exc:
        raise JobError(str(exc)) from None
    except torch.OutOfMemoryError:
        pipelines.free_memory()
        raise JobError(GENERATION_OUT_OF_MEMORY) from None
    marking_started = time.monotonic()
    try:
        posts = _file_posts(generation, model, images, prompt, negative, (width, height))
    except OSError as exc:  # full or read-only storage: say so plainly
        log.warning("Could not store generated images: %s", exc)
        raise JobError(STORAGE_FAILED) from None
    marking_seconds = time.monotonic() - marking_started
    generation.post_ids = [str(p.pk) for p in posts]
    generation.save(update_fields=["post_ids"])
    # The worker's cache counters tell operators (and bench/generate.py) the base stayed warm.
    progress.update(
        generation.steps,
        generation.steps,
        message=f"Made {len(posts)} image(s)",
        details={
            "base_loads": cache.base_loads,
            "adapter_loads": cache.adapter_loads,
            "marking_seconds": round(marking_seconds, 4),  # signing the files (bench/generate.py)
            # What the finished job's card links to: each image, and all of them on the model page.
            "posts": [reverse("post_detail", args=[p.pk]) for p in posts],
            "posts_link": reverse("model_detail", args=[model.pk]) + f"#generation-{generation.pk}",
        },
        force=True,
    )
    return posts


def default_caption(prompt: str, name: str) -> str:
    """A new post's caption: the creator's prompt, the person named where it said @me/@them."""
    for marker in (SUBJECT_PLACEHOLDER, OTHER_PLACEHOLDER):
        prompt = prompt.replace(marker, name)
    return prompt.strip()[:CAPTION_MAX_CHARS]


def _file_posts(generation, model, images, prompt: str, negative: str, size) -> list:
    """Each image becomes a signed draft post (gallery.post_create); all of them or none."""
    width, height = size
    subject = model.subject
    # The gallery knows nothing of subjects: whose likeness it is travels as a plain value.
    likeness_of = subject.name or f"@{generation.owner.handle}"
    caption = default_caption(generation.prompt, likeness_of)
    posts = []
    try:
        for index, image in enumerate(images):
            posts.append(
                post_create(
                    owner=generation.owner,
                    image=image,
                    prompt=generation.prompt,
                    seed=generation.seed + index,
                    generation_settings={
                        "prompt_used": prompt,  # as the model saw it: kept, never shown
                        "negative_prompt": negative,  # the style's words included
                        "own_negative_prompt": generation.negative_prompt,
                        "style": generation.style,
                        "style_label": STYLES[generation.style][0],
                        "size": f"{width}×{height}",
                        "steps": generation.steps,
                        "guidance": generation.guidance,
                        "likeness_of": likeness_of,
                        "likeness_kind": "self" if subject.is_self else "other",
                    },
                    model_name=model.public_name,
                    base_model=model.base_model_label,
                    lora_sha256=model.lora_sha256,
                    consent_id=model.consent_id,
                    consent_scope=model.consent.scope_summary,
                    prompt_in_credentials=generation.include_prompt,
                )
            )
            if caption:
                post_update_caption(post=posts[-1], caption=caption)
    except BaseException:
        for post in posts:
            post.delete()  # its files go with it
        raise
    return posts
