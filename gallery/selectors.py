from django.db.models import QuerySet

from gallery.models import GalleryShare, Post


def posts_for_user(user) -> QuerySet[Post]:
    return Post.objects.filter(owner=user).select_related("owner")


def public_posts(user) -> QuerySet[Post]:
    return Post.objects.filter(owner=user, visibility=Post.Visibility.PUBLIC).select_related(
        "owner"
    )


def shared_gallery_posts(share: GalleryShare) -> QuerySet[Post]:
    return Post.objects.filter(
        owner=share.owner,
        visibility__in=(Post.Visibility.PUBLIC, Post.Visibility.PRIVATE),
        consent_revoked_at=None,
        withdrawn_at=None,
        consent_private=False,
    ).select_related("owner")


def active_gallery_shares(user) -> QuerySet[GalleryShare]:
    return GalleryShare.objects.filter(owner=user, revoked_at=None)


def posts_by_ids(user, ids) -> QuerySet[Post]:
    """A creator's own posts among these ids (others' are left out)."""
    return Post.objects.filter(owner=user, pk__in=list(ids))


def posts_made_under(consent_ids) -> QuerySet[Post]:
    """Every post made under these consents, whoever owns it (the person shown's own page)."""
    return Post.objects.filter(consent_id__in=list(consent_ids)).select_related("owner")
