"""What an uploaded picture may be (a reference photo, a selfie, an image to label): one set of
limits, read from settings, for every upload form that takes one."""

from django.conf import settings

from imaging.decode import PHOTO_KINDS
from imaging.limits import ImageLimits


def photo_limits() -> ImageLimits:
    """Bytes, pixels, shorter side and kinds of a still picture; verify checks the same bytes
    and pixels (with its own smaller minimum)."""
    return ImageLimits(
        max_bytes=settings.PHOTO_MAX_BYTES,
        max_pixels=settings.PHOTO_MAX_PIXELS,
        min_side=settings.PHOTO_MIN_SIDE,
        kinds=PHOTO_KINDS,
        animated=False,
    )
