"""Signals the gallery sends, so that the creator apps can react without the gallery importing
them (it never does: see the import-linter contracts)."""

from django.dispatch import Signal

# A post went public, stopped being public, or was taken down (by the person shown, or with the
# consent it was made under). Sent with `post_id` (its uuid), `owner_id`, and `change`, one of
# "published", "unpublished", "taken_down"; after the transaction commits is the receiver's call.
post_changed = Signal()

PUBLISHED = "published"
UNPUBLISHED = "unpublished"
TAKEN_DOWN = "taken_down"
