from django.urls import path

from creator.api.api import api

urlpatterns = [path("api/v1/", api.urls)]
