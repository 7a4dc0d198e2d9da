from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "creator.studio"
    verbose_name = "Studio: personal models and generations"

    def ready(self):
        from creator.studio import signals  # noqa: F401 - revocation and files reach the studio
