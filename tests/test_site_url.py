"""Absolute links follow where `candor up` serves, and a SITE_URL that doesn't match is reported."""

import io
import logging

import pytest
from django.test import Client

from config import middleware
from creator.jobs.management.commands import up as up_command


@pytest.fixture
def command(monkeypatch):
    # A configured key, so building the children's environment writes nothing under var/.
    monkeypatch.setenv("SECRET_KEY", "test-key")
    for name in ("SITE_URL", "ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return up_command.Command(stdout=io.StringIO(), stderr=io.StringIO())


def test_up_on_another_port_gives_its_children_that_site_url(command):
    env = command._child_env("127.0.0.1", 9123)
    assert env["SITE_URL"] == "http://127.0.0.1:9123"
    assert "ALLOWED_HOSTS" not in env  # 127.0.0.1 is allowed already


def test_up_on_a_named_host_links_to_it_and_accepts_it(command, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    env = command._child_env("candor.lan", 8080)
    assert env["SITE_URL"] == "http://candor.lan:8080"
    assert env["ALLOWED_HOSTS"] == "127.0.0.1,localhost,candor.lan"


def test_up_on_every_interface_links_to_this_machine(command):
    env = command._child_env("0.0.0.0", 8000)
    assert env["SITE_URL"] == "http://127.0.0.1:8000"
    assert "ALLOWED_HOSTS" not in env


def test_up_brackets_an_ipv6_address(command, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    env = command._child_env("::1", 8000)
    assert env["SITE_URL"] == "http://[::1]:8000"
    assert env["ALLOWED_HOSTS"].endswith(",[::1]")


def test_a_site_url_the_operator_set_is_kept(command, monkeypatch):
    monkeypatch.setenv("SITE_URL", "https://candor.example.org")
    monkeypatch.setenv("ALLOWED_HOSTS", "candor.example.org")
    env = command._child_env("0.0.0.0", 9123)
    assert env["SITE_URL"] == "https://candor.example.org"
    assert env["ALLOWED_HOSTS"] == "candor.example.org"


@pytest.fixture
def fresh_process(monkeypatch, settings):
    monkeypatch.setattr(middleware, "_warned", False)
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "candor.example.org"]


def warnings_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "config.middleware"]


def test_a_request_for_another_host_is_reported_once(db, fresh_process, caplog):
    client = Client(HTTP_HOST="candor.example.org")
    with caplog.at_level(logging.WARNING, logger="config.middleware"):
        assert client.get("/").status_code == 200
        client.get("/")
        Client(HTTP_HOST="candor.example.org").get("/verify/")

    [message] = warnings_logged(caplog)
    assert "candor.example.org" in message
    assert "http://127.0.0.1:8000" in message
    assert "Set SITE_URL" in message


def test_a_request_for_the_site_url_host_is_not_reported(db, fresh_process, caplog):
    with caplog.at_level(logging.WARNING, logger="config.middleware"):
        Client(HTTP_HOST="127.0.0.1:8000").get("/")
    assert warnings_logged(caplog) == []


def test_the_default_port_may_be_left_out(db, fresh_process, settings, caplog):
    settings.SITE_URL = "http://candor.example.org"
    with caplog.at_level(logging.WARNING, logger="config.middleware"):
        Client(HTTP_HOST="candor.example.org").get("/")
        Client(HTTP_HOST="candor.example.org:80").get("/")
    assert warnings_logged(caplog) == []


def test_a_host_that_is_not_allowed_is_refused_not_reported(db, fresh_process, caplog):
    with caplog.at_level(logging.WARNING, logger="config.middleware"):
        assert Client(HTTP_HOST="evil.example").get("/").status_code == 400
    assert warnings_logged(caplog) == []
