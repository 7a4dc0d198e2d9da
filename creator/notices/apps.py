from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "creator.notices"
    label = "notices"
    verbose_name = "Notifications"
