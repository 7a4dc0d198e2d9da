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
    choices: list[tuple[str, str]] | None = None,
) -> HttpResponse:
    """`choices`: optional checkboxes (name, label) that go with the confirmed action."""
    context = {
        "title": title,
        "consequences": consequences,
        "keeps": keeps or [],
        "button": button,
        "cancel_url": cancel_url,
        "action": request.path,
        "choices": [(name, label, request.POST.get(name) == "on") for name, label in choices or []],
        "carried": {
            k: v
            for k, v in request.POST.items()
            if k not in ("csrfmiddlewaretoken", CONFIRM_FIELD, *(n for n, _ in choices or []))
        },
    }
    return render(request, "confirm.html", context)
