"""`candor up` on embedded defaults: a fresh var/, SQLite, a private Redis, no configuration."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.conftest import PASSWORD, ROOT, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Up:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG")
        }
        env.update(CANDOR_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
        self.log = tmp_path / "up.log"
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        def serving():
            if self.proc.poll() is not None:
                raise AssertionError(f"up exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(serving, timeout=90, interval=0.3, what="candor up to serve")
        assert f"Candor is running at {self.url}" in self.output()

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)


def gone(procs: list[psutil.Process]) -> bool:
    def dead(p):
        try:
            return p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(dead(p) for p in procs)


@pytest.fixture
def up(tmp_path):
    server = Up(tmp_path)
    yield server
    server.kill()


@pytest.mark.browser
def test_up_serves_the_app_a_browser_can_sign_up_and_ctrl_c_leaves_no_orphans(up, page):
    up.wait_until_serving()
    children = up.descendants()
    names = " ".join(" ".join(p.cmdline()) for p in children)
    assert "redis-server" in names
    assert "rqworker" in names
    assert "gunicorn" in names

    page.goto(up.url + "signup/")
    page.fill("#id_handle", "dora")
    page.fill("#id_email", "dora@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert "Hello, @dora" in page.content()
    # Static files come from whitenoise with hashed names (DEBUG is off under `up`).
    css = page.locator("link[rel=stylesheet]").get_attribute("href")
    assert css.startswith("/static/css/candor.") and css != "/static/css/candor.css"
    assert page.request.get(up.url.rstrip("/") + css).ok

    os.killpg(up.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert up.proc.wait(timeout=60) == 0, up.output()
    wait_for(lambda: gone(children), timeout=20, what="every child of up to stop")
    assert not (up.log.parent / "var" / "redis.sock").exists()


def test_when_up_is_killed_its_children_die_with_it(up):
    up.wait_until_serving()
    children = up.descendants()
    assert len(children) >= 4  # redis, worker, gunicorn master + workers

    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait()

    wait_for(lambda: gone(children), timeout=30, what="the orphans to die")


def test_up_refuses_to_start_twice_on_the_same_var_dir(up, tmp_path):
    up.wait_until_serving()
    second = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(free_port())],
        env={**os.environ, "CANDOR_VAR_DIR": str(tmp_path / "var")}
        | {"REDIS_URL": "", "DATABASE_URL": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "is Candor already running?" in second.stderr
    time.sleep(0.5)
    assert up.proc.poll() is None  # the first one is untouched
