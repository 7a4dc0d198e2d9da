"""`candor up`: the whole app on one machine, on embedded defaults.

Migrates, creates missing secrets, starts a private Redis when REDIS_URL is unset, a worker for
every queue and the web server, prints the URL, restarts any of them that dies, and on Ctrl-C
stops every child it started.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import processes
from config.env import dev_secret
from creator.jobs import services

# A crashed child is started again after a pause that doubles with each crash in a row, so a
# child that cannot start (a port taken, a broken install) does not spin the CPU or flood the log.
RESTART_DELAY_FIRST = 0.5
RESTART_DELAY_MAX = 30.0
# A child that ran this long before dying counts as healthy: its pause starts over.
RESTART_DELAY_RESET_AFTER = 60.0

# gthread, not gunicorn's sync workers: a sync worker is tied to each connection it accepts, so
# a socket a browser opened ahead of time and left idle blocks it until the 30 s worker timeout
# kills it, and the tab's next request reads the "Internal Server Error" written on that socket.
# gthread keeps idle connections in a poller, and its timeout only watches for a wedged process.
# Threads per worker: Candor's requests are short and wait on the database, Redis or files, so a
# few threads keep a slow upload or client from holding up other pages; the CPU-heavy ones
# (uploads, verifying) are bounded by the GIL, which is what separate worker processes are for.
WEB_THREADS = 4
# Long enough for a page's burst of requests and a quick next click on the same connection.
WEB_KEEP_ALIVE = 5
# Addresses meaning "every interface": a browser on this machine reaches them at 127.0.0.1, but
# no one URL reaches them from elsewhere, so links meant for other people need SITE_URL.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names them, binds nothing


@dataclass
class Child:
    """A supervised process: how to start it, and when to start it again after it died."""

    name: str
    start: Callable[[], subprocess.Popen]
    restart: Callable[[], subprocess.Popen] | None = None  # when it differs from `start`
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_delay: float = RESTART_DELAY_FIRST
    restart_at: float = 0.0


def local_url(host: str, port: int) -> str:
    """Where `up` serves, as a browser on this machine opens it (no trailing slash)."""
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}"


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"exit code {code}, {signal.Signals(-code).name}"
    return f"exit code {code}"


class Command(BaseCommand):
    help = "Start Candor (database, Redis, worker, web server) on this machine."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("CANDOR_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("CANDOR_PORT", "8000")))
        parser.add_argument(
            "--web-workers",
            type=int,
            default=int(os.environ.get("WEB_CONCURRENCY", "2")),
            help="gunicorn worker processes",
        )
        parser.add_argument(
            "--web-threads",
            type=int,
            default=int(os.environ.get("WEB_THREADS", str(WEB_THREADS))),
            help="threads per gunicorn worker",
        )

    def handle(self, *args, host: str, port: int, web_workers: int, web_threads: int, **options):
        self.children: list[Child] = []
        self.listener: socket.socket | None = None
        self.stopping = False
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        try:
            self._start(host, port, web_workers, web_threads)
            self._supervise()
        finally:
            self._stop_all()

    def _request_stop(self, signum, frame):
        self.stopping = True

    def _child_env(self, host: str, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env["CANDOR_VAR_DIR"] = str(settings.VAR_DIR)
        # Absolute links (emails, share pages, signed credentials) follow --host and --port
        # unless the operator named the public address.
        if not env.get("SITE_URL"):
            env["SITE_URL"] = local_url(host, port)
        if not env.get("ALLOWED_HOSTS") and host not in WILDCARD_HOSTS:
            bracketed = f"[{host}]" if ":" in host else host
            if bracketed not in settings.ALLOWED_HOSTS:
                env["ALLOWED_HOSTS"] = ",".join([*settings.ALLOWED_HOSTS, bracketed])
        env.setdefault("DEBUG", "false")
        # `up` collects static files, so pages can link their hashed, long-cached names.
        env.setdefault("STATIC_MANIFEST", "true")
        if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
            dev_secret(settings.VAR_DIR / "secret_key")
            env["SECRET_KEY_FILE"] = str(settings.VAR_DIR / "secret_key")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _manage(self, *args: str) -> list[str]:
        return [sys.executable, str(settings.BASE_DIR / "manage.py"), *args]

    def _run_step(self, env, what: str, *args: str) -> None:
        self.stdout.write(f"· {what}")
        result = subprocess.run(self._manage(*args), env=env, cwd=settings.BASE_DIR, check=False)
        if result.returncode != 0:
            raise CommandError(f"{what} failed (exit code {result.returncode}).")

    def _add(
        self,
        name: str,
        start: Callable[[], subprocess.Popen],
        restart: Callable[[], subprocess.Popen] | None = None,
    ) -> None:
        """Start a child now; a failure here, before anything serves, stops `up`."""
        child = Child(name, start, restart)
        self.children.append(child)
        child.proc, child.started_at = start(), time.monotonic()

    def _start_redis(self, *, after_crash: bool) -> subprocess.Popen:
        # The new server starts empty (no persistence). Note when, before anyone can reach it,
        # so that the jobs the old one took with it can tell their creator why.
        return processes.start_redis(
            settings.EMBEDDED_REDIS_SOCKET,
            before_start=lambda: services.queue_restart_record(after_crash=after_crash),
        )

    def _start(self, host: str, port: int, web_workers: int, web_threads: int) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        env = self._child_env(host, port)
        if host in WILDCARD_HOSTS and not os.environ.get("SITE_URL"):
            self.stderr.write(
                self.style.WARNING(
                    f"Serving on every interface, but links in emails, share pages and "
                    f"credentials will point at {env['SITE_URL']}, which works only on this "
                    f"machine. Set SITE_URL (and ALLOWED_HOSTS) to the address people use."
                )
            )
        if settings.REDIS_EMBEDDED:
            self.stdout.write(f"· Starting a private Redis on {settings.EMBEDDED_REDIS_SOCKET}")
            try:
                self._add(
                    "redis",
                    lambda: self._start_redis(after_crash=False),
                    lambda: self._start_redis(after_crash=True),
                )
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
        self.listener = self._listen(host, port)
        self._run_step(env, "Migrating the database", "migrate", "--noinput", "-v", "0")
        self._run_step(
            env, "Collecting static files", "collectstatic", "--noinput", "--clear", "-v", "0"
        )
        # Made now, once, before web and worker processes could race to make it.
        self._run_step(env, "Preparing the signing identity", "signing_identity", "show")
        # SIGKILL on our death: a warm shutdown would wait for a training run to finish, and an
        # orphaned worker is worse than a job the reconciler marks as interrupted.
        worker_args = self._manage("rqworker", *settings.JOB_QUEUES)
        self._add("worker", lambda: self._spawn(worker_args, env, death_signal=signal.SIGKILL))
        web_args = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"fd://{self.listener.fileno()}",
            "--workers", str(web_workers),
            "--worker-class", "gthread",
            "--threads", str(web_threads),
            "--keep-alive", str(WEB_KEEP_ALIVE),
            "--timeout", "30",
            "--access-logfile", "-",
            "--graceful-timeout", "5",
            "--no-control-socket",
        ]  # fmt: skip
        fds = (self.listener.fileno(),)
        self._add("web", lambda: self._spawn(web_args, env, pass_fds=fds))
        url = f"{local_url(host, port)}/"
        self.stdout.write(self.style.SUCCESS(f"Candor is running at {url}  (Ctrl-C to stop)"))
        self.stdout.flush()

    def _listen(self, host: str, port: int) -> socket.socket:
        """Bind the web server's address here, once: a port in use stops `up` before anything
        serves, and a restarted gunicorn takes over the same socket, so that requests wait in
        its backlog meanwhile instead of being refused."""
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            return socket.create_server((host, port), family=family, backlog=2048)
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {host}:{port} ({exc.strerror or exc}). "
                "Is something else using that port? Choose another with --port."
            ) from None

    def _spawn(
        self, args: list[str], env, death_signal=signal.SIGTERM, **kwargs
    ) -> subprocess.Popen:
        return processes.spawn(
            args, env=env, cwd=settings.BASE_DIR, death_signal=death_signal, **kwargs
        )

    def _supervise(self) -> None:
        while not self.stopping:
            for child in self.children:
                if self.stopping:
                    break
                self._tend(child)
            time.sleep(0.2)

    def _tend(self, child: Child) -> None:
        """Notice that a child died and start it again once its pause is over."""
        now = time.monotonic()
        if child.proc is not None:
            code = child.proc.poll()
            if code is None:
                return
            processes.kill_group(child.proc)  # e.g. gunicorn workers still holding the port
            if now - child.started_at >= RESTART_DELAY_RESET_AFTER:
                child.restart_delay = RESTART_DELAY_FIRST
            self.stderr.write(
                f"The {child.name} process stopped unexpectedly ({_describe_exit(code)}); "
                f"restarting it in {child.restart_delay:g} s."
            )
            child.proc = None
            self._schedule_restart(child, now)
            return
        if now < child.restart_at:
            return
        try:
            child.proc = (child.restart or child.start)()
        except Exception as exc:  # anything: `up` keeps serving what it still can
            self.stderr.write(
                f"Could not restart the {child.name} process: {exc}; "
                f"trying again in {child.restart_delay:g} s."
            )
            self._schedule_restart(child, time.monotonic())
            return
        child.started_at = time.monotonic()
        self.stdout.write(f"Restarted the {child.name} process (pid {child.proc.pid}).")
        self.stdout.flush()

    def _schedule_restart(self, child: Child, now: float) -> None:
        child.restart_at = now + child.restart_delay
        child.restart_delay = min(child.restart_delay * 2, RESTART_DELAY_MAX)

    def _stop_all(self) -> None:
        if self.children:
            self.stdout.write("Stopping Candor…")
        # Web first (no new work), then the worker (a second SIGTERM is RQ's cold shutdown,
        # which marks a running job as interrupted), then Redis.
        for child in reversed(self.children):
            proc = child.proc
            if proc is None:
                continue
            if child.name == "worker" and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    processes.stop(proc, timeout=10)
            else:
                processes.stop(proc, timeout=10)
        self.children.clear()
        if self.listener is not None:
            self.listener.close()
