"""`candor up`: the whole app on one machine, on embedded defaults.

Migrates, creates missing secrets, starts a private Redis when REDIS_URL is unset, a worker for
every queue and the web server, prints the URL, and on Ctrl-C stops every child it started.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import processes
from config.env import dev_secret


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

    def handle(self, *args, host: str, port: int, web_workers: int, **options):
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        try:
            self._start(host, port, web_workers)
            self._supervise()
        finally:
            self._stop_all()

    def _request_stop(self, signum, frame):
        self.stopping = True

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CANDOR_VAR_DIR"] = str(settings.VAR_DIR)
        env.setdefault("DEBUG", "false")
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

    def _spawn(self, name: str, args: list[str], env, death_signal=signal.SIGTERM):
        proc = processes.spawn(args, env=env, cwd=settings.BASE_DIR, death_signal=death_signal)
        self.children.append((name, proc))
        return proc

    def _start(self, host: str, port: int, web_workers: int) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        env = self._child_env()
        if settings.REDIS_EMBEDDED:
            self.stdout.write(f"· Starting a private Redis on {settings.EMBEDDED_REDIS_SOCKET}")
            try:
                proc = processes.start_redis(settings.EMBEDDED_REDIS_SOCKET)
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            self.children.append(("redis", proc))
        self._run_step(env, "Migrating the database", "migrate", "--noinput", "-v", "0")
        self._run_step(
            env, "Collecting static files", "collectstatic", "--noinput", "--clear", "-v", "0"
        )
        # Made now, once, before web and worker processes could race to make it.
        self._run_step(env, "Preparing the signing identity", "signing_identity", "show")
        queues = list(settings.JOB_QUEUES)
        # SIGKILL on our death: a warm shutdown would wait for a training run to finish, and an
        # orphaned worker is worse than a job the reconciler marks as interrupted.
        self._spawn(
            "worker",
            self._manage("rqworker", *queues),
            env,
            death_signal=signal.SIGKILL,
        )
        self._spawn(
            "web",
            [
                sys.executable, "-m", "gunicorn", "config.wsgi:application",
                "--bind", f"{host}:{port}",
                "--workers", str(web_workers),
                "--access-logfile", "-",
                "--graceful-timeout", "5",
                "--no-control-socket",
            ],
            env,
        )  # fmt: skip
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Candor is running at {url}  (Ctrl-C to stop)"))
        self.stdout.flush()

    def _supervise(self) -> None:
        while not self.stopping:
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise CommandError(
                        f"The {name} process stopped unexpectedly (exit code {proc.returncode})."
                    )
            time.sleep(0.2)

    def _stop_all(self) -> None:
        if self.children:
            self.stdout.write("Stopping Candor…")
        # Web first (no new work), then the worker (a second SIGTERM is RQ's cold shutdown,
        # which marks a running job as interrupted), then Redis.
        for name, proc in reversed(self.children):
            if name == "worker" and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    processes.stop(proc, timeout=10)
            else:
                processes.stop(proc, timeout=10)
        self.children.clear()
