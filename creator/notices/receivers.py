"""What notices hear from the gallery: posts that change state become webhook events.

The gallery cannot import the creator apps, so it sends a signal (gallery/signals.py)."""

from django.dispatch import receiver
from django.urls import reverse

from creator.notices import webhooks
from gallery.signals import PUBLISHED, post_changed


@receiver(post_changed)
def _post_changed_sent(sender, post_id, owner_id, change, **kwargs):
    data = {
        "post_id": str(post_id),
        "state": change,
        "url": webhooks.site_url(reverse("post_detail", args=[post_id])),
    }
    if change == PUBLISHED:
        data["public_url"] = webhooks.site_url(reverse("public_post", args=[post_id]))
    webhooks.emit(user=owner_id, event=f"post.{change}", data=data)
