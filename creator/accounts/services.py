"""State changes of accounts."""

from django.db import transaction

from creator.accounts.models import User


def account_delete(*, user: User) -> None:
    """Delete an account and everything it owns. What depends on it goes by cascade, and the
    other contexts' delete signals take their files, jobs and consents with it (consents stay
    as revoked records, so credentials of images already made say so)."""
    with transaction.atomic():
        user.delete()
