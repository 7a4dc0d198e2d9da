"""The job runtime: rows that tell the truth about background work, in a real worker."""

import signal
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rq import Queue
from rq.job import Job

from creator.jobs import runtime, services
from creator.jobs.models import Task
from tests import jobs
from tests.conftest import wait_for, wait_for_status

Status = Task.Status


def start(owner, job=jobs.count_slowly, **kwargs) -> Task:
    return services.task_start(
        owner=owner, kind="test", label="Counting", job=job, job_kwargs=kwargs
    )


def test_a_job_runs_and_writes_its_progress_to_the_row(alice, workers):
    task = start(alice, steps=12, delay=0.1)
    workers.start()
    seen_steps = set()

    def finished():
        task.refresh_from_db()
        if task.status == Status.RUNNING:
            seen_steps.add(task.step)
        return task.status in (Status.SUCCEEDED, Status.FAILED)

    wait_for(finished, timeout=30, interval=0.02, what="the job to finish")
    assert task.status == Status.SUCCEEDED, workers.logs()
    assert (task.step, task.total, task.progress) == (12, 12, 1.0)
    assert task.message == "Counted to 12"
    assert task.worker_name
    assert task.started_at <= task.finished_at
    # Progress was visible while it ran, not only at the end.
    assert len(seen_steps - {0, 12}) >= 3


def test_progress_has_an_eta_while_running(alice, workers):
    task = start(alice, steps=30, delay=0.1)
    workers.start()
    wait_for(lambda: Task.objects.get(pk=task.pk).step >= 5, what="five steps")
    task.refresh_from_db()
    assert task.status == Status.RUNNING
    # 25 steps of 0.1 s are left: the ETA should be in that neighbourhood.
    assert 0.5 < task.eta_seconds < 10


def test_a_crash_fails_the_row_with_a_plain_message_and_no_internals(alice, workers):
    task = start(alice, job=jobs.crash)
    workers.start()
    wait_for_status(task, Status.FAILED)
    assert task.error == runtime.JOB_CRASHED
    assert "hunter2" not in task.error


def test_a_job_error_is_shown_to_the_creator_as_written(alice, workers):
    task = start(alice, job=jobs.refuse)
    workers.start()
    wait_for_status(task, Status.FAILED)
    assert task.error == "Your photos are too dark to use."


def test_a_job_past_its_time_limit_fails_with_a_timeout_message(alice, workers, settings):
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, "default": 1}
    task = start(alice, steps=40, delay=0.1)
    workers.start()
    wait_for_status(task, Status.FAILED, timeout=30)
    assert task.error == runtime.JOB_TIMED_OUT


def test_cancelling_a_running_job_stops_it_between_steps(alice, alice_client, workers):
    task = start(alice, steps=200, delay=0.05)
    workers.start()
    wait_for(lambda: Task.objects.get(pk=task.pk).step >= 2, what="the job to start")

    response = alice_client.post(reverse("task_cancel", args=[task.pk]))

    assert response.status_code == 302
    wait_for_status(task, Status.CANCELLED, timeout=5)
    assert task.step < 200
    step_when_cancelled = task.step
    time.sleep(0.3)
    task.refresh_from_db()
    assert task.step == step_when_cancelled


def test_a_cancelled_queued_job_never_runs(alice, alice_client, workers, redis_conn):
    task = start(alice, steps=3, delay=0.01)

    alice_client.post(reverse("task_cancel", args=[task.pk]))
    task.refresh_from_db()
    assert task.status == Status.CANCELLED

    follower = start(alice, steps=1, delay=0.01)
    workers.start()
    wait_for_status(follower, Status.SUCCEEDED)
    task.refresh_from_db()
    assert task.status == Status.CANCELLED
    assert task.started_at is None


def test_a_worker_killed_mid_job_leaves_the_row_failed_with_a_message(alice, alice_client, workers):
    task = start(alice, steps=500, delay=0.05)
    worker = workers.start()
    wait_for(lambda: Task.objects.get(pk=task.pk).step >= 2, what="the job to be running")

    worker.send_signal(signal.SIGKILL)
    worker.wait()

    def reconciled():
        # The status endpoint a progress page polls reconciles the row it shows.
        return alice_client.get(reverse("task_status", args=[task.pk])).json()["status"] == "failed"

    wait_for(reconciled, timeout=30, interval=0.2, what="the row to be failed")
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error == runtime.WORKER_DIED
    assert task.finished_at is not None


def test_a_surviving_worker_reconciles_the_jobs_of_a_dead_one(alice, workers):
    task = start(alice, steps=500, delay=0.05)
    doomed = workers.start()
    wait_for(lambda: Task.objects.get(pk=task.pk).step >= 2, what="the job to be running")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()

    workers.start()  # heartbeats every 0.3 s and reconciles every sixth beat

    wait_for_status(task, Status.FAILED, timeout=40)
    assert task.error == runtime.WORKER_DIED


def test_a_running_row_whose_job_vanished_is_failed(alice, redis_conn):
    task = start(alice)
    Task.objects.filter(pk=task.pk).update(status=Status.RUNNING, worker_name="gone")
    redis_conn.flushdb()

    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert (task.status, task.error) == (Status.FAILED, runtime.JOB_LOST)


def test_a_queued_row_without_a_job_is_failed_only_after_a_grace_period(alice, redis_conn):
    task = start(alice)
    redis_conn.flushdb()

    assert services.tasks_reconcile() == 0
    Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert (task.status, task.error) == (Status.FAILED, runtime.JOB_LOST)


def test_the_job_is_pushed_only_when_the_row_commits(transactional_db, alice, redis_conn):
    queue = Queue("default", connection=redis_conn)
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = start(alice)
        raise RuntimeError("the request failed after starting the job")
    assert queue.count == 0
    assert not Task.objects.filter(pk=rolled_back.pk).exists()

    with transaction.atomic():
        task = start(alice)
        assert queue.count == 0
    assert queue.job_ids == [task.rq_job_id]
    job = Job.fetch(task.rq_job_id, connection=redis_conn)
    assert job.args == (str(task.pk),)


def test_retrying_a_failed_job_queues_it_again_on_the_same_row(alice, alice_client, workers):
    task = start(alice, job=jobs.crash)
    workers.start()
    wait_for_status(task, Status.FAILED)
    first_job_id = task.rq_job_id

    alice_client.post(reverse("task_retry", args=[task.pk]))

    task.refresh_from_db()
    assert task.attempts == 2
    assert task.rq_job_id != first_job_id
    wait_for_status(task, Status.FAILED)
    assert task.error == runtime.JOB_CRASHED


def test_the_reconcile_command_fails_rows_of_vanished_jobs(alice, redis_conn):
    task = start(alice)
    Task.objects.filter(pk=task.pk).update(status=Status.RUNNING, worker_name="gone")
    redis_conn.flushdb()
    out = StringIO()

    call_command("reconcile_jobs", stdout=out)

    assert "Reconciled 1 job(s)." in out.getvalue()
    task.refresh_from_db()
    assert task.status == Status.FAILED


def test_a_recent_progress_write_counts_as_proof_of_life(alice):
    from tests.conftest import committing

    with committing():
        task = start(alice)
    Task.objects.filter(pk=task.pk).update(
        status=Status.RUNNING, worker_name="busy-worker", updated_at=timezone.now()
    )  # the heartbeat key is missing, as when C code holds the GIL for a few seconds

    assert services.tasks_reconcile() == 0

    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert task.error == runtime.WORKER_DIED


@pytest.fixture
def embedded_redis(settings, tmp_path):
    """Where `up` would keep its embedded Redis (and its note of when that server started)."""
    settings.EMBEDDED_REDIS_SOCKET = tmp_path / "redis.sock"


def test_a_running_job_lost_when_up_restarted_its_crashed_redis_says_so(
    alice, redis_conn, embedded_redis
):
    task = start(alice)
    Task.objects.filter(pk=task.pk).update(
        status=Status.RUNNING, worker_name="w", started_at=timezone.now() - timedelta(seconds=5)
    )
    services.queue_restart_record(after_crash=True)
    redis_conn.flushdb()  # what the new server holds: nothing

    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert (task.status, task.error) == (Status.FAILED, runtime.JOB_LOST_QUEUE_RESTARTED)


def test_a_queued_job_lost_in_a_restart_is_failed_without_waiting_out_the_grace(
    alice, redis_conn, embedded_redis
):
    task = start(alice)
    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(seconds=5))
    services.queue_restart_record(after_crash=True)
    redis_conn.flushdb()

    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert (task.status, task.error) == (Status.FAILED, runtime.JOB_LOST_QUEUE_RESTARTED)


def test_a_job_lost_when_candor_was_stopped_says_so_after_the_next_start(
    alice, redis_conn, embedded_redis
):
    task = start(alice)
    Task.objects.filter(pk=task.pk).update(
        status=Status.RUNNING, worker_name="w", started_at=timezone.now() - timedelta(hours=1)
    )
    services.queue_restart_record(after_crash=False)  # `up` starting afresh
    redis_conn.flushdb()

    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert task.error == runtime.JOB_LOST_CANDOR_STOPPED


def test_a_job_queued_after_the_last_restart_and_then_lost_is_not_blamed_on_it(
    alice, redis_conn, embedded_redis
):
    services.queue_restart_record(after_crash=True)
    time.sleep(0.01)
    task = start(alice)
    # Its job is not in Redis: the push waits for a commit this test never makes.
    Task.objects.filter(pk=task.pk).update(status=Status.RUNNING, started_at=timezone.now())

    assert services.tasks_reconcile() == 1
    task.refresh_from_db()
    assert task.error == runtime.JOB_LOST
