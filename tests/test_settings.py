"""Settings come from the environment and fail loudly on bad values."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import envbool, envfloat, envint, envlist, envsecret
from tests.conftest import ROOT


def test_envbool_reads_the_usual_spellings_and_refuses_others(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert envbool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "0")
    assert envbool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be one of"):
        envbool("FLAG", True)


def test_envint_and_envfloat_refuse_nonsense_and_out_of_range(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured, match="N must be a whole number, not 'ten'"):
        envint("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="N must be at least 1"):
        envint("N", 1, minimum=1)
    monkeypatch.setenv("F", "fast")
    with pytest.raises(ImproperlyConfigured, match="F must be a number"):
        envfloat("F", 1.0)


def test_a_memory_option_with_a_misspelt_value_stops_start_up_naming_the_choices(tmp_path):
    result = load_settings(tmp_path, QUANTIZE="4bit")
    assert result.returncode != 0
    assert "QUANTIZE must be one of none, nf4, int8, not '4bit'" in result.stderr


def test_envlist_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example, b.example ,,")
    assert envlist("HOSTS", ["x"]) == ["a.example", "b.example"]
    monkeypatch.delenv("HOSTS")
    assert envlist("HOSTS", ["x"]) == ["x"]


def test_envsecret_reads_a_file_and_refuses_both_forms(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("TOKEN_FILE", str(secret))
    assert envsecret("TOKEN") == "s3cret"
    monkeypatch.setenv("TOKEN", "inline")
    with pytest.raises(ImproperlyConfigured, match="either TOKEN or TOKEN_FILE"):
        envsecret("TOKEN")
    monkeypatch.delenv("TOKEN")
    monkeypatch.setenv("TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        envsecret("TOKEN")


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    unset = ("SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "DATABASE_URL")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    clean.update(CANDOR_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True
    )


def test_debug_is_off_unless_asked_for(tmp_path):
    assert load_settings(tmp_path).stdout.strip() == "False"
    assert load_settings(tmp_path, DEBUG="true").stdout.strip() == "True"


def test_var_and_the_sqlite_database_are_private(tmp_path):
    var = tmp_path / "var"
    assert load_settings(var).returncode == 0
    assert oct(var.stat().st_mode & 0o777) == "0o700"
    assert oct((var / "candor.sqlite3").stat().st_mode & 0o777) == "0o600"


def test_a_development_secret_is_generated_once_and_kept_private(tmp_path):
    assert load_settings(tmp_path).returncode == 0
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert load_settings(tmp_path).returncode == 0
    assert key_file.read_text() == first


def test_a_bad_setting_stops_start_up_with_its_name(tmp_path):
    result = load_settings(tmp_path, LOGIN_RATE_LIMIT="lots")
    assert result.returncode != 0
    assert "LOGIN_RATE_LIMIT must be a whole number" in result.stderr


def test_debug_pages_hide_every_setting_that_can_carry_a_password(settings, rf):
    secrets = ["hunter2", "opensesame", "mailpass"]
    settings.DEBUG = True
    settings.DATABASE_URL = f"postgres://candor:{secrets[0]}@db.internal/candor"
    settings.REDIS_URL = f"redis://:{secrets[1]}@cache.internal:6379/0"
    settings.RQ_QUEUES = {"default": {"URL": settings.REDIS_URL}}
    settings.EMAIL_HOST_PASSWORD = secrets[2]
    page = debug_page(rf)
    assert "boom" in page  # it is the debug page
    for secret in secrets:
        assert secret not in page


def test_the_deploy_check_is_clean_for_an_https_site(tmp_path):
    unset = ("DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")  # the last: set by conftest
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        CANDOR_VAR_DIR=str(tmp_path),
        SITE_URL="https://candor.example",
        ALLOWED_HOSTS="candor.example",
        SECRET_KEY="k" * 10 + "Zq8#vL2!pR5@wX9$mN4%tB7^cF1&hJ6*dG3(sA0)eY",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# Last in the file: the debug page quotes source lines around the raise, not the test's secrets.
def debug_page(rf) -> str:
    """Django's debug page for an error raised here (its frames hold no secrets)."""
    from django.views.debug import technical_500_response

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(rf.get("/"), *sys.exc_info()).content.decode()
