"""Services for personal models: start a training run, start a generation."""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.db import transaction

from config.refusal import Refusal
from creator import services, subjects
from creator.models import Consent, Generation, PersonalModel, Subject, User

NOT_READY = "This subject can't be trained yet: {reasons}"
MODEL_NOT_READY = "This model isn't trained yet, so it can't make images."
CONSENT_GONE = (
    "Consent for this person was revoked, so this model can no longer be used. "
    "Its images already made stay labelled as such."
)
EMPTY_PROMPT = "Describe the image you want."


class Refused(Refusal):
    """A training or generation request that can't be queued, and why."""


def training_start(*, subject: Subject) -> PersonalModel:
    """Queue a training run for a subject that is ready (enough good photos and consent)."""
    readiness = subjects.subject_readiness(subject)
    if not readiness.ready:
        raise Refused(NOT_READY.format(reasons=" ".join(readiness.reasons)))
    consent = subject.active_consent()
    with transaction.atomic():
        number = PersonalModel.objects.filter(subject=subject).count() + 1
        model = PersonalModel.objects.create(
            subject=subject,
            consent=consent,
            name=f"{subject.name} · model {number}",
            base_model=settings.CANDOR_BASE_MODEL,
        )
        model.task = services.task_start(
            owner=subject.owner,
            subject=subject,
            kind="training",
            label=f"Training {model.name}",
            job="creator.jobs.train_model",
            queue="training",
            job_kwargs={"model_id": model.pk},
        )
        model.save(update_fields=["task"])
    return model


def generation_start(
    *,
    model: PersonalModel,
    user: User,
    prompt: str,
    negative_prompt: str = "",
    style: str = "none",
    size: str = "square",
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    count: int = 1,
    include_prompt: bool = False,
) -> Generation:
    """Queue images from a trained model. An empty seed gets a random one, always recorded."""
    from creator.ml.generate import MAX_IMAGES, SIZES, STYLES

    if not model.lora:
        raise Refused(MODEL_NOT_READY)
    if model.consent.status != Consent.Status.GRANTED:
        raise Refused(CONSENT_GONE)
    if not prompt.strip():
        raise Refused(EMPTY_PROMPT)
    if style not in STYLES or size not in SIZES:
        raise Refused("Choose one of the listed styles and sizes.")
    if not 1 <= count <= MAX_IMAGES:
        raise Refused(f"Make between 1 and {MAX_IMAGES} images at a time.")
    steps = steps or settings.GENERATION_STEPS
    if not 1 <= steps <= 150:
        raise Refused("Steps must be between 1 and 150.")
    guidance = settings.GENERATION_GUIDANCE if guidance is None else guidance
    if not 0 <= guidance <= 30:
        raise Refused("Guidance must be between 0 and 30.")
    if seed is None:
        seed = secrets.randbelow(2**31)
    if not 0 <= seed < 2**63:
        raise Refused("The seed must be a whole number from 0 up.")
    with transaction.atomic():
        generation = Generation.objects.create(
            owner=user,
            model=model,
            prompt=prompt.strip()[:1000],
            negative_prompt=negative_prompt.strip()[:1000],
            style=style,
            size=size,
            steps=steps,
            guidance=guidance,
            seed=seed,
            count=count,
            include_prompt=include_prompt,
        )
        generation.task = services.task_start(
            owner=user,
            subject=model.subject,
            kind="generation",
            label=f"{count} image(s) from {model.name}",
            job="creator.jobs.generate_images",
            queue="generation",
            job_kwargs={"generation_id": generation.pk},
        )
        generation.save(update_fields=["task"])
    return generation


# --- the work itself, run by jobs in a worker ------------------------------------------------

LOSS_POINTS = 200
CONSENT_REVOKED_DURING = "Consent for this person was revoked, so this stopped."


def _thin(points: list, limit: int = LOSS_POINTS) -> list[list]:
    """At most `limit` points, evenly spread, always keeping the last (for the loss chart)."""
    if len(points) > limit:
        stride = len(points) / limit
        points = [points[int(i * stride)] for i in range(limit - 1)] + [points[-1]]
    return [list(p) for p in points]


def _likeness_to(anchor):
    from creator.ml import faces

    engine = faces.FaceEngine.get()

    def likeness(image) -> float | None:
        face = engine.analyse(image).face
        if face is None or anchor is None:
            return None
        return round(faces.distance(face.embedding, anchor), 4)

    return likeness


def model_train(*, model: PersonalModel, progress) -> None:
    """Train a model's LoRA in this process, reporting to `progress` (a runtime.Progress)."""
    import shutil
    from dataclasses import asdict

    from django.core.files.base import File
    from django.core.files.storage import default_storage

    from creator import engine
    from creator.ml.models import native_resolution
    from creator.ml.train import TrainConfig, train_lora
    from creator.models import ReferencePhoto
    from creator.runtime import JobError

    if model.consent.status != Consent.Status.GRANTED:
        raise JobError(CONSENT_REVOKED_DURING)
    crops = [
        engine.local_path(p.crop.name)
        for p in model.subject.photos.filter(status=ReferencePhoto.Status.OK).exclude(crop="")
    ]
    progress.phase("Loading the base model")
    pipe = engine.load_base_pipeline()
    steps = settings.TRAIN_STEPS
    config = TrainConfig(
        resolution=settings.TRAIN_RESOLUTION or native_resolution(pipe),
        steps=steps,
        rank=settings.TRAIN_RANK,
        learning_rate=settings.TRAIN_LEARNING_RATE,
        mixed_precision=settings.MIXED_PRECISION,
        checkpoint_every=settings.TRAIN_CHECKPOINT_EVERY or max(1, steps // 5),
        seed=model.pk,
    )
    samples: list[dict] = []
    losses: list = []

    def details() -> dict:
        return {"model_id": model.pk, "loss": _thin(losses), "samples": samples}

    def should_stop() -> bool:
        progress.check_cancelled()  # raises Cancelled: the run stops between two steps
        return False

    def on_progress(report) -> None:
        losses[:] = report.losses
        message = f"{report.phase} · loss {report.loss:.4f}" if report.step else report.phase
        progress.update(report.step, report.total, message=message, details=details())

    def on_sample(sample) -> None:
        owner = model.subject.owner_id
        with open(sample.path, "rb") as handle:
            name = default_storage.save(
                f"samples/{owner}/{model.pk}/step-{sample.step}.png", File(handle)
            )
        samples.append({"step": sample.step, "name": name, "likeness": sample.likeness})

    # Checkpoints live in var/ across retries: a run retried after a crash resumes from them.
    out_dir = settings.VAR_DIR / "training" / f"{model.pk}-{model.task_id}"
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
        should_stop=should_stop,
        on_progress=on_progress,
        on_sample=on_sample,
        likeness=_likeness_to(model.consent.selfie_embedding),
    )
    with open(result.lora_path, "rb") as handle:
        model.lora = default_storage.save(
            f"models/{model.subject.owner_id}/{secrets.token_hex(16)}.safetensors", File(handle)
        )
    model.lora_sha256 = result.sha256
    model.best_step = result.best_step
    model.seconds_per_step = result.seconds_per_step
    model.config = {**asdict(config), "resumed_from": result.resumed_from}
    model.save()
    losses[:] = result.losses
    progress.update(steps, steps, message="Trained", details=details(), force=True)
    shutil.rmtree(out_dir, ignore_errors=True)


def generation_run(*, generation: Generation, progress) -> list:
    """Make a generation's images with the warm pipeline and file them as draft posts."""
    from creator import engine
    from creator.ml.generate import GenerationRequest, LoraRef, full_prompt, size_for
    from creator.ml.models import native_resolution
    from creator.runtime import JobError
    from gallery.services import post_create

    model = generation.model
    if model.consent.status != Consent.Status.GRANTED:
        raise JobError(CONSENT_REVOKED_DURING)
    if not model.lora:
        raise JobError(MODEL_NOT_READY)
    cache = engine.pipeline_cache()
    progress.phase("Loading the model")
    width, height = size_for(generation.size, native_resolution(cache.pipeline()))
    prompt, style_negative = full_prompt(generation.prompt, generation.style, with_subject=True)
    negative = ", ".join(p for p in (generation.negative_prompt, style_negative) if p)
    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=negative,
        seed=generation.seed,
        steps=generation.steps,
        guidance=generation.guidance,
        width=width,
        height=height,
        count=generation.count,
        lora=LoraRef(name=model.lora_sha256, path=str(engine.local_path(model.lora.name))),
    )
    images = cache.generate(
        request,
        on_step=lambda step, total: progress.update(step, total, message="Generating"),
    )
    posts = []
    marking_started = time.monotonic()
    for index, image in enumerate(images):
        posts.append(
            post_create(
                owner=generation.owner,
                image=image,
                prompt=generation.prompt,
                seed=generation.seed + index,
                generation_settings={
                    "prompt_used": prompt,
                    "negative_prompt": negative,
                    "style": generation.style,
                    "size": f"{width}×{height}",
                    "steps": generation.steps,
                    "guidance": generation.guidance,
                },
                model_name=model.name,
                base_model=model.base_model,
                lora_sha256=model.lora_sha256,
                consent_id=model.consent_id,
                prompt_in_credentials=generation.include_prompt,
            )
        )
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
        },
        force=True,
    )
    return posts
