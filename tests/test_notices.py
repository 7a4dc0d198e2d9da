"""Notifications: a notice in the app, an email after commit, the unread badge, the list page."""

import logging

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from creator.notices import services, views
from creator.notices.models import Notice

Kind = Notice.Kind


def notify(user, **fields) -> Notice:
    defaults = {
        "kind": Kind.TRAINING_SUCCEEDED,
        "title": "Your model of Alice is trained.",
        "link": "/dashboard/",
        "email": False,
    }
    return services.notify(user=user, **{**defaults, **fields})


def test_it_records_a_notice_and_emails_it_once_the_transaction_commits(
    alice, settings, django_capture_on_commit_callbacks
):
    settings.SITE_NAME = "Candor"
    settings.SITE_URL = "https://candor.example"

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notice = services.notify(
            user=alice,
            kind=Kind.CONSENT_GIVEN,
            title="Bob agreed to be trained on.",
            body="You can now train a model of Bob.",
            link="/subjects/7/",
        )
        assert mail.outbox == []  # nothing leaves before the commit

    assert len(callbacks) == 1
    assert Notice.objects.get() == notice
    assert (notice.user, notice.kind, notice.read_at) == (alice, "consent_given", None)
    [email] = mail.outbox
    assert email.to == ["alice@example.com"]
    assert email.subject == "[Candor] Bob agreed to be trained on."
    assert "You can now train a model of Bob." in email.body
    assert "https://candor.example/subjects/7/" in email.body


def test_it_sends_no_email_when_asked_not_to(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notify(alice, email=False)

    assert Notice.objects.count() == 1
    assert mail.outbox == []


def test_it_sends_no_email_to_a_creator_without_an_address(
    alice, django_capture_on_commit_callbacks
):
    alice.email = ""
    alice.save()

    with django_capture_on_commit_callbacks(execute=True):
        notify(alice, email=True)

    assert Notice.objects.count() == 1
    assert mail.outbox == []


def test_a_mail_server_that_is_down_breaks_nothing(
    alice, settings, caplog, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 5

    with (
        caplog.at_level(logging.WARNING, logger="creator.notices.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notice = notify(alice, email=True)

    assert Notice.objects.get() == notice
    assert "Could not email notice" in caplog.text


def test_it_refuses_a_link_to_another_site(alice):
    with pytest.raises(ValueError, match=services.LINK_NOT_RELATIVE):
        notify(alice, link="https://evil.example/")
    with pytest.raises(ValueError, match=services.LINK_NOT_RELATIVE):
        notify(alice, link="//evil.example/")
    assert not Notice.objects.exists()


def test_the_navigation_shows_the_unread_count_on_any_page(alice, bob, alice_client):
    notify(alice)
    notify(alice)
    services.notices_mark_read(user=alice, ids=[notify(alice).pk])
    notify(bob)

    html = alice_client.get(reverse("dashboard")).content.decode()

    assert 'aria-label="2 unread notifications"' in html
    assert 'Notifications <span class="badge">2</span>' in html


def test_the_navigation_shows_no_badge_when_all_is_read(alice, alice_client):
    html = alice_client.get(reverse("home")).content.decode()

    assert ">Notifications</a>" in html
    assert "unread notification" not in html


def test_the_unread_count_costs_one_query(alice, rf, django_assert_num_queries):
    from creator.notices.context_processors import unread

    notify(alice)
    request = rf.get("/")
    request.user = alice
    context = unread(request)
    with django_assert_num_queries(1):
        assert context["unread_notices"] == 1
        assert str(context["unread_notices"]) == "1"


def test_the_list_shows_a_creators_own_notices_newest_first(alice, bob, alice_client):
    notify(alice, title="Training of Alice failed.", body="Out of memory.")
    notify(alice, title="Bob revoked his consent.")
    notify(bob, title="Bob's secret notice.")

    html = alice_client.get(reverse("notices")).content.decode()

    assert html.index("Bob revoked his consent.") < html.index("Training of Alice failed.")
    assert "Out of memory." in html
    assert "secret" not in html
    assert 'class="card notice unread"' in html
    assert "Mark all as read" in html
    assert " UTC</time>" in html


def test_opening_a_notice_marks_it_read_and_follows_its_link(alice, alice_client):
    notice = notify(alice, link="/dashboard/")

    response = alice_client.post(reverse("notice_open", args=[notice.pk]))

    assert response.status_code == 302
    assert response.url == "/dashboard/"
    notice.refresh_from_db()
    assert notice.read_at is not None


def test_opening_a_notice_without_a_link_goes_back_to_the_list(alice, alice_client):
    notice = notify(alice, link="")

    response = alice_client.post(reverse("notice_open", args=[notice.pk]))

    assert response.url == reverse("notices")


def test_it_checks_owner(alice, bob_client):
    notice = notify(alice)

    response = bob_client.post(reverse("notice_open", args=[notice.pk]))

    assert response.status_code == 404
    notice.refresh_from_db()
    assert notice.read_at is None


def test_opening_a_notice_is_post_only(alice, alice_client):
    notice = notify(alice)

    assert alice_client.get(reverse("notice_open", args=[notice.pk])).status_code == 405


def test_mark_all_as_read_reads_only_the_creators_own(alice, bob, alice_client):
    notify(alice)
    notify(alice)
    theirs = notify(bob)

    response = alice_client.post(reverse("notices_read_all"), follow=True)

    assert not Notice.objects.filter(user=alice, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert views.ALL_READ in response.content.decode()


def test_mark_all_as_read_is_post_only(alice, alice_client):
    notify(alice)

    assert alice_client.get(reverse("notices_read_all")).status_code == 405
    assert Notice.objects.filter(read_at__isnull=True).count() == 1


def test_mark_all_as_read_needs_a_csrf_token(alice):
    notify(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.post(reverse("notices_read_all")).status_code == 403
    assert Notice.objects.filter(read_at__isnull=True).count() == 1


def test_mark_read_takes_a_list_of_ids(alice, bob):
    first, second = notify(alice), notify(alice)
    theirs = notify(bob)

    assert services.notices_mark_read(user=alice, ids=[first.pk, theirs.pk]) == 1

    for notice in (first, second, theirs):
        notice.refresh_from_db()
    assert first.read_at is not None
    assert second.read_at is None
    assert theirs.read_at is None


@pytest.mark.parametrize("name", ["notices", "notices_read_all"])
def test_anonymous_is_sent_to_log_in(db, anonymous, name):
    response = (anonymous.get if name == "notices" else anonymous.post)(reverse(name))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
