from django.utils.functional import SimpleLazyObject

from creator.notices import selectors


def unread(request):
    """`unread_notices` for the navigation: counted (one query) only when a template uses it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notices": SimpleLazyObject(lambda: selectors.unread_count(user))}
