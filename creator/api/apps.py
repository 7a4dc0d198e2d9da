from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "creator.api"
    label = "api"
    verbose_name = "REST API"
