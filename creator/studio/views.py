"""Pages of the studio: the dashboard, personal models, training runs and generating images."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from config.confirm import confirm_page, confirmed
from config.files import stored_file_response
from creator.engine import base_models, options, tiny
from creator.jobs import selectors as job_selectors
from creator.jobs import services as jobs
from creator.jobs.runtime import QueueUnavailable
from creator.likeness import selectors as likeness_selectors
from creator.likeness.checks import ConsentRefused
from creator.likeness.models import Subject
from creator.studio import export, services
from creator.studio.models import PersonalModel
from gallery.selectors import posts_by_ids

BAD_NUMBER = "{field} must be a number."


def _get_model_for_user(request: HttpRequest, pk: int) -> PersonalModel:
    try:
        return PersonalModel.objects.select_related("subject", "consent", "task").get(
            pk=pk, subject__owner=request.user
        )
    except PersonalModel.DoesNotExist:
        raise Http404("No such model.") from None


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    tasks = [jobs.task_refresh(task=t) for t in job_selectors.tasks_for_user(request.user)]
    subjects = list(likeness_selectors.subjects_for_user(request.user))
    for subject in subjects:
        subject.consent_state = likeness_selectors.consent_state(subject)
    has_self = any(s.is_self for s in subjects)  # one "me" per account: not offered again
    context = {"tasks": tasks, "subjects": subjects, "has_self": has_self}
    return render(request, "studio/dashboard.html", context)


@login_required
@require_POST
def training_start(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        subject = Subject.objects.get(pk=pk, owner=request.user)
    except Subject.DoesNotExist:
        raise Http404("No such subject.") from None
    try:
        model = services.training_start(subject=subject)
    except (services.Refused, QueueUnavailable) as exc:
        messages.error(request, exc.message)
        return redirect("subject_detail", pk=subject.pk)
    messages.success(request, "Training queued. You can leave this page; it keeps going.")
    return redirect("model_detail", pk=model.pk)


@login_required
@require_safe
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = _get_model_for_user(request, pk)
    task = jobs.task_refresh(task=model.task) if model.task else None
    generations = list(model.generations.select_related("task")[:10])
    for generation in generations:
        if generation.task:
            jobs.task_refresh(task=generation.task)
    post_ids = [pid for g in generations for pid in g.post_ids]
    posts = {str(p.pk): p for p in posts_by_ids(request.user, post_ids)}
    defaults = services.generation_defaults(model)
    family = base_models.described(model.base_model).family
    samples = (task.details or {}).get("samples", []) if task else []
    kept = next((s for s in samples if s["step"] == model.best_step), None)
    context = {
        "model": model,
        "task": task,
        "generations": [
            (g, [posts[pid] for pid in g.post_ids if pid in posts]) for g in generations
        ],
        "builtin_base": model.base_model in tiny.TINY_MODELS,
        "family_label": family.label if family else "",
        "takes_negative_prompt": family.negative_prompt if family else True,
        "kept_likeness": kept["likeness"] if kept else None,
        "styles": [(k, v[0]) for k, v in options.STYLES.items()],
        "sizes": [(k, v[0]) for k, v in options.SIZES.items()],
        "max_images": range(1, options.MAX_IMAGES + 1),
        "limits": {
            "min_steps": options.MIN_STEPS,
            "max_steps": options.MAX_STEPS,
            "min_guidance": options.MIN_GUIDANCE,
            "max_guidance": options.MAX_GUIDANCE,
            "prompt_chars": options.PROMPT_MAX_CHARS,
            "steps": defaults[0],
            "guidance": defaults[1],
        },
        "form": request.session.pop(f"generate-form-{model.pk}", {}),
    }
    return render(request, "studio/model_detail.html", context)


@login_required
@require_safe
def model_sample(request: HttpRequest, pk: int, step: int) -> HttpResponse:
    model = _get_model_for_user(request, pk)
    return stored_file_response(model.sample_file(step), content_type="image/png")


def _number(raw: str, kind, field: str):
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise services.Refused(BAD_NUMBER.format(field=field)) from None


@login_required
@require_POST
def generation_start(request: HttpRequest, pk: int) -> HttpResponse:
    model = _get_model_for_user(request, pk)
    data = request.POST
    try:
        services.generation_start(
            model=model,
            user=request.user,
            prompt=data.get("prompt", ""),
            negative_prompt=data.get("negative_prompt", ""),
            style=data.get("style", "none"),
            size=data.get("size", "square"),
            steps=_number(data.get("steps"), int, "Steps"),
            guidance=_number(data.get("guidance"), float, "Guidance"),
            seed=_number(data.get("seed"), int, "The seed"),
            count=_number(data.get("count"), int, "The number of images") or 1,
            include_prompt=data.get("include_prompt") == "on",
        )
    except (services.Refused, QueueUnavailable) as exc:
        messages.error(request, exc.message)
        request.session[f"generate-form-{model.pk}"] = {
            k: data.get(k, "")
            for k in (
                "prompt",
                "negative_prompt",
                "style",
                "size",
                "steps",
                "guidance",
                "seed",
                "count",
            )
        }
        return redirect("model_detail", pk=model.pk)
    messages.success(request, "Generating. The images land in your gallery as drafts.")
    return redirect("model_detail", pk=model.pk)


@login_required
@require_POST
def model_delete(request: HttpRequest, pk: int) -> HttpResponse:
    model = _get_model_for_user(request, pk)
    subject_pk = model.subject_id
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Delete the model “{model.name}”?",
            consequences=[
                "its trained weights (LoRA file)",
                "any training or generation in progress",
            ],
            keeps=["images already made with it, in your gallery"],
            button=f"Delete model “{model.name}”",
            cancel_url=reverse("model_detail", args=[model.pk]),
        )
    services.model_delete(model=model)
    messages.success(request, "Model deleted. Images already made stay in your gallery.")
    return redirect("subject_detail", pk=subject_pk)


@never_cache
@require_safe
def person_export(request: HttpRequest, token: str) -> HttpResponse:
    """Everything Candor holds about the person shown, for them, through their consent link."""
    try:
        consent = likeness_selectors.consent_for_token(token)
    except ConsentRefused:
        raise Http404("No such consent.") from None
    response = HttpResponse(export.person_export(consent=consent), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="candor-my-data.zip"'
    return response
