"""Personal API tokens: made and revoked on the account page or the command line, shown once,
kept hashed, checked per request with scopes and a rate limit."""

import hashlib
import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from creator.accounts import tokens
from creator.accounts.models import TOKEN_NAME_MAX_LENGTH, TOKENS_MAX_ACTIVE, ApiToken
from creator.accounts.tokens import (
    SCOPES,
    TOKEN_NAME_REQUIRED,
    TOKEN_NAME_TOO_LONG,
    TOKEN_SCOPE_UNKNOWN,
    TOKEN_SCOPES_REQUIRED,
    TOKENS_TOO_MANY,
    token_authenticate,
    token_create,
    token_has_scope,
    token_rate_limited,
    token_revoke,
)
from creator.accounts.views import TOKEN_REVOKED
from tests.conftest import CONFIRM, ROOT

ACCOUNT = reverse("account")
CREATE = reverse("token_create")
CLI_MAIN = "from config.cli import main; main()"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


def make_token(client: Client, name: str = "backup script", scopes=("read",)):
    return client.post(CREATE, {"name": name, "scopes": list(scopes)})


def says(response, message: str) -> bool:
    return escape(message) in response.content.decode()


def revoke_url(token: ApiToken) -> str:
    return reverse("token_revoke", args=[token.pk])


def shown_token(html: str) -> str | None:
    """The raw token the page shows, if any."""
    start = html.find('class="token-raw">')
    if start < 0:
        return None
    start += len('class="token-raw">')
    return html[start : html.index("<", start)]


# --- the account page --------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_then_never_again(alice, alice_client):
    response = make_token(alice_client, "backup script", ["read", "train"])
    assert response.status_code == 302
    assert response.url == ACCOUNT + "#api-tokens"

    page = alice_client.get(ACCOUNT).content.decode()
    raw = shown_token(page)
    assert raw and raw.startswith("cnd_")
    assert "shown only this once" in page
    token = token_authenticate(raw)
    assert token.user == alice
    assert token.name == "backup script"
    assert token.scopes == ["read", "train"]

    again = alice_client.get(ACCOUNT).content.decode()
    assert shown_token(again) is None
    assert raw not in again
    assert "backup script" in again and f"{token.prefix}…" in again  # still listed


def test_the_list_shows_name_prefix_scopes_in_words_and_last_use(alice, alice_client):
    used, _ = token_create(user=alice, name="phone app", scopes=["read", "write"])
    ApiToken.objects.filter(pk=used.pk).update(last_used_at=timezone.now() - timedelta(hours=2))
    token_create(user=alice, name="laptop", scopes=["train"])

    page = alice_client.get(ACCOUNT).content.decode()

    assert "phone app" in page and f"{used.prefix}…" in page
    assert "Read · Write" in page
    assert "last used 2\xa0hours ago" in page
    assert "Train &amp; generate" in page and "never used" in page


def test_a_token_is_stored_hashed(alice):
    token, raw = token_create(user=alice, name="ci", scopes=["read"])

    token.refresh_from_db()
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:12]
    stored = ApiToken.objects.filter(pk=token.pk).values_list().get()
    assert raw not in [str(value) for value in stored]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "scopes": ["read"]}, TOKEN_NAME_REQUIRED),
        ({"name": "   ", "scopes": ["read"]}, TOKEN_NAME_REQUIRED),
        ({"name": "x" * (TOKEN_NAME_MAX_LENGTH + 1), "scopes": ["read"]}, TOKEN_NAME_TOO_LONG),
        ({"name": "ci"}, TOKEN_SCOPES_REQUIRED),
        ({"name": "ci", "scopes": ["read", "admin"]}, TOKEN_SCOPE_UNKNOWN),
    ],
)
def test_it_refuses_a_bad_token_with_a_specific_message(alice, alice_client, data, message):
    response = alice_client.post(CREATE, data)

    assert response.status_code == 400
    assert says(response, message)
    assert not ApiToken.objects.exists()


def test_it_refuses_more_than_the_most_active_tokens(alice, alice_client):
    for n in range(TOKENS_MAX_ACTIVE):
        token_create(user=alice, name=f"token {n}", scopes=["read"])

    response = make_token(alice_client, "one too many")

    assert response.status_code == 400
    assert says(response, TOKENS_TOO_MANY)
    assert ApiToken.objects.count() == TOKENS_MAX_ACTIVE

    token_revoke(token=ApiToken.objects.first())  # a revoked one frees its slot
    assert make_token(alice_client, "now it fits").status_code == 302


def test_it_revokes_a_token_after_a_confirm_step(alice, alice_client):
    token, raw = token_create(user=alice, name="old script", scopes=["read"])

    confirm = alice_client.post(revoke_url(token))
    assert confirm.status_code == 200
    assert says(confirm, "Revoke the API token “old script”?")
    assert token_authenticate(raw) is not None

    response = alice_client.post(revoke_url(token), CONFIRM)
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token_authenticate(raw) is None
    page = alice_client.get(ACCOUNT)
    assert says(page, TOKEN_REVOKED.format(name="old script"))
    assert f"{token.prefix}…" not in page.content.decode()  # no longer listed


def test_revoking_needs_a_post(alice, alice_client):
    token, _ = token_create(user=alice, name="ci", scopes=["read"])
    assert alice_client.get(revoke_url(token)).status_code == 405
    assert alice_client.get(CREATE).status_code == 405


def test_it_checks_owner(alice, bob_client):
    token, raw = token_create(user=alice, name="alice's", scopes=["read"])

    assert bob_client.post(revoke_url(token)).status_code == 404
    assert bob_client.post(revoke_url(token), CONFIRM).status_code == 404

    token.refresh_from_db()
    assert token.revoked_at is None
    assert token_authenticate(raw) == token
    assert "alice's" not in bob_client.get(ACCOUNT).content.decode()


def test_anonymous_gets_the_login_page(alice, anonymous):
    token, _ = token_create(user=alice, name="ci", scopes=["read"])
    for response in (anonymous.post(CREATE, {"name": "x"}), anonymous.post(revoke_url(token))):
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    assert ApiToken.objects.count() == 1


def test_the_token_forms_need_a_csrf_token(alice):
    token, _ = token_create(user=alice, name="ci", scopes=["read"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert make_token(client, "sneaky").status_code == 403
    assert client.post(revoke_url(token), CONFIRM).status_code == 403

    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None


# --- checking a token on each request -------------------------------------------------------


def test_a_token_authenticates_until_it_is_revoked(alice):
    token, raw = token_create(user=alice, name="ci", scopes=["read"])
    assert token_authenticate(raw) == token

    token_revoke(token=token)
    revoked_at = token.revoked_at
    token_revoke(token=token)  # again: nothing changes

    token.refresh_from_db()
    assert token.revoked_at == revoked_at
    assert token_authenticate(raw) is None


def test_a_token_of_an_inactive_user_does_not_authenticate(alice):
    _, raw = token_create(user=alice, name="ci", scopes=["read"])
    alice.is_active = False
    alice.save()

    assert token_authenticate(raw) is None


@pytest.mark.parametrize(
    "raw", ["", "cnd_", "Bearer cnd_x", "cnd_" + "A" * 43, "xyz_" + "A" * 43, "cnd_" + "A" * 44]
)
def test_a_malformed_or_unknown_token_does_not_authenticate(alice, raw):
    token_create(user=alice, name="ci", scopes=["read"])
    assert token_authenticate(raw) is None


def test_a_token_does_only_what_its_scopes_allow(alice):
    token, _ = token_create(user=alice, name="reader", scopes=["read"])

    assert token_has_scope(token, "read")
    assert not token_has_scope(token, "write")
    assert not token_has_scope(token, "train")
    assert not token_has_scope(token, "admin")
    assert SCOPES == ("read", "write", "train")


def test_last_use_is_written_at_most_once_a_minute(alice):
    token, raw = token_create(user=alice, name="ci", scopes=["read"])
    assert token.last_used_at is None

    first = token_authenticate(raw).last_used_at
    assert first is not None
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at == first  # a second request within the minute writes nothing

    a_minute_ago = first - timedelta(seconds=61)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=a_minute_ago)
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at > first


def test_a_token_is_told_to_wait_past_its_rate_limit(alice, bob, settings):
    settings.API_RATE_LIMIT = 3
    token, _ = token_create(user=alice, name="busy", scopes=["read"])
    other, _ = token_create(user=alice, name="quiet", scopes=["read"])

    assert [token_rate_limited(token) for _ in range(3)] == [None, None, None]
    wait = token_rate_limited(token)

    assert wait is not None and 0 < wait <= tokens.RATE_WINDOW
    assert token_rate_limited(other) is None  # each token has its own limit


# --- the command line -------------------------------------------------------------------------


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_only_a_token_that_authenticates(alice):
    out, err = run_command("create", "--user", "alice", "--name", "nightly backup")

    raw = out.strip()
    assert "\n" not in raw
    token = token_authenticate(raw)
    assert token.user == alice
    assert token.name == "nightly backup"
    assert token.scopes == list(SCOPES)
    assert "nightly backup" in err and "@alice" in err and raw not in err


def test_the_command_takes_scopes_and_lists_and_revokes(alice):
    out, _ = run_command("create", "--user", "@Alice", "--name", "reader", "--scopes", "read")
    token = token_authenticate(out.strip())
    assert token.scopes == ["read"]

    listed, _ = run_command("list", "--user", "alice")
    assert token.prefix in listed and "reader" in listed and out.strip() not in listed

    run_command("revoke", "--prefix", token.prefix)
    assert token_authenticate(out.strip()) is None


def test_the_command_refuses_an_unknown_user_or_scope(alice):
    with pytest.raises(CommandError, match="No user with the handle @nobody"):
        run_command("create", "--user", "nobody", "--name", "x")
    with pytest.raises(CommandError, match=TOKEN_SCOPE_UNKNOWN):
        run_command("create", "--user", "alice", "--name", "x", "--scopes", "read,admin")
    assert not ApiToken.objects.exists()


def test_candor_api_token_create_works_from_a_shell(alice, worker_env):
    candor = Path(sys.executable).with_name("candor")
    command = [str(candor)] if candor.exists() else [sys.executable, "-c", CLI_MAIN]
    args = ["api-token", "create", "--user", "alice", "--name", "shell", "--scopes", "read,write"]

    result = subprocess.run(
        [*command, *args], env=worker_env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    token = token_authenticate(result.stdout.strip())
    assert token.user == alice and token.scopes == ["read", "write"]

    unknown = subprocess.run(
        [*command, "api-token", "create", "--user", "nobody", "--name", "x"],
        env=worker_env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode != 0
    assert "No user with the handle @nobody" in unknown.stderr
    assert unknown.stdout == ""
