from django.db.models import QuerySet

from gallery.models import Post


def posts_for_user(user) -> QuerySet[Post]:
    return Post.objects.filter(owner=user)
