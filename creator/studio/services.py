"""State changes of the studio: start a training run, start a generation, delete a model."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from config.refusal import Refusal
from creator.engine import base_models, faces, options
from creator.engine.families import Defaults
from creator.jobs import services as jobs
from creator.likeness import scope
from creator.likeness.models import Consent, ReferencePhoto, Subject
from creator.likeness.selectors import subject_readiness
from creator.studio.models import Generation, PersonalModel

NOT_READY = "This subject can't be trained yet: {reasons}"
MODEL_NOT_READY = "This model isn't trained yet, so it can't make images."
CONSENT_GONE = (
    "Consent for this person was revoked, so this model can no longer be used. "
    "Its images already made stay labelled as such."
)
EMPTY_PROMPT = "Describe the image you want."
PHOTOS_NOT_CONSENTED = (
    "{count} photo(s) to train on don't match the selfie of the person who gave consent, so "
    "nothing was trained. Remove them (or check them again) and try again."
)


class Refused(Refusal):
    """A training or generation request that can't be queued, and why."""


def base_defaults(spec: str = "") -> Defaults:
    """What the base model's family expects, for settings left at 0 (torch-free, no loading)."""
    return base_models.defaults_for(spec or settings.CANDOR_BASE_MODEL)


def generation_defaults(model: PersonalModel) -> tuple[int, float]:
    """Steps and guidance a generation gets unless it asks: settings, else the family's."""
    defaults = base_defaults(model.base_model)
    steps = settings.GENERATION_STEPS or defaults.generation_steps
    guidance = settings.GENERATION_GUIDANCE
    return steps, defaults.guidance if guidance < 0 else guidance


def training_start(*, subject: Subject, requested: dict | None = None) -> PersonalModel:
    """Queue a training run for a subject that is ready (enough good photos and consent).
    `requested` options (steps, rank, learning_rate, face_weight) override the settings."""
    readiness = subject_readiness(subject)
    if not readiness.ready:
        raise Refused(NOT_READY.format(reasons=" ".join(readiness.reasons)))
    consent = subject.active_consent()
    strangers = _photos_not_matching(subject, consent)
    if strangers:
        raise Refused(PHOTOS_NOT_CONSENTED.format(count=strangers))
    with transaction.atomic():
        number = PersonalModel.objects.filter(subject=subject).count() + 1
        model = PersonalModel.objects.create(
            subject=subject,
            consent=consent,
            name=f"{subject.name} · model {number}",
            number=number,
            base_model=settings.CANDOR_BASE_MODEL,
            config={"requested": dict(requested or {})},
            base_model_label=settings.CANDOR_BASE_MODEL_LABEL
            or options.base_model_label(settings.CANDOR_BASE_MODEL),
        )
        model.task = jobs.task_start(
            owner=subject.owner,
            scope=subject.scope,
            link=reverse("model_detail", args=[model.pk]),
            kind="training",
            label=f"Training {model.name}",
            job="creator.studio.jobs.train_model",
            queue="training",
            job_kwargs={"model_id": model.pk},
        )
        model.save(update_fields=["task"])
    return model


def _photos_not_matching(subject: Subject, consent: Consent) -> int:
    """How many photos the trainer would learn from (OK, with a crop) are not, by their face
    signature, the person whose selfie gave consent. Checked here again, whatever the photo
    checks concluded: nothing but the consenting person is trained on."""
    anchor = consent.selfie_embedding if consent else None
    photos = subject.photos.filter(status=ReferencePhoto.Status.OK).exclude(crop="")
    return sum(
        1
        for embedding in photos.values_list("embedding", flat=True)
        if anchor is None
        or not embedding
        or faces.distance(anchor, embedding) > settings.FACE_MATCH_THRESHOLD
    )


def generation_start(
    *,
    model: PersonalModel,
    user,
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
    if not model.lora:
        raise Refused(MODEL_NOT_READY)
    consent = model.consent
    if consent.status != Consent.Status.GRANTED:
        raise Refused(CONSENT_GONE)
    if consent.ended:
        raise Refused(
            scope.CONSENT_ENDED.format(
                name=model.subject.name, date=consent.ends_at.strftime("%-d %b %Y")
            )
        )
    if not prompt.strip():
        raise Refused(EMPTY_PROMPT)
    # Intimate imagery is ruled out for every consent, including those recorded before scopes.
    found = scope.ruled_out_match(prompt, (scope.INTIMATE, *consent.ruled_out))
    if found:
        category, word = found
        raise Refused(
            scope.PROMPT_RULED_OUT.format(
                name=model.subject.name, label=category.short.lower(), word=word
            )
        )
    if max(len(prompt.strip()), len(negative_prompt.strip())) > options.PROMPT_MAX_CHARS:
        raise Refused(options.PROMPT_TOO_LONG)
    if style not in options.STYLES:
        raise Refused(options.UNKNOWN_STYLE)
    if size not in options.SIZES:
        raise Refused(options.UNKNOWN_SIZE)
    default_steps, default_guidance = generation_defaults(model)
    steps = steps or default_steps
    guidance = default_guidance if guidance is None else guidance
    if seed is None:
        seed = secrets.randbelow(2**31)
    problem = options.limits_problem(count=count, steps=steps, guidance=guidance, seed=seed)
    if problem:
        raise Refused(problem)
    with transaction.atomic():
        generation = Generation.objects.create(
            owner=user,
            model=model,
            prompt=prompt.strip(),
            negative_prompt=negative_prompt.strip(),
            style=style,
            size=size,
            steps=steps,
            guidance=guidance,
            seed=seed,
            count=count,
            include_prompt=include_prompt,
        )
        generation.task = jobs.task_start(
            owner=user,
            scope=model.subject.scope,
            link=reverse("model_detail", args=[model.pk]),
            kind="generation",
            label=f"{count} image(s) from {model.name}",
            job="creator.studio.jobs.generate_images",
            queue="generation",
            job_kwargs={"generation_id": generation.pk},
        )
        generation.save(update_fields=["task"])
    return generation


def model_delete(*, model: PersonalModel) -> None:
    """Delete a model and its LoRA file; its running jobs stop. Images already made stay."""
    with transaction.atomic():
        for task in _active_tasks(model):
            jobs.task_cancel(task=task)
        model.delete()


def _active_tasks(model: PersonalModel) -> list:
    tasks = [model.task] + [g.task for g in model.generations.select_related("task")]
    return [t for t in tasks if t is not None and t.is_active]
