from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


class HandleOrEmailBackend(ModelBackend):
    """Log in with either the public handle (with or without the @) or the email address."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        identifier = (username or kwargs.get("handle") or "").strip().removeprefix("@")
        if not identifier or password is None:
            return None
        User = get_user_model()
        matches = User.objects.filter(Q(handle__iexact=identifier) | Q(email__iexact=identifier))
        user = matches.first()
        if user is None:
            # Spend the same time as a real check so timing does not reveal which accounts exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
