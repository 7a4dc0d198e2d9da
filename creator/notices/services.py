"""State changes of notices: notify a creator (in the app and by email), mark notices read."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from creator.accounts.models import User
from creator.notices.models import Notice

log = logging.getLogger(__name__)

LINK_NOT_RELATIVE = "A notice's link is a path on this site, such as /subjects/12/."


def _is_relative(link: str) -> bool:
    # "//host" and "/\host" are read by browsers as another site.
    return link.startswith("/") and not link.startswith(("//", "/\\"))


def notify(
    *,
    user: User,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    email: bool = True,
) -> Notice:
    """Record a notice for `user` and, once the transaction commits, email it to them.

    An email that cannot be sent is logged and dropped: the notice in the app still stands,
    and the caller's work is never undone by a mail server.
    """
    if link and not _is_relative(link):
        raise ValueError(LINK_NOT_RELATIVE)
    title = " ".join(title.split())  # one line: it is also the email's subject
    notice = Notice.objects.create(user=user, kind=kind, title=title, body=body, link=link)
    if email and user.email:
        address = user.email
        transaction.on_commit(lambda: _email(notice=notice, address=address))
    return notice


def _email(*, notice: Notice, address: str) -> None:
    lines = [notice.title]
    if notice.body:
        lines += ["", notice.body]
    if notice.link:
        lines += ["", f"{settings.SITE_URL}{notice.link}"]
    lines += ["", f"All your notifications: {settings.SITE_URL}{reverse('notices')}"]
    try:
        send_mail(
            subject=f"[{settings.SITE_NAME}] {notice.title}",
            message="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[address],
        )
    except OSError:  # smtplib's errors are OSErrors too
        log.warning("Could not email notice %s to its creator.", notice.pk, exc_info=True)


def notices_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark a creator's unread notices read (all of them when `ids` is None); returns how many."""
    notices = Notice.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        notices = notices.filter(pk__in=list(ids))
    return notices.update(read_at=timezone.now())
