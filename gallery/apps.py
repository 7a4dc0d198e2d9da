from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Gallery"

    def ready(self):
        from gallery import postkit, services  # noqa: F401 - connect the file-deleting signals
