"""Pages of notices (the list, opening one, marking all read) and of webhook endpoints."""

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from config.confirm import confirm_page, confirmed
from creator.notices import selectors, services, webhooks
from creator.notices.forms import EndpointForm
from creator.notices.models import Notice, WebhookEndpoint

ALL_READ = "All your notifications are marked as read."
NONE_UNREAD = "You have no unread notifications."


def _get_notice_for_user(request: HttpRequest, pk: int) -> Notice:
    try:
        return Notice.objects.get(pk=pk, user=request.user)
    except Notice.DoesNotExist:
        raise Http404("No such notification.") from None


@login_required
@require_safe
def notice_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.notices_for(request.user), selectors.PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "notices/list.html", {"page": page})


@login_required
@require_POST
def notice_open(request: HttpRequest, pk: int) -> HttpResponse:
    notice = _get_notice_for_user(request, pk)
    services.notices_mark_read(user=request.user, ids=[notice.pk])
    # notify() only stores paths on this site; checked again so a bad row can't send anyone away.
    if notice.link and url_has_allowed_host_and_scheme(
        notice.link, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(notice.link)
    return redirect("notices")


@login_required
@require_POST
def notices_read_all(request: HttpRequest) -> HttpResponse:
    if services.notices_mark_read(user=request.user):
        messages.success(request, ALL_READ)
    else:
        messages.info(request, NONE_UNREAD)
    return redirect("notices")


# --- webhooks ----------------------------------------------------------------------------------

ENDPOINT_ADDED = "Endpoint added. Copy its signing secret below to verify what Candor sends."
ENDPOINT_SAVED = "Endpoint saved."
ENDPOINT_ON = "Endpoint turned on."
ENDPOINT_OFF = "Endpoint turned off: nothing more is sent to it until you turn it on."
ENDPOINT_DELETED = "Endpoint deleted."
TEST_QUEUED = "Test event queued: it shows in the log below once sent (reload the page)."
SECRET_ROTATED = "New signing secret made; the old one no longer verifies."  # noqa: S105


def _get_endpoint_for_user(request: HttpRequest, pk: int) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.get(pk=pk, user=request.user)
    except WebhookEndpoint.DoesNotExist:
        raise Http404("No such webhook endpoint.") from None


def _save(form: EndpointForm, save) -> WebhookEndpoint | None:
    """`save(url=…, description=…, events=…)` from a valid form; a refusal becomes its error."""
    if not form.is_valid():
        return None
    try:
        return save(
            url=form.cleaned_data["url"],
            description=form.cleaned_data["description"],
            events=form.chosen_events(),
        )
    except webhooks.EndpointRefused as exc:
        form.add_error(exc.field, exc.message)
        return None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST":
        endpoint = _save(form, functools.partial(webhooks.endpoint_create, user=request.user))
        if endpoint is not None:
            messages.success(request, ENDPOINT_ADDED)
            return redirect("webhook_detail", pk=endpoint.pk)
    endpoints = selectors.webhook_endpoints_for(request.user)
    return render(
        request,
        "notices/webhooks.html",
        {"endpoints": endpoints, "form": form, "events": webhooks.EVENTS},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint_for_user(request, pk)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if _save(form, functools.partial(webhooks.endpoint_update, endpoint=endpoint)):
            messages.success(request, ENDPOINT_SAVED)
            return redirect("webhook_detail", pk=endpoint.pk)
        endpoint.refresh_from_db()  # the page shows what is saved, the form what was typed
    else:
        form = EndpointForm.for_endpoint(endpoint)
    context = {
        "endpoint": endpoint,
        "form": form,
        "events": webhooks.EVENTS,
        "deliveries": selectors.webhook_deliveries_for(endpoint, webhooks.LOG_SIZE),
        "log_size": webhooks.LOG_SIZE,
    }
    return render(
        request, "notices/webhook_detail.html", context, status=400 if form.errors else 200
    )


@login_required
@require_POST
def webhook_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint_for_user(request, pk)
    if request.POST.get("enabled") == "1":
        webhooks.endpoint_enable(endpoint=endpoint)
        messages.success(request, ENDPOINT_ON)
    else:
        webhooks.endpoint_disable(endpoint=endpoint)
        messages.success(request, ENDPOINT_OFF)
    return redirect("webhook_detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint_for_user(request, pk)
    try:
        webhooks.endpoint_send_test(endpoint=endpoint)
    except webhooks.EndpointRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, TEST_QUEUED)
    return redirect("webhook_detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_secret(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint_for_user(request, pk)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Make a new signing secret for {endpoint.url}?",
            consequences=["the current secret: your receiver must use the new one from now on"],
            button="Make a new secret",
            cancel_url=reverse("webhook_detail", args=[endpoint.pk]),
        )
    webhooks.endpoint_secret_rotate(endpoint=endpoint)
    messages.success(request, SECRET_ROTATED)
    return redirect("webhook_detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint_for_user(request, pk)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Delete the webhook endpoint {endpoint.url}?",
            consequences=["the endpoint and its signing secret", "its delivery log"],
            keeps=["your receiver itself: Candor only stops sending to it"],
            button="Delete endpoint",
            cancel_url=reverse("webhook_detail", args=[endpoint.pk]),
        )
    webhooks.endpoint_delete(endpoint=endpoint)
    messages.success(request, ENDPOINT_DELETED)
    return redirect("webhooks")
