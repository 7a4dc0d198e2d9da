"""Sign up, log in and out, password change and reset, brute-force limits."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from creator.accounts.auth import KNOWN_DEVICE_COOKIE
from creator.accounts.forms import HANDLE_RESERVED, LOGIN_FAILED
from creator.accounts.models import EMAIL_TAKEN, HANDLE_INVALID, HANDLE_TAKEN, User
from creator.accounts.views import TOO_MANY_ATTEMPTS, TOO_MANY_FOR_ACCOUNT
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    from django.core.cache import cache

    cache.clear()


def signup(client, **overrides):
    data = {
        "handle": "carol",
        "email": "carol@example.com",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return client.post(reverse("signup"), data)


def test_it_signs_up_and_lands_on_the_dashboard(anonymous):
    response = signup(anonymous, handle="@Carol_99")

    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    user = User.objects.get()
    assert user.handle == "carol_99"
    assert user.check_password(PASSWORD)
    dashboard = anonymous.get(reverse("dashboard"))
    assert "Hello, @carol_99" in dashboard.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"handle": "Alice"}, HANDLE_TAKEN),
        ({"handle": "admin"}, HANDLE_RESERVED),
        ({"handle": "no spaces!"}, HANDLE_INVALID),
        ({"handle": "ab"}, HANDLE_INVALID),
        ({"email": "ALICE@example.com"}, EMAIL_TAKEN),
        ({"password1": "12345678", "password2": "12345678"}, "This password is entirely numeric."),
        ({"password1": "password", "password2": "password"}, "This password is too common."),
        ({"password2": "something else entirely"}, "The two password fields didn’t match."),
    ],
)
def test_it_refuses_a_bad_sign_up_with_a_specific_message(alice, anonymous, overrides, message):
    response = signup(anonymous, **overrides)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == 1


def test_it_logs_in_with_the_handle_or_the_email(alice):
    for identifier in ("alice", "@Alice", "ALICE@example.com"):
        client = Client()
        response = client.post(reverse("login"), {"username": identifier, "password": PASSWORD})
        assert response.status_code == 302, identifier
        assert response.url == reverse("dashboard")


def test_it_refuses_a_wrong_password(alice, anonymous):
    response = anonymous.post(reverse("login"), {"username": "alice", "password": "nope nope"})

    assert response.status_code == 200
    assert LOGIN_FAILED.replace("'", "&#x27;") in response.content.decode()
    assert anonymous.get(reverse("dashboard")).status_code == 302


def test_it_locks_out_a_brute_force_attempt_even_with_the_right_password(alice, settings):
    settings.LOGIN_RATE_LIMIT = 3
    attacker = Client()
    for _ in range(3):
        attacker.post(reverse("login"), {"username": "alice", "password": "guess"})

    response = attacker.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 429
    assert TOO_MANY_ATTEMPTS in response.content.decode()
    assert "_auth_user_id" not in attacker.session


def test_it_limits_guesses_against_one_account_from_many_addresses(alice, settings):
    settings.LOGIN_RATE_LIMIT = 3
    for n in range(3):
        Client(REMOTE_ADDR=f"10.0.0.{n}").post(
            reverse("login"), {"username": "alice", "password": "guess"}
        )

    response = Client(REMOTE_ADDR="10.0.0.99").post(
        reverse("login"), {"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 429


def log_in(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_guesses_by_handle_or_email_count_against_one_account(alice, settings):
    settings.LOGIN_RATE_LIMIT = 3
    for n, identifier in enumerate(("alice", "@Alice", " ALICE@example.com")):
        log_in(Client(REMOTE_ADDR=f"10.0.0.{n}"), identifier, "guess")

    response = log_in(Client(REMOTE_ADDR="10.0.0.99"), "alice@example.com")

    assert response.status_code == 429
    assert TOO_MANY_FOR_ACCOUNT in response.content.decode()


def test_guesses_at_a_name_that_is_no_account_are_counted_under_the_name(db, settings):
    settings.LOGIN_RATE_LIMIT = 2
    log_in(Client(REMOTE_ADDR="10.0.0.1"), "nobody", "guess")
    log_in(Client(REMOTE_ADDR="10.0.0.2"), "@NoBody", "guess")

    response = log_in(Client(REMOTE_ADDR="10.0.0.3"), "nobody")

    assert response.status_code == 429
    assert TOO_MANY_FOR_ACCOUNT in response.content.decode()
    assert log_in(Client(REMOTE_ADDR="10.0.0.3"), "somebody", "guess").status_code == 200


@pytest.fixture
def alices_device(alice) -> Client:
    """Alice's own browser: it logged in once, then logged out."""
    device = Client(REMOTE_ADDR="192.0.2.10")
    assert log_in(device, "alice").status_code == 302
    device.post(reverse("logout"))
    return device


def hammer(username, settings, address="10.6.6.6"):
    attacker = Client(REMOTE_ADDR=address)
    for _ in range(settings.LOGIN_RATE_LIMIT):
        log_in(attacker, username, "guess")
    return attacker


def test_the_owner_still_logs_in_from_a_known_device_while_the_account_is_under_attack(
    alice, alices_device, settings
):
    settings.LOGIN_RATE_LIMIT = 3
    hammer("alice", settings)

    assert log_in(alices_device, "alice").status_code == 302
    assert alices_device.get(reverse("dashboard")).status_code == 200

    fresh = log_in(Client(REMOTE_ADDR="192.0.2.11"), "alice")
    assert fresh.status_code == 429
    assert TOO_MANY_FOR_ACCOUNT in fresh.content.decode()
    assert int(fresh["Retry-After"]) > 0

    new_device = Client(REMOTE_ADDR="192.0.2.11")
    reset = new_device.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert reset.status_code == 302
    assert len(mail.outbox) == 1
    # The reset link logs the owner in and marks this browser as theirs.
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", mail.outbox[0].body).group(1)
    new = "a brand new passphrase 9"
    form_url = new_device.get(link).url
    new_device.post(form_url, {"new_password1": new, "new_password2": new})
    assert new_device.get(reverse("dashboard")).status_code == 200
    new_device.post(reverse("logout"))  # as a browser does: other cookies stay
    assert log_in(new_device, "alice", new).status_code == 302


def test_a_known_device_is_still_limited_per_address(alice, alices_device, settings):
    settings.LOGIN_RATE_LIMIT = 3
    hammer("bob", settings, address="192.0.2.10")  # the same network as Alice's device

    response = log_in(alices_device, "alice")

    assert response.status_code == 429
    assert TOO_MANY_ATTEMPTS in response.content.decode()


def test_a_known_device_that_keeps_guessing_is_limited_on_its_own(alice, alices_device, settings):
    settings.LOGIN_RATE_LIMIT = 2
    for n in range(2):
        alices_device.defaults["REMOTE_ADDR"] = f"10.1.0.{n}"
        log_in(alices_device, "alice", "guess")
    alices_device.defaults["REMOTE_ADDR"] = "10.1.0.9"

    assert log_in(alices_device, "alice").status_code == 429
    # Its failures were not counted against the account.
    assert log_in(Client(REMOTE_ADDR="10.2.0.1"), "alice").status_code == 302


def test_a_known_device_counts_only_for_its_own_account(alice, bob, settings):
    settings.LOGIN_RATE_LIMIT = 3
    bobs_device = Client(REMOTE_ADDR="192.0.2.20")
    assert log_in(bobs_device, "bob").status_code == 302
    bobs_device.post(reverse("logout"))
    hammer("alice", settings)

    assert log_in(bobs_device, "alice").status_code == 429


def test_a_forged_known_device_cookie_is_ignored(alice, settings):
    settings.LOGIN_RATE_LIMIT = 3
    hammer("alice", settings)
    forger = Client(REMOTE_ADDR="192.0.2.30")
    forger.cookies[KNOWN_DEVICE_COOKIE] = f"{alice.pk}:my-own-device"

    assert log_in(forger, "alice").status_code == 429


def test_it_limits_sign_ups_per_address(anonymous, settings):
    settings.SIGNUP_RATE_LIMIT = 2
    signup(Client(), handle="one", email="one@example.com")
    signup(Client(), handle="two", email="two@example.com")

    response = signup(Client(), handle="three", email="three@example.com")

    assert response.status_code == 429
    assert TOO_MANY_ATTEMPTS in response.content.decode()
    assert not User.objects.filter(handle="three").exists()


def test_logging_out_needs_a_post(alice_client):
    assert alice_client.get(reverse("logout")).status_code == 405
    response = alice_client.post(reverse("logout"))
    assert response.status_code == 302
    assert alice_client.get(reverse("dashboard")).status_code == 302


def test_every_form_post_needs_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403

    client.force_login(alice)
    assert client.post(reverse("logout")).status_code == 403


def test_it_changes_the_password(alice, alice_client):
    new = "an even better passphrase 7"
    response = alice_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)


def test_it_resets_a_forgotten_password_through_a_one_time_email_link(alice, anonymous):
    response = anonymous.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "@alice" in mail.outbox[0].body
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", mail.outbox[0].body).group(1)

    form_url = anonymous.get(link).url  # Django swaps the token for a session marker
    new = "a brand new passphrase 9"
    done = anonymous.post(form_url, {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)

    again = anonymous.get(link, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_a_reset_for_an_unknown_email_says_the_same_and_sends_nothing(db, anonymous):
    response = anonymous.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_it_limits_password_reset_requests(alice, anonymous, settings):
    settings.PASSWORD_RESET_RATE_LIMIT = 2
    for _ in range(2):
        anonymous.post(reverse("password_reset"), {"email": "alice@example.com"})
    response = anonymous.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 429
    assert len(mail.outbox) == 2
