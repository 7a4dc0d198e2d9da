"""The in-job half of the job runtime: progress reporting, cancellation, worker liveness.

A job function is wrapped with `@tracked`; RQ calls it with a Task id. The wrapper moves the row
QUEUED -> RUNNING -> SUCCEEDED / FAILED / CANCELLED and hands the function a `Progress` that
writes step, total, ETA and a phase message to the row (at most once per JOB_PROGRESS_INTERVAL)
and raises `Cancelled` between steps once the creator asked to stop.
"""

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.dispatch import Signal
from django.utils import timezone
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from config.refusal import Refusal
from creator.jobs.models import Task

log = logging.getLogger(__name__)

# Sent by every worker about every 30 s: receivers do time-based chores (cheap, idempotent).
housekeeping = Signal()
# Sent when a job reaches its final state (`task`), however it got there.
task_finished = Signal()

Status = Task.Status

# Plain-language reasons a creator sees on a failed job. Tests reuse them.
JOB_CRASHED = "Something went wrong while running this job. You can retry it."
JOB_INTERRUPTED = "Candor was stopped while this job was running. You can retry it."
WORKER_DIED = (
    "The worker running this job stopped unexpectedly (it may have run out of memory or been "
    "killed). You can retry it."
)
JOB_LOST = (
    "This job was lost from the queue before it finished (the queue was reset). You can retry it."
)
# Lost jobs whose embedded Redis started (empty) after they were queued: `up` restarted it
# after it crashed, or `up` itself was stopped and later started again.
JOB_LOST_QUEUE_RESTARTED = (
    "The job queue was restarted (Candor's queue server stopped unexpectedly), so this job was "
    "lost. You can retry it."
)
JOB_LOST_CANDOR_STOPPED = (
    "Candor was stopped before this job finished, so it was lost. You can retry it."
)
JOB_TIMED_OUT = "This job ran past its time limit and was stopped. You can retry it."
JOB_ENDED_SILENTLY = "This job ended without reporting a result. You can retry it."
QUEUE_UNAVAILABLE = (
    "The job queue is not reachable right now, so this can't start. Nothing was changed; "
    "please try again in a minute. (Operators: check that Redis and the worker are running.)"
)

ALIVE_KEY = "candor:worker-alive:{}"


class Cancelled(Exception):
    """Raised inside a job when its creator asked it to stop."""


class JobError(Exception):
    """Raised by a job with a message that is safe and useful to show the creator."""


class QueueUnavailable(Refusal):
    def __init__(self, message: str = QUEUE_UNAVAILABLE):
        super().__init__(message)


# However fast the beat, a worker counts as gone only after this long without one: C code that
# holds the GIL (building or loading a model) can keep the heartbeat thread waiting for seconds.
MIN_ALIVE_TTL = 10.0


def worker_alive_ttl() -> float:
    return max(3 * settings.WORKER_HEARTBEAT_SECONDS, MIN_ALIVE_TTL)


class Progress:
    """Writes a running job's progress to its row, throttled, and notices cancellation."""

    def __init__(self, task_id, *, interval: float | None = None, clock=time.monotonic):
        self.task_id = task_id
        self.interval = settings.JOB_PROGRESS_INTERVAL if interval is None else interval
        self._clock = clock
        self._started = clock()
        self._last_write = float("-inf")
        self._first_step: tuple[int, float] | None = None

    def update(
        self,
        step: int,
        total: int,
        *,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        force: bool = False,
    ) -> None:
        """Record step/total; raises Cancelled when the creator stopped the job."""
        now = self._clock()
        if self._first_step is None or step < self._first_step[0]:
            self._first_step = (step, now)
        if not force and now - self._last_write < self.interval:
            return
        self._last_write = now
        fields: dict[str, Any] = {
            "step": step,
            "total": total,
            "progress": min(1.0, step / total) if total else 0.0,
            "eta_seconds": self._eta(step, total, now),
        }
        if message is not None:
            fields["message"] = message[:200]
        if details is not None:
            fields["details"] = details
        self._write(fields)

    def phase(self, message: str) -> None:
        """Say what the job is doing now (e.g. "Encoding photos")."""
        self._write({"message": message[:200]})

    def stop_requested(self) -> bool:
        """True when the creator asked to stop (or the row is gone), for code that must stop by
        its own means, such as a trainer that keeps its last checkpoint."""
        try:
            self._write({})
        except Cancelled:
            return True
        return False

    def _eta(self, step: int, total: int, now: float) -> float | None:
        first_step, first_at = self._first_step or (0, self._started)
        done = step - first_step
        if not total or done <= 0:
            return None
        return max(0.0, (now - first_at) / done * (total - step))

    def _write(self, fields: dict[str, Any]) -> None:
        rows = Task.objects.filter(pk=self.task_id, status=Status.RUNNING, cancel_requested=False)
        if fields:
            fields["updated_at"] = timezone.now()
            updated = rows.update(**fields)
        else:
            updated = rows.count()
        if not updated:
            raise Cancelled()


def tracked(func: Callable[..., Any]) -> Callable[..., Any]:
    """Make `func(task, progress, **kwargs)` an RQ job that takes a Task id and keeps its row true.

    Whatever happens inside, the row ends in a final state with a message a creator can read.
    """

    @functools.wraps(func)
    def job(task_id, **kwargs):
        if not connection.in_atomic_block:  # a worker between jobs: drop stale connections
            close_old_connections()
        rq_job = get_current_job()
        started = Task.objects.filter(pk=task_id, status=Status.QUEUED).update(
            status=Status.RUNNING,
            started_at=timezone.now(),
            updated_at=timezone.now(),
            worker_name=getattr(rq_job, "worker_name", "") or "",
            error="",
        )
        if not started:
            log.info("Task %s is no longer queued; skipping it.", task_id)
            return None
        task = Task.objects.get(pk=task_id)
        try:
            result = func(task, Progress(task_id), **kwargs)
        except Cancelled:
            _finish(task_id, Status.CANCELLED, message="Cancelled.")
            return None
        except JobTimeoutException:
            _finish(task_id, Status.FAILED, error=JOB_TIMED_OUT)
            raise
        except JobError as exc:
            _finish(task_id, Status.FAILED, error=str(exc))
            raise
        except Exception:
            log.exception("Task %s failed", task_id)
            _finish(task_id, Status.FAILED, error=JOB_CRASHED)
            raise
        except BaseException:
            # SystemExit from a cold worker shutdown (the second Ctrl-C or SIGTERM).
            _finish(task_id, Status.FAILED, error=JOB_INTERRUPTED)
            raise
        _finish(task_id, Status.SUCCEEDED, progress=1.0, eta_seconds=0.0)
        return result

    return job


def _finish(task_id, status: str, **fields: Any) -> None:
    """Move a running row to its final state; a row someone else already finished stays as is."""
    now = timezone.now()
    if status == Status.CANCELLED:
        rows = Task.objects.filter(pk=task_id, status__in=Task.ACTIVE)
    else:
        rows = Task.objects.filter(pk=task_id, status=Status.RUNNING)
    if rows.update(status=status, finished_at=now, updated_at=now, **fields):
        task_finished_send(task_id)


def task_finished_send(task_id) -> None:
    """Tell the other apps a job ended (receivers notify its owner); their errors are logged."""
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        return
    for receiver, result in task_finished.send_robust(sender=Task, task=task):
        if isinstance(result, Exception):
            log.error("%s failed on task %s: %r", receiver.__name__, task_id, result)
