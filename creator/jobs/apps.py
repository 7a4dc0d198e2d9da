from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "creator.jobs"
    verbose_name = "Background jobs"
