from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("creator.accounts.urls")),
    path("", include("creator.jobs.urls")),
    path("", include("creator.notices.urls")),
    path("", include("creator.likeness.urls")),
    path("", include("creator.studio.urls")),
    path("", include("gallery.urls")),
]
