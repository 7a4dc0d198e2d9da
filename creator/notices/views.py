"""Pages of notices: the list, opening one, marking all read."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from creator.notices import selectors, services
from creator.notices.models import Notice

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
