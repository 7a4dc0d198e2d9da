"""Destructive actions ask first, say exactly what goes, and work without JavaScript."""

import html

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from creator.likeness import services
from creator.likeness.models import Consent, Subject
from creator.studio.models import PersonalModel
from tests.conftest import CONFIRM, committing


def text(response) -> str:
    return html.unescape(response.content.decode())


def granted(subject) -> Consent:
    return Consent.objects.create(
        subject=subject, method=Consent.Method.SELFIE, status=Consent.Status.GRANTED,
        granted_at=timezone.now(),
    )  # fmt: skip


def test_deleting_a_subject_asks_first_and_names_what_goes(alice_client, alice_subject):
    url = reverse("subject_delete", args=[alice_subject.pk])
    page = alice_client.post(url)
    assert page.status_code == 200
    body = text(page)
    assert "Delete subject “Alice” and its photos and models" in body
    assert "0 reference photo(s) of Alice" in body
    assert 'name="confirm" value="yes"' in body and f'action="{url}"' in body
    assert Subject.objects.filter(pk=alice_subject.pk).exists()

    with committing():
        done = alice_client.post(url, CONFIRM)
    assert done.status_code == 302
    assert not Subject.objects.filter(pk=alice_subject.pk).exists()


def test_the_subject_page_says_it_deletes_the_subject_not_the_account(alice_client, alice_subject):
    page = text(alice_client.get(reverse("subject_detail", args=[alice_subject.pk])))
    assert "Delete subject “Alice” and its photos and models" in page


def test_revoking_consent_asks_first(alice_client, alice_subject):
    consent = granted(alice_subject)
    url = reverse("consent_revoke", args=[alice_subject.pk])
    assert "Revoke consent, delete Alice's models and take their images down" in text(
        alice_client.post(url)
    )
    consent.refresh_from_db()
    assert consent.status == Consent.Status.GRANTED

    with committing():
        alice_client.post(url, CONFIRM)
    consent.refresh_from_db()
    assert consent.status == Consent.Status.REVOKED


def test_deleting_a_model_asks_first(alice_client, alice_subject):
    model = PersonalModel.objects.create(
        subject=alice_subject, consent=granted(alice_subject), name="Alice · model 1"
    )
    url = reverse("model_delete", args=[model.pk])
    assert "Delete model “Alice · model 1”" in text(alice_client.post(url))
    assert PersonalModel.objects.filter(pk=model.pk).exists()
    with committing():
        alice_client.post(url, CONFIRM)
    assert not PersonalModel.objects.filter(pk=model.pk).exists()


def test_the_person_withdrawing_through_their_link_is_asked_first(alice, alice_subject):
    other = Subject.objects.create(owner=alice, kind=Subject.Kind.OTHER, name="Sam")
    consent, token = services.consent_link_create(subject=other)
    Consent.objects.filter(pk=consent.pk).update(
        status=Consent.Status.GRANTED, granted_at=timezone.now()
    )
    person = Client()
    url = reverse("consent_link_revoke", args=[token])
    assert "Withdraw my consent" in text(person.post(url))
    consent.refresh_from_db()
    assert consent.status == Consent.Status.GRANTED
    with committing():
        person.post(url, CONFIRM)
    consent.refresh_from_db()
    assert consent.status == Consent.Status.REVOKED
