from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "creator.accounts"
    verbose_name = "Accounts"
