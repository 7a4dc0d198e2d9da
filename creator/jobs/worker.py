"""The RQ worker Candor runs: jobs execute in the worker process itself.

`SimpleWorker` on purpose: a forking worker starts every job in a fresh child, which throws away
models loaded by earlier jobs and cannot use CUDA initialised in its parent. Running in-process
keeps the base model warm between jobs. The price is that RQ cannot see a hung or killed job
through a horse process, so this worker publishes its own liveness key from a thread (which
keeps beating while a job holds the main thread), and reconciles rows of dead workers.
"""

import contextlib
import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from redis.exceptions import RedisError
from rq.worker import SimpleWorker

from creator.jobs import runtime

log = logging.getLogger(__name__)

# Reconcile every this many heartbeats (about every 30 s at the default 5 s beat).
RECONCILE_EVERY = 6


class CandorWorker(SimpleWorker):
    # While Redis is away, RQ waits 1, 2, 4… seconds between tries, up to a minute by default;
    # `up` brings its Redis back within seconds, and queued jobs should not wait a minute more.
    max_connection_wait_time = 5.0

    def bootstrap(self, *args, **kwargs):
        super().bootstrap(*args, **kwargs)
        self._alive_key = runtime.ALIVE_KEY.format(self.name)
        self._stop_beating = threading.Event()
        self._beat()
        self._beater = threading.Thread(
            target=self._beat_forever, name="candor-heartbeat", daemon=True
        )
        self._beater.start()

    def teardown(self):
        stop = getattr(self, "_stop_beating", None)
        if stop is not None:
            stop.set()
            self._beater.join(timeout=5)
            with contextlib.suppress(RedisError):
                self.connection.delete(self._alive_key)
        super().teardown()

    def _beat(self) -> None:
        ttl_ms = int(runtime.worker_alive_ttl() * 1000)
        try:
            self.connection.set(self._alive_key, "1", px=ttl_ms)
        except RedisError as exc:
            log.warning("Worker heartbeat failed: %s", exc)

    def _beat_forever(self) -> None:
        beats = 0
        while not self._stop_beating.wait(settings.WORKER_HEARTBEAT_SECONDS):
            self._beat()
            beats += 1
            if beats % RECONCILE_EVERY == 0:
                self._reconcile()

    def _reconcile(self) -> None:
        # Another worker may have died mid-job; nobody else is sure to notice.
        from creator.jobs.services import tasks_reconcile

        try:
            close_old_connections()
            tasks_reconcile()
        except runtime.QueueUnavailable:
            pass  # Redis is away (perhaps being restarted); the next round will tell
        except Exception:
            log.exception("Reconciling jobs failed")
        try:
            # Time-based chores of the other apps (e.g. telling creators a link expired).
            for receiver, result in runtime.housekeeping.send_robust(sender=CandorWorker):
                if isinstance(result, Exception):
                    log.error("Housekeeping by %s failed: %r", receiver.__name__, result)
        finally:
            connection.close()
