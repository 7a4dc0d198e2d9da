"""Pages of the job runtime: a job's card, its live status, cancel and retry."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from creator.jobs import services
from creator.jobs.models import Task
from creator.jobs.runtime import QueueUnavailable


def _get_task_for_user(request: HttpRequest, pk) -> Task:
    try:
        return Task.objects.get(pk=pk, owner=request.user)
    except Task.DoesNotExist:
        raise Http404("No such job.") from None


@login_required
@require_safe
def task_detail(request: HttpRequest, pk) -> HttpResponse:
    task = services.task_refresh(task=_get_task_for_user(request, pk))
    return render(request, "jobs/task_detail.html", {"task": task})


def _task_json(task: Task) -> dict:
    return {
        "id": str(task.pk),
        "kind": task.kind,
        "label": task.label,
        "status": task.status,
        "status_display": task.get_status_display(),
        "active": task.is_active,
        "progress": round(task.progress, 4),
        "step": task.step,
        "total": task.total,
        "eta_seconds": None if task.eta_seconds is None else round(task.eta_seconds, 1),
        "message": task.message,
        "error": task.error,
        "cancel_requested": task.cancel_requested,
        "details": task.details,
        "link": task.link or None,
        "created_at": task.created_at.isoformat(),
        "started_at": task.started_at.isoformat() if task.started_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
        "url": reverse("task_detail", args=[task.pk]),
    }


@login_required
@require_safe
def task_status(request: HttpRequest, pk) -> HttpResponse:
    """Live progress: JSON by default, the progress card's HTML with ?format=html."""
    task = services.task_refresh(task=_get_task_for_user(request, pk))
    if request.GET.get("format") == "html":
        return render(request, "jobs/_task.html", {"task": task})
    return JsonResponse(_task_json(task))


@login_required
@require_POST
def task_cancel(request: HttpRequest, pk) -> HttpResponse:
    task = _get_task_for_user(request, pk)
    if not task.is_active:
        messages.info(request, "This job has already finished.")
    else:
        task = services.task_cancel(task=task)
        cancelled = task.status == Task.Status.CANCELLED
        messages.success(request, "Cancelled." if cancelled else "Stopping…")
    return redirect("task_detail", pk=task.pk)


@login_required
@require_POST
def task_retry(request: HttpRequest, pk) -> HttpResponse:
    task = _get_task_for_user(request, pk)
    if not task.can_retry:
        messages.info(request, "Only a failed or cancelled job can be retried.")
        return redirect("task_detail", pk=task.pk)
    try:
        services.task_retry(task=task)
    except QueueUnavailable as exc:
        messages.error(request, exc.message)
        return redirect("task_detail", pk=task.pk)
    messages.success(request, "Queued again.")
    return redirect("task_detail", pk=task.pk)
