from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config import ratelimit
from creator import runtime, selectors, services
from creator.forms import LoginForm, SignupForm
from creator.models import Task

TOO_MANY_ATTEMPTS = (
    "Too many attempts from your network. For your safety, please wait a while and try again."
)
LOGIN_WINDOW = 15 * 60
SIGNUP_WINDOW = 3600
RESET_WINDOW = 3600


def _get_task_for_user(request: HttpRequest, pk) -> Task:
    try:
        return Task.objects.get(pk=pk, owner=request.user)
    except Task.DoesNotExist:
        raise Http404("No such job.") from None


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "creator/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        ip = ratelimit.client_ip(request)
        if ratelimit.hit("signup", ip, window=SIGNUP_WINDOW) > settings.SIGNUP_RATE_LIMIT:
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return render(request, "registration/signup.html", {"form": form}, status=429)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="creator.auth.HandleOrEmailBackend")
            messages.success(request, f"Welcome to Candor, @{user.handle}.")
            return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's login, with failed attempts limited per client address and per account."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def _limited(self) -> bool:
        limit = settings.LOGIN_RATE_LIMIT
        account = (self.request.POST.get("username") or "").strip().removeprefix("@")
        ip = ratelimit.client_ip(self.request)
        return ratelimit.is_limited(
            "login-ip", ip, limit=limit, window=LOGIN_WINDOW
        ) or ratelimit.is_limited("login-account", account, limit=limit, window=LOGIN_WINDOW)

    def post(self, request, *args, **kwargs):
        if self._limited():
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        account = (self.request.POST.get("username") or "").strip().removeprefix("@")
        ratelimit.hit("login-ip", ratelimit.client_ip(self.request), window=LOGIN_WINDOW)
        if account:
            ratelimit.hit("login-account", account, window=LOGIN_WINDOW)
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per client address so it cannot be used to spam."""

    def post(self, request, *args, **kwargs):
        ip = ratelimit.client_ip(request)
        attempts = ratelimit.hit("password-reset", ip, window=RESET_WINDOW)
        if attempts > settings.PASSWORD_RESET_RATE_LIMIT:
            form = self.get_form()
            form.add_error(None, TOO_MANY_ATTEMPTS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    tasks = [services.task_refresh(task=t) for t in selectors.tasks_for_user(request.user)]
    subjects = selectors.subjects_for_user(request.user)
    return render(request, "creator/dashboard.html", {"tasks": tasks, "subjects": subjects})


@login_required
@require_GET
def task_detail(request: HttpRequest, pk) -> HttpResponse:
    task = services.task_refresh(task=_get_task_for_user(request, pk))
    return render(request, "creator/task_detail.html", {"task": task})


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
        "subject_url": (
            reverse("subject_detail", args=[task.subject_id]) if task.subject_id else None
        ),
        "created_at": task.created_at.isoformat(),
        "started_at": task.started_at.isoformat() if task.started_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
        "url": reverse("task_detail", args=[task.pk]),
    }


@login_required
@require_GET
def task_status(request: HttpRequest, pk) -> HttpResponse:
    """Live progress: JSON by default, the progress card's HTML with ?format=html."""
    task = services.task_refresh(task=_get_task_for_user(request, pk))
    if request.GET.get("format") == "html":
        return render(request, "creator/_task.html", {"task": task})
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
    except runtime.QueueUnavailable as exc:
        messages.error(request, exc.message)
        return redirect("task_detail", pk=task.pk)
    messages.success(request, "Queued again.")
    return redirect("task_detail", pk=task.pk)
