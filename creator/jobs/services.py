"""State changes of the job runtime: start, cancel, retry and reconcile jobs."""

import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from creator.jobs import runtime
from creator.jobs.models import Task

log = logging.getLogger(__name__)

Status = Task.Status

# A QUEUED row is pushed to Redis when its transaction commits; give that a generous moment
# before calling a row without an RQ job "lost".
LOST_JOB_GRACE = timedelta(seconds=60)


@functools.cache
def _client(url: str) -> redis.Redis:
    # Short timeouts: a page that asks about a job must not hang when Redis is away.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def _connection() -> redis.Redis:
    return _client(settings.RQ_QUEUES["default"]["URL"])


def queue_check() -> None:
    """Raise QueueUnavailable unless Redis answers now."""
    try:
        _connection().ping()
    except (RedisError, OSError) as exc:
        log.warning("Job queue unreachable: %s", exc)
        raise runtime.QueueUnavailable() from None


def _queue_started_file() -> Path:
    return settings.EMBEDDED_REDIS_SOCKET.with_name("redis-started.json")


def queue_restart_record(*, after_crash: bool) -> None:
    """Note that the embedded Redis is about to start empty, so that jobs lost with the old
    server can say why. `up` calls this just before it starts the server: a note kept inside
    Redis would come too late for a reconciler that reached the new server first."""
    path = _queue_started_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_suffix(".tmp")
    draft.write_text(json.dumps({"at": time.time(), "after_crash": after_crash}))
    draft.replace(path)  # atomic: a reader sees the old note or the new one


def _lost_in_restart(task: Task) -> str | None:
    """The error for a row whose job vanished because the embedded Redis restarted, else None."""
    try:
        note = json.loads(_queue_started_file().read_text())
    except (OSError, ValueError):
        return None  # never started by `up` here (e.g. an external Redis)
    # A RUNNING job was in Redis when it started; a QUEUED row was last saved when it was
    # queued (creation or retry), and the push follows that save's commit at once.
    in_queue_since = task.started_at or task.updated_at
    if note["at"] <= in_queue_since.timestamp():
        return None
    if note["after_crash"]:
        return runtime.JOB_LOST_QUEUE_RESTARTED
    return runtime.JOB_LOST_CANDOR_STOPPED


def _rq_job_id(task: Task) -> str:
    return f"task-{task.pk}-{task.attempts}"


def _push(*, task_id, queue: str, rq_job_id: str, job_func: str, job_kwargs: dict) -> None:
    try:
        django_rq.get_queue(queue, commit_mode="auto", connection=_connection()).enqueue_call(
            func=job_func,
            args=(str(task_id),),
            kwargs=job_kwargs,
            job_id=rq_job_id,
            timeout=settings.JOB_QUEUES[queue],
            failure_ttl=7 * 24 * 3600,
        )
    except (RedisError, OSError) as exc:
        log.warning("Could not enqueue task %s: %s", task_id, exc)
        now = timezone.now()
        Task.objects.filter(pk=task_id, status=Status.QUEUED).update(
            status=Status.FAILED, error=runtime.QUEUE_UNAVAILABLE, finished_at=now, updated_at=now
        )


def _enqueue_on_commit(task: Task) -> None:
    # Jobs take ids and run only once the row they read is committed; a rollback drops the push.
    values = {
        "task_id": task.pk,
        "queue": task.queue,
        "rq_job_id": task.rq_job_id,
        "job_func": task.job_func,
        "job_kwargs": task.job_kwargs,
    }
    transaction.on_commit(lambda: _push(**values))


def task_start(
    *,
    owner,
    kind: str,
    label: str,
    job: Callable[..., Any] | str,
    queue: str = "default",
    job_kwargs: dict[str, Any] | None = None,
    scope: str = "",
    link: str = "",
) -> Task:
    """Create a QUEUED row and enqueue its job after commit. Raises QueueUnavailable first.

    `scope` groups the row with what it is about (the caller's key, e.g. "subject:12"); `link`
    is the page its card leads to."""
    if queue not in settings.JOB_QUEUES:
        raise ValueError(f"Unknown queue {queue!r}; expected one of {sorted(settings.JOB_QUEUES)}.")
    job_func = job if isinstance(job, str) else f"{job.__module__}.{job.__qualname__}"
    queue_check()
    task = Task(
        owner=owner,
        scope=scope,
        link=link,
        kind=kind,
        label=label,
        queue=queue,
        job_func=job_func,
        job_kwargs=job_kwargs or {},
    )
    task.rq_job_id = _rq_job_id(task)
    task.save()
    _enqueue_on_commit(task)
    return task


def task_cancel(*, task: Task) -> Task:
    """Stop a job: a queued one never starts, a running one stops at its next step."""
    now = timezone.now()
    if task.status == Status.QUEUED:
        updated = Task.objects.filter(pk=task.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, message="Cancelled.", finished_at=now, updated_at=now
        )
        if updated:
            # The row says CANCELLED and the job wrapper skips rows that are not QUEUED, so a
            # job we cannot reach now still never runs.
            with contextlib.suppress(NoSuchJobError, RedisError, OSError):
                Job.fetch(task.rq_job_id, connection=_connection()).cancel()
    elif task.status == Status.RUNNING:
        Task.objects.filter(pk=task.pk, status=Status.RUNNING).update(
            cancel_requested=True, message="Cancelling…", updated_at=now
        )
    task.refresh_from_db()
    return task


def task_retry(*, task: Task) -> Task:
    """Queue a failed or cancelled job again on the same row."""
    if not task.can_retry:
        raise ValueError("Only a failed or cancelled job can be retried.")
    queue_check()
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        if not task.can_retry:
            return task
        task.attempts += 1
        task.rq_job_id = _rq_job_id(task)
        task.status = Status.QUEUED
        task.progress, task.step, task.eta_seconds = 0.0, 0, None
        task.message = task.error = task.worker_name = ""
        task.cancel_requested = False
        task.started_at = task.finished_at = None
        task.save()
        _enqueue_on_commit(task)
    return task


def _diagnose(task: Task, connection) -> tuple[str, str] | None:
    """Return (status, error) for a row whose job is no longer going to finish it, else None."""
    try:
        job = Job.fetch(task.rq_job_id, connection=connection)
    except NoSuchJobError:
        job = None
    if job is None:
        lost_in_restart = _lost_in_restart(task)
        if lost_in_restart:
            return Status.FAILED, lost_in_restart
        if task.status == Status.RUNNING or timezone.now() - task.created_at > LOST_JOB_GRACE:
            return Status.FAILED, runtime.JOB_LOST
        return None
    rq_status = job.get_status()
    if rq_status == JobStatus.FAILED:
        result = job.latest_result()
        exc = (result.exc_string if result else "") or ""
        if "JobTimeoutException" in exc:
            return Status.FAILED, runtime.JOB_TIMED_OUT
        if "abandon" in exc.lower():
            return Status.FAILED, runtime.WORKER_DIED
        return Status.FAILED, runtime.JOB_CRASHED
    if rq_status in (JobStatus.STOPPED, JobStatus.CANCELED):
        return Status.CANCELLED, ""
    if rq_status == JobStatus.FINISHED:
        return Status.FAILED, runtime.JOB_ENDED_SILENTLY
    if task.status == Status.RUNNING and task.worker_name:
        # Our worker refreshes this key from a thread, even while a job holds its main thread;
        # a progress write within the same span is proof of life too.
        recent = timezone.now() - task.updated_at < timedelta(seconds=runtime.worker_alive_ttl())
        if not recent and not connection.exists(runtime.ALIVE_KEY.format(task.worker_name)):
            return Status.FAILED, runtime.WORKER_DIED
    return None


def tasks_reconcile(*, tasks: Iterable[Task] | None = None) -> int:
    """Close rows whose RQ job failed, was abandoned or vanished. Returns how many changed.

    Raises QueueUnavailable when Redis cannot be asked (then nothing can be told).
    """
    if tasks is None:
        tasks = Task.objects.filter(status__in=Task.ACTIVE)
    connection = _connection()
    changed = 0
    try:
        for task in tasks:
            if task.status not in Task.ACTIVE:
                continue
            verdict = _diagnose(task, connection)
            if verdict is None:
                continue
            status, error = verdict
            now = timezone.now()
            closed = Task.objects.filter(pk=task.pk, status=task.status).update(
                status=status, error=error, finished_at=now, updated_at=now
            )
            if closed:
                runtime.task_finished_send(task.pk)
            changed += closed
            log.warning("Reconciled task %s: %s %s", task.pk, status, error)
    except (RedisError, OSError) as exc:
        log.warning("Could not reconcile jobs: %s", exc)
        raise runtime.QueueUnavailable() from None
    return changed


def task_refresh(*, task: Task) -> Task:
    """Reconcile one active row before showing it; with Redis down, show the row as it is."""
    if task.is_active:
        try:
            if tasks_reconcile(tasks=[task]):
                task.refresh_from_db()
        except runtime.QueueUnavailable:
            pass
    return task
