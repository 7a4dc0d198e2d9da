from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_safe


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links; the mark is the SVG in static/.
    Not permanent: the static file's hashed name changes with it."""
    return redirect(static("img/candor.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("", include("creator.accounts.urls")),
    path("", include("creator.jobs.urls")),
    path("", include("creator.notices.urls")),
    path("", include("creator.likeness.urls")),
    path("", include("creator.studio.urls")),
    path("", include("creator.api.urls")),
    path("", include("gallery.urls")),
]
