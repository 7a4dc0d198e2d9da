"""`candor up` on embedded defaults: a fresh var/, SQLite, a private Redis, no configuration."""

import html
import http.client
import http.cookiejar
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import psutil
import pytest

from config import processes
from creator.jobs import runtime
from creator.jobs.management.commands import up as up_command
from tests.conftest import PASSWORD, ROOT, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Up:
    def __init__(self, tmp_path, **extra_env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG")
        }
        env.update(CANDOR_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1", **extra_env)
        self.env = env
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

    def child(self, word: str) -> psutil.Process | None:
        """The live child of `up` whose command line has `word` (e.g. "rqworker", "gunicorn")."""
        for proc in psutil.Process(self.proc.pid).children():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and word in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:
                continue
        return None

    def start_job(self, handle: str, **job_kwargs) -> str:
        """Queue tests.jobs.count_slowly for a creator through `up`'s own database and Redis."""
        code = (
            "from creator.accounts.models import User\n"
            "from creator.jobs import services\n"
            f"task = services.task_start(owner=User.objects.get(handle={handle!r}), kind='test', "
            f"label='Counting', job='tests.jobs.count_slowly', job_kwargs={job_kwargs!r})\n"
            "print(task.pk)"
        )
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)


class Visitor:
    """Someone with a cookie jar, using `up` over plain HTTP."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(self.base_url + path.lstrip("/"))
        try:
            return self._open(request)
        except (http.client.RemoteDisconnected, ConnectionResetError):
            # A GET that a web process was answering the instant it was killed: browsers retry
            # an idempotent request once on a dropped connection, and so does this visitor.
            return self._open(request)

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        """POST a form with the CSRF token, following the redirect; (status, text shown)."""
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        return self._open(urllib.request.Request(self.base_url + path.lstrip("/"), data=body))

    def _open(self, request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, html.unescape(response.read().decode())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def sign_up(self, handle: str) -> None:
        self.get("signup/")  # for the CSRF cookie
        status, page = self.post(
            "signup/",
            {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
        assert status == 200 and f"Hello, @{handle}" in page, page

    def job(self, task_id: str) -> dict:
        status, text = self.get(f"jobs/{task_id}/status")
        assert status == 200, text
        return json.loads(text)


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


def test_up_refuses_a_port_in_use_with_a_plain_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)],
            env={**env, "CANDOR_VAR_DIR": str(tmp_path / "var")},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "var" / "redis.sock").exists()  # what it started, it stopped


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


def keeps_answering(up: Up, visitor: Visitor, *, seconds: float) -> None:
    """Every page a visitor asks for during `seconds` renders (none refused, none a 500)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in ("", "login/", "dashboard/"):
            status, page = visitor.get(path)
            assert status == 200, f"{path}: {status}\n{page[:500]}\n{up.output()[-3000:]}"
        time.sleep(0.1)


def restarted(up: Up, word: str, old: psutil.Process) -> psutil.Process:
    def new_child():
        proc = up.child(word)
        return proc if proc is not None and proc.pid != old.pid else None

    return wait_for(new_child, timeout=30, interval=0.2, what=f"a new {word}")


def test_up_restarts_a_killed_worker_and_redis_and_the_site_keeps_answering(tmp_path):
    up = Up(tmp_path, WORKER_HEARTBEAT_SECONDS="0.5")
    try:
        up.wait_until_serving()
        dora = Visitor(up.url)
        dora.sign_up("dora")

        def job_status(task_id, *statuses) -> dict:
            def reached():
                job = dora.job(task_id)  # the status page reconciles the row it shows
                return job if job["status"] in statuses else None

            return wait_for(reached, timeout=40, interval=0.3, what=f"job to be {statuses}")

        # The worker is killed mid-job: pages keep answering, a new worker takes over, and the
        # row says what happened.
        first = up.start_job("dora", steps=600, delay=0.1)
        job_status(first, "running")
        worker = up.child("rqworker")
        worker.kill()
        keeps_answering(up, dora, seconds=2)
        restarted(up, "rqworker", worker)
        assert job_status(first, "failed")["error"] == runtime.WORKER_DIED
        assert "The worker process stopped unexpectedly (exit code -9, SIGKILL)" in up.output()

        # Redis is killed while the new worker runs a job: it comes back empty, and the lost
        # job says so.
        second = up.start_job("dora", steps=600, delay=0.1)
        job_status(second, "running")
        redis = up.child("redis-server")
        redis.kill()
        keeps_answering(up, dora, seconds=2)
        restarted(up, "redis-server", redis)
        assert job_status(second, "failed")["error"] == runtime.JOB_LOST_QUEUE_RESTARTED

        # Redis stays down (we pause `up` so that it cannot bring it back): pages still render
        # and an action that needs the queue says so, plainly.
        os.kill(up.proc.pid, signal.SIGSTOP)
        try:
            redis = up.child("redis-server")
            redis.kill()
            wait_for(lambda: gone([redis]), what="redis-server to die")  # a zombie: up is paused
            keeps_answering(up, dora, seconds=1)
            status, page = dora.post(f"jobs/{second}/retry", {})
            assert status == 200
            assert runtime.QUEUE_UNAVAILABLE in page
        finally:
            os.kill(up.proc.pid, signal.SIGCONT)

        restarted(up, "redis-server", redis)
        status, page = dora.post(f"jobs/{second}/retry", {})
        assert "Queued again." in page
        job_status(second, "running")  # the worker found the new Redis

        # The web server dies: requests wait for its successor on the socket `up` holds.
        web = up.child("gunicorn")
        web.kill()
        keeps_answering(up, dora, seconds=3)
        restarted(up, "gunicorn", web)
        assert up.proc.poll() is None
    finally:
        up.kill()


def test_a_child_that_keeps_crashing_is_restarted_less_and_less_often(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(up_command.time, "monotonic", lambda: now[0])
    log = io.StringIO()
    command = up_command.Command(stdout=io.StringIO(), stderr=log)
    child = up_command.Child("worker", start=lambda: processes.spawn(["false"]))
    child.proc, child.started_at = child.start(), now[0]

    def crash_after(seconds: float) -> float:
        now[0] += seconds
        child.proc.wait()
        command._tend(child)  # notices the exit
        pause = child.restart_at - now[0]
        now[0] = child.restart_at
        command._tend(child)  # starts it again
        return pause

    assert [crash_after(0.1) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    # One that ran for a while before it died counts as healthy again.
    assert crash_after(up_command.RESTART_DELAY_RESET_AFTER) == 0.5
    assert "The worker process stopped unexpectedly (exit code 1)" in log.getvalue()
    child.proc.wait()
