from django.apps import AppConfig


class CreatorConfig(AppConfig):
    name = "creator"
    verbose_name = "Creators"

    def ready(self):
        from creator import subjects  # noqa: F401 - connects the file-deleting signals
