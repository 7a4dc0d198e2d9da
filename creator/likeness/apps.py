from django.apps import AppConfig


class LikenessConfig(AppConfig):
    name = "creator.likeness"
    verbose_name = "Likeness: subjects, photos, consent"

    def ready(self):
        from creator.likeness import signals  # noqa: F401 - files and consents follow their rows
