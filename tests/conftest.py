"""Shared fixtures: alice (owner), bob (another creator), anonymous; a real Redis; workers.

Redis is the one named by REDIS_URL, or else a private redis-server this session starts.
The database is the one named by DATABASE_URL (SQLite under var/ when unset).
"""

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from config import processes
from creator.accounts.models import User
from creator.jobs.models import Task

# Playwright's sync API runs an event loop in the main thread; live_server's ORM use is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple 42"
CONFIRM = {"confirm": "yes"}  # what a destructive action's confirm page posts
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    socket_path = tmp_path_factory.mktemp("redis") / "redis.sock"
    proc = processes.start_redis(socket_path)
    yield f"unix://{socket_path}?db=0"
    processes.stop(proc)


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory) -> Path:
    # The tiny base model is built once per test session, not once per test.
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _test_settings(settings, redis_url, model_cache_dir):
    settings.RQ_QUEUES = {
        name: {**queue, "URL": redis_url} for name, queue in settings.RQ_QUEUES.items()
    }
    settings.MODEL_CACHE_DIR = model_cache_dir
    # PBKDF2 costs ~0.3 s per hash on a small CPU; tests check behaviour, not the hash strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def redis_conn(redis_url):
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.close()


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def anonymous() -> Client:
    return Client()


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def _database_url() -> str:
    """The URL of the database this test runs on, for processes the test starts."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


@pytest.fixture
def worker_env(transactional_db, redis_url) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(),
        REDIS_URL=redis_url,
        CANDOR_VAR_DIR=str(settings.VAR_DIR),
        WORKER_HEARTBEAT_SECONDS="0.3",
        JOB_PROGRESS_INTERVAL="0",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


class Workers:
    """Starts real RQ worker processes (Candor's worker class) and stops them afterwards."""

    def __init__(self, env, log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, *queues: str) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        env = {
            **self.env,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # the test's private storage
            "MODEL_CACHE_DIR": str(settings.MODEL_CACHE_DIR),
            "TRAIN_STEPS": str(settings.TRAIN_STEPS),
            "TRAIN_CHECKPOINT_EVERY": str(settings.TRAIN_CHECKPOINT_EVERY),
        }
        proc = processes.spawn(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", *(queues or settings.JOB_QUEUES)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            death_signal=signal.SIGKILL,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            processes.stop(proc, timeout=5, sig=signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_dir.glob("worker-*.log"))


@pytest.fixture
def workers(worker_env, tmp_path):
    pool = Workers(worker_env, tmp_path)
    yield pool
    pool.stop_all()


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_for_status(task: Task, *statuses: str, timeout: float = 20.0) -> Task:
    def reached():
        task.refresh_from_db()
        return task.status in statuses

    wait_for(reached, timeout=timeout, what=f"task to reach {statuses} (now {task.status})")
    return task


@pytest.fixture(scope="session")
def playwright():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def camera(playwright, tmp_path):
    """camera(video) -> a page in a Chromium whose camera films that Y4M clip, in a loop."""
    launched = []

    def open_page(video: Path):
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        launched.append(chromium)
        page = chromium.new_context().new_page()
        page.set_default_timeout(20_000)
        return page

    yield open_page
    for chromium in launched:
        chromium.close()


# --- subjects and photos ----------------------------------------------------------------------


def committing():
    """Run what waits for a commit (job pushes, file deletions) inside a `db` test's transaction."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def upload_files(client: Client, subject, files: dict[str, bytes]):
    """POST files to a subject's upload form, as a browser's multipart form would."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
    with committing():
        return client.post(reverse("photos_upload", args=[subject.pk]), {"photos": uploads})


def run_photo_checks() -> None:
    """Run queued photo-check jobs in this process (the job code a worker runs)."""
    from creator.likeness import jobs

    for task in Task.objects.filter(kind="photo_check", status=Task.Status.QUEUED):
        with committing():
            jobs.photos_check(str(task.pk), **task.job_kwargs)


@pytest.fixture
def alice_subject(alice):
    from creator.likeness.models import Subject

    return Subject.objects.create(owner=alice, kind=Subject.Kind.SELF, name="Alice")


@pytest.fixture
def picture_consent(settings):
    """The operator allows a picture file as the consent selfie (CONSENT_REQUIRE_LIVENESS off):
    the weaker path, for tests about what happens around consent rather than the camera check."""
    settings.CONSENT_REQUIRE_LIVENESS = False


@pytest.fixture
def private_media(settings, tmp_path):
    """A fresh, empty private storage per test, so tests can assert on what is left behind."""
    root = tmp_path / "media"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": str(root)}},
    }
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def verifier(db, settings, tmp_path, private_media):
    """A fresh signing identity under tmp_path and an empty rate-limit cache, for verify tests."""
    from django.core.cache import cache

    from gallery import signing

    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    settings.VERIFY_RATE_LIMIT = 1000
    signing.reset()
    cache.clear()
    yield
    signing.reset()


def live_consent(subject, *, scope_query: str = "", seed: int | None = None):
    """Consent the way the page gives it: a challenge from the server, then a burst of camera
    frames of the astronaut doing its moves in its order (tests/videos.py), checked for real."""
    from django.http import QueryDict
    from django.utils import timezone

    from creator.likeness import checks, scope, services
    from tests import images, videos

    challenge, nonce = services.challenge_issue(subject=subject)
    seed = next(_burst_seeds) if seed is None else seed
    frames = [
        images.encode(frame, "JPEG", quality=90)
        for frame in videos.challenge_burst(challenge.steps, seed=seed)
    ]
    return services.consent_by_selfie(
        subject=subject,
        selfie=checks.Selfie(frames=frames, nonce=nonce),
        agreed=True,
        consent_scope=scope.scope_from_form(QueryDict(scope_query), now=timezone.now()),
    )


_burst_seeds = itertools.count(1)  # every burst a fresh one: the same frames twice are a replay
