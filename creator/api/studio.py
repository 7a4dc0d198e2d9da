"""Personal models (training runs) and generations: start, watch, cancel, retry, download."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.urls import reverse
from ninja import Field, Router, Schema, Status

from config.api import ApiError, Page, errors, need, not_found, page
from config.files import stored_file_response
from creator.api.common import idempotent
from creator.api.subjects import owned_subject
from creator.engine import options
from creator.jobs import services as jobs
from creator.jobs.models import Task
from creator.studio import services
from creator.studio.models import Generation, PersonalModel

router = Router(tags=["models and generations"])
State = Literal["queued", "running", "succeeded", "failed", "cancelled", "none"]
NOT_TRAINED = "This model has no trained weights yet."
CANT_CANCEL = "Only a queued or running job can be cancelled."
CANT_RETRY = "Only a failed or cancelled training run can be retried."


class SampleOut(Schema):
    step: int
    likeness: float | None  # face distance to the consent selfie; lower is closer
    url: str


class ProgressOut(Schema):
    state: State
    step: int
    total: int
    message: str
    eta_seconds: float | None
    error: str
    loss: list[tuple[int, float]]  # (step, loss), at most 200 points
    samples: list[SampleOut]


class ModelOut(Schema):
    id: int
    subject_id: int
    name: str
    base_model: str
    created_at: datetime
    trained: bool
    lora_sha256: str
    best_step: int | None
    config: dict
    progress: ProgressOut


class ModelPage(Page):
    items: list[ModelOut]


class TrainIn(Schema):
    subject_id: int
    steps: int | None = Field(None, ge=1, le=100_000, description="default: the base family's")
    rank: int | None = Field(None, ge=1, le=256)
    learning_rate: float | None = Field(None, gt=0, le=1)
    face_weight: float | None = Field(None, ge=0, le=100)


class GenerationIn(Schema):
    model_id: int
    prompt: str = Field(..., max_length=options.PROMPT_MAX_CHARS)
    negative_prompt: str = Field("", max_length=options.PROMPT_MAX_CHARS)
    style: Literal[tuple(options.STYLES)] = "none"  # type: ignore[valid-type]
    size: Literal[tuple(options.SIZES)] = "square"  # type: ignore[valid-type]
    steps: int | None = Field(None, ge=options.MIN_STEPS, le=options.MAX_STEPS)
    guidance: float | None = Field(None, ge=options.MIN_GUIDANCE, le=options.MAX_GUIDANCE)
    seed: int | None = Field(None, ge=0, le=options.MAX_SEED)
    count: int = Field(1, ge=1, le=options.MAX_IMAGES)
    include_prompt: bool = False


class GenerationOut(Schema):
    id: int
    model_id: int
    prompt: str
    negative_prompt: str
    style: str
    size: str
    steps: int
    guidance: float
    seed: int
    count: int
    created_at: datetime
    progress: ProgressOut
    post_ids: list[str]


class GenerationPage(Page):
    items: list[GenerationOut]


def progress_out(task: Task | None, sample_url=None) -> dict:
    if task is None:
        return {"state": "none", "step": 0, "total": 0, "message": "", "eta_seconds": None,
                "error": "", "loss": [], "samples": []}  # fmt: skip
    jobs.task_refresh(task=task)
    details = task.details or {}
    return {
        "state": task.status,
        "step": task.step,
        "total": task.total,
        "message": task.message,
        "eta_seconds": task.eta_seconds,
        "error": task.error,
        "loss": [tuple(p) for p in details.get("loss", [])],
        "samples": [
            {"step": s["step"], "likeness": s.get("likeness"), "url": sample_url(s["step"])}
            for s in details.get("samples", [])
        ]
        if sample_url
        else [],
    }


def model_out(model: PersonalModel) -> dict:
    def sample_url(step: int) -> str:
        return reverse("api:model_sample", args=[model.pk, step])

    return {
        "id": model.pk,
        "subject_id": model.subject_id,
        "name": model.name,
        "base_model": model.base_model_label or options.base_model_label(model.base_model),
        "created_at": model.created_at,
        "trained": bool(model.lora),
        "lora_sha256": model.lora_sha256,
        "best_step": model.best_step,
        "config": model.config,
        "progress": progress_out(model.task, sample_url),
    }


def generation_out(generation: Generation) -> dict:
    return {
        "id": generation.pk,
        "model_id": generation.model_id,
        "prompt": generation.prompt,
        "negative_prompt": generation.negative_prompt,
        "style": generation.style,
        "size": generation.size,
        "steps": generation.steps,
        "guidance": generation.guidance,
        "seed": generation.seed,
        "count": generation.count,
        "created_at": generation.created_at,
        "progress": progress_out(generation.task),
        "post_ids": [str(p) for p in generation.post_ids],
    }


def owned_model(request, model_id: int) -> PersonalModel:
    model = (
        PersonalModel.objects.filter(subject__owner=request.auth.user, pk=model_id)
        .select_related("subject", "consent", "task")
        .first()
    )
    if model is None:
        raise not_found("model")
    return model


@router.get("/models", response={200: ModelPage, **errors(403)}, summary="List models")
def model_list(
    request, subject_id: int | None = None, state: State | None = None, cursor: str | None = None,
    limit: int = 20,
):  # fmt: skip
    need(request, "read")
    models = PersonalModel.objects.filter(subject__owner=request.auth.user).select_related(
        "task", "subject"
    )
    if subject_id is not None:
        models = models.filter(subject_id=subject_id)
    if state == "none":
        models = models.filter(task=None)
    elif state:
        models = models.filter(task__status=state)
    return page(models, cursor, limit, model_out)


@router.post(
    "/models", response={202: ModelOut, **errors(400, 403, 404, 409, 503)},
    summary="Start training a model",
)  # fmt: skip
def model_train(request, body: TrainIn):
    """Queues a training run of a subject that is ready (enough good photos, consent given).
    Options left out take the base model family's defaults. Honours `Idempotency-Key`."""
    need(request, "train")
    subject = owned_subject(request, body.subject_id)
    requested = body.dict(exclude={"subject_id"}, exclude_none=True)

    def start():
        model = services.training_start(subject=subject, requested=requested)
        return Status(202, model_out(model))

    return idempotent(request, start)


@router.get(
    "/models/{model_id}",
    response={200: ModelOut, **errors(403, 404)},
    summary="Show a model and its training progress",
)
def model_show(request, model_id: int):
    """The model and its training progress: step, loss curve, ETA, samples with likeness."""
    need(request, "read")
    return model_out(owned_model(request, model_id))


@router.post(
    "/models/{model_id}/cancel",
    response={200: ModelOut, **errors(400, 403, 404)},
    summary="Cancel a training run",
)
def model_cancel(request, model_id: int):
    need(request, "train")
    model = owned_model(request, model_id)
    if model.task is None or not model.task.is_active:
        raise ApiError("refused", CANT_CANCEL)
    jobs.task_cancel(task=model.task)
    return model_out(owned_model(request, model_id))


@router.post(
    "/models/{model_id}/retry",
    response={202: ModelOut, **errors(400, 403, 404, 503)},
    summary="Retry a training run",
)
def model_retry(request, model_id: int):
    """A failed or cancelled run starts again, resuming from its last checkpoint."""
    need(request, "train")
    model = owned_model(request, model_id)
    if model.task is None or model.task.status not in (Task.Status.FAILED, Task.Status.CANCELLED):
        raise ApiError("refused", CANT_RETRY)
    jobs.task_retry(task=model.task)
    return Status(202, model_out(owned_model(request, model_id)))


@router.get(
    "/models/{model_id}/weights",
    response={200: None, **errors(403, 404)},
    summary="Download the LoRA weights (.safetensors)",
)
def model_weights(request, model_id: int):
    need(request, "read")
    model = owned_model(request, model_id)
    if not model.lora:
        raise not_found("trained model")
    return stored_file_response(
        model.lora.name,
        content_type="application/octet-stream",
        download_name=f"candor-model-{model.pk}.safetensors",
    )


@router.get(
    "/models/{model_id}/samples/{step}",
    response={200: None, **errors(403, 404)},
    summary="A training sample (PNG)",
)
def model_sample(request, model_id: int, step: int):
    need(request, "read")
    model = owned_model(request, model_id)
    name = model.sample_file(step)
    if not name:
        raise not_found("sample")
    return stored_file_response(name, content_type="image/png")


@router.delete(
    "/models/{model_id}", response={204: None, **errors(403, 404)}, summary="Delete a model"
)
def model_delete(request, model_id: int):
    """Deletes the model and its weights; its running jobs stop. Images already made stay."""
    need(request, "write")
    services.model_delete(model=owned_model(request, model_id))
    return Status(204, None)


@router.post(
    "/generations", response={202: GenerationOut, **errors(400, 403, 404, 409, 503)},
    summary="Make images from a model",
)  # fmt: skip
def generation_start(request, body: GenerationIn):
    """Queues a generation: its images become private draft posts, each signed and labelled.
    An empty seed gets a random one, always recorded. Honours `Idempotency-Key`."""
    need(request, "train")
    model = owned_model(request, body.model_id)

    def start():
        generation = services.generation_start(
            model=model, user=request.auth.user, **body.dict(exclude={"model_id"})
        )
        return Status(202, generation_out(generation))

    return idempotent(request, start)


@router.get(
    "/generations", response={200: GenerationPage, **errors(403)}, summary="List generations"
)
def generation_list(
    request, model_id: int | None = None, state: State | None = None, cursor: str | None = None,
    limit: int = 20,
):  # fmt: skip
    need(request, "read")
    found = Generation.objects.filter(owner=request.auth.user).select_related("task")
    if model_id is not None:
        found = found.filter(model_id=model_id)
    if state:
        found = found.filter(task__status=state)
    return page(found, cursor, limit, generation_out)


@router.get(
    "/generations/{generation_id}",
    response={200: GenerationOut, **errors(403, 404)},
    summary="Show a generation",
)
def generation_show(request, generation_id: int):
    need(request, "read")
    generation = Generation.objects.filter(owner=request.auth.user, pk=generation_id).first()
    if generation is None:
        raise not_found("generation")
    return generation_out(generation)
