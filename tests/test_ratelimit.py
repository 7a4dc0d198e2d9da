"""Rate limits: the client address behind proxies, the sliding window, Retry-After on every 429."""

import os
import subprocess
import sys

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from config import ratelimit
from creator.accounts.views import TOO_MANY_ATTEMPTS
from creator.likeness import services as likeness
from creator.likeness import views as likeness_views
from creator.likeness.models import Subject
from gallery.verify_views import TOO_MANY
from tests.conftest import PASSWORD, ROOT

PROXY = "10.9.9.9"


class Clock:
    """Stands in for the `time` module inside config.ratelimit."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock(1_000_000.0)
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def behind_proxy(forwarded_for: str) -> Client:
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)


def verify_api(client: Client):
    # No image: answered 400, and still counted, so nothing slow runs.
    return client.post(reverse("verify_api"))


# --- the client address ---------------------------------------------------------------------


def address(hops: int, settings, forwarded_for: str | None) -> str:
    settings.TRUSTED_PROXY_HOPS = hops
    extra = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    return ratelimit.client_ip(RequestFactory().get("/", REMOTE_ADDR=PROXY, **extra))


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "expected"),
    [
        (0, "6.6.6.6, 203.0.113.7", PROXY),
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6,203.0.113.7 ", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 192.0.2.1", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),
        (1, None, PROXY),
        (1, " , ", PROXY),
    ],
)
def test_the_client_address_is_the_one_the_outermost_trusted_proxy_appended(
    settings, hops, forwarded_for, expected
):
    assert address(hops, settings, forwarded_for) == expected


def test_a_spoofed_leftmost_forwarded_address_does_not_get_a_fresh_counter(settings):
    settings.TRUST_X_FORWARDED_FOR = True  # what an install behind one proxy had before
    settings.TRUSTED_PROXY_HOPS = 1
    settings.VERIFY_RATE_LIMIT = 2
    assert verify_api(behind_proxy("6.6.6.1, 203.0.113.7")).status_code == 400
    assert verify_api(behind_proxy("6.6.6.2, 203.0.113.7")).status_code == 400

    assert verify_api(behind_proxy("6.6.6.3, 203.0.113.7")).status_code == 429
    assert verify_api(behind_proxy("203.0.113.7")).status_code == 429
    # Someone else behind the same proxy has their own counter.
    assert verify_api(behind_proxy("6.6.6.3, 198.51.100.8")).status_code == 400


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUST")}
    clean.update(CANDOR_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TRUSTED_PROXY_HOPS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True
    )


def test_trust_x_forwarded_for_still_works_and_means_one_proxy(tmp_path):
    assert load_settings(tmp_path).stdout.strip() == "0"
    assert load_settings(tmp_path, TRUST_X_FORWARDED_FOR="true").stdout.strip() == "1"
    assert load_settings(tmp_path, TRUSTED_PROXY_HOPS="2").stdout.strip() == "2"
    conflict = load_settings(tmp_path, TRUST_X_FORWARDED_FOR="true", TRUSTED_PROXY_HOPS="0")
    assert conflict.returncode != 0
    assert "TRUST_X_FORWARDED_FOR=true needs TRUSTED_PROXY_HOPS" in conflict.stderr


# --- the sliding window ---------------------------------------------------------------------


def test_hits_just_before_and_after_a_minute_boundary_count_together():
    def attempt(now):
        return ratelimit.attempt("test", "client", limit=3, window=60, now=now)

    assert [attempt(58.0), attempt(59.0), attempt(59.5)] == [0, 0, 0]

    assert attempt(61.0) == 57  # a fixed minute would start again at 60
    assert attempt(117.5) == 1
    assert attempt(118.5) == 0  # the hit at 58 has left the window
    assert attempt(118.6) == 1  # refused attempts were not counted: 59 frees the next slot


def test_hits_and_waits_are_kept_apart_per_scope_and_key():
    ratelimit.hit("a", "one", limit=1, window=60, now=0.0)

    assert ratelimit.retry_after("a", "one", limit=1, window=60, now=10.0) == 50
    assert ratelimit.retry_after("a", "ONE", limit=1, window=60, now=10.0) == 50
    assert ratelimit.retry_after("a", "two", limit=1, window=60, now=10.0) == 0
    assert ratelimit.retry_after("b", "one", limit=1, window=60, now=10.0) == 0


def test_the_window_slides_across_the_minute_for_real_requests(settings, clock):
    settings.VERIFY_RATE_LIMIT = 2
    clock.now = 60 * 1000 - 1.0  # one second before a minute starts
    assert verify_api(Client()).status_code == 400
    assert verify_api(Client()).status_code == 400

    clock.now += 2
    response = verify_api(Client())

    assert response.status_code == 429
    assert response["Retry-After"] == "58"


# --- Retry-After on every 429 ---------------------------------------------------------------


def test_login_refusals_say_when_to_try_again(alice, settings, clock):
    settings.LOGIN_RATE_LIMIT = 2
    attacker = Client()
    for _ in range(2):
        attacker.post(reverse("login"), {"username": "alice", "password": "guess"})
    clock.now += 100

    response = attacker.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 429
    assert TOO_MANY_ATTEMPTS in response.content.decode()
    assert response["Retry-After"] == str(15 * 60 - 100)


def test_sign_up_refusals_say_when_to_try_again(db, settings, clock):
    settings.SIGNUP_RATE_LIMIT = 1
    Client().post(reverse("signup"), {"handle": "one"})

    response = Client().post(reverse("signup"), {"handle": "two"})

    assert response.status_code == 429
    assert TOO_MANY_ATTEMPTS in response.content.decode()
    assert response["Retry-After"] == "3600"


def test_password_reset_refusals_say_when_to_try_again(alice, settings, clock):
    settings.PASSWORD_RESET_RATE_LIMIT = 1
    Client().post(reverse("password_reset"), {"email": "alice@example.com"})

    response = Client().post(reverse("password_reset"), {"email": "alice@example.com"})

    assert response.status_code == 429
    assert TOO_MANY_ATTEMPTS in response.content.decode()
    assert response["Retry-After"] == "3600"


def test_selfie_refusals_are_429_and_say_when_to_try_again(
    alice_client, alice_subject, monkeypatch, clock
):
    monkeypatch.setattr(likeness_views, "SELFIE_ATTEMPTS", 1)
    url = reverse("consent_selfie", args=[alice_subject.pk])
    assert alice_client.post(url).status_code == 400  # no selfie in the form

    response = alice_client.post(url)

    assert response.status_code == 429
    assert likeness_views.TOO_MANY_SELFIES in response.content.decode()
    assert response["Retry-After"] == str(likeness_views.SELFIE_WINDOW)


def test_consent_link_selfie_refusals_are_429_and_say_when_to_try_again(alice, monkeypatch, clock):
    monkeypatch.setattr(likeness_views, "SELFIE_ATTEMPTS", 1)
    subject = Subject.objects.create(owner=alice, kind=Subject.Kind.OTHER, name="Barack")
    _, token = likeness.consent_link_create(subject=subject)
    url = reverse("consent_link", args=[token])
    assert Client().post(url, {"answer": "agree"}).status_code == 400  # the box is not ticked

    response = Client().post(url, {"answer": "agree"})

    assert response.status_code == 429
    assert likeness_views.TOO_MANY_SELFIES in response.content.decode()
    assert response["Retry-After"] == str(likeness_views.SELFIE_WINDOW)


@pytest.mark.parametrize("url_name", ["verify_api", "verify_page"])
def test_verify_refusals_say_when_to_try_again(db, settings, clock, url_name):
    settings.VERIFY_RATE_LIMIT = 1
    assert Client().post(reverse(url_name)).status_code == 400
    clock.now += 15

    response = Client().post(reverse(url_name))

    assert response.status_code == 429
    assert TOO_MANY in response.content.decode().replace("&#x27;", "'")
    assert response["Retry-After"] == "45"
