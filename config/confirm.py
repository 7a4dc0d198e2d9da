"""A confirm step for destructive actions that works without JavaScript: the action's form posts
once; unless it carries `confirm=yes`, the answer is a page that says exactly what will go, with
a button that posts again, confirmed."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

CONFIRM_FIELD = "confirm"


def confirmed(request: HttpRequest) -> bool:
    return request.POST.get(CONFIRM_FIELD) == "yes"


def confirm_page(
    request: HttpRequest,
    *,
    title: str,
    consequences: list[str],
    button: str,
    cancel_url: str,
    keeps: list[str] | None = None,
) -> HttpResponse:
    context = {
        "title": title,
        "consequences": consequences,
        "keeps": keeps or [],
        "button": button,
        "cancel_url": cancel_url,
        "action": request.path,
        "carried": {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken",)},
    }
    return render(request, "confirm.html", context)
