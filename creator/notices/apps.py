from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "creator.notices"
    label = "notices"
    verbose_name = "Notifications"

    def ready(self):
        from creator.notices import receivers  # noqa: F401 - gallery posts become webhook events
