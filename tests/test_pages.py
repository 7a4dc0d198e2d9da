"""The base UI: landing page, dashboard, job pages, error pages, behaviour with Redis down."""

import pytest
from django.test import Client
from django.urls import reverse

from creator.jobs import runtime, services
from creator.jobs.models import Task
from tests import jobs

Status = Task.Status


def make_task(owner, **fields) -> Task:
    defaults = {
        "kind": "test",
        "label": "Counting",
        "job_func": "tests.jobs.count_slowly",
        "rq_job_id": f"task-manual-{Task.objects.count()}",
    }
    return Task.objects.create(owner=owner, **{**defaults, **fields})


@pytest.fixture
def redis_down(settings):
    """Point the queues at a socket where nothing listens."""
    settings.RQ_QUEUES = {
        name: {**conf, "URL": "unix:///nonexistent/candor-redis.sock?db=0"}
        for name, conf in settings.RQ_QUEUES.items()
    }


def test_the_landing_page_explains_candor(db, anonymous):
    html = anonymous.get(reverse("home")).content.decode()
    assert "train a personal image model of yourself" in html
    assert "AI-generated" in html
    assert 'href="/static/css/candor.css"' in html


def test_static_files_are_served_locally(db, anonymous):
    html = anonymous.get(reverse("home")).content.decode()
    assert "http://" not in html.split("<body")[0].replace("http-equiv", "")
    assert "https://" not in html.split("<body")[0]


def test_the_dashboard_needs_a_login(anonymous):
    response = anonymous.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_dashboard_lists_only_the_creators_own_jobs(alice, bob, alice_client, redis_down):
    make_task(alice, label="Alice's training run", status=Status.RUNNING, step=3, total=10)
    make_task(bob, label="Bob's secret run")

    html = alice_client.get(reverse("dashboard")).content.decode()

    assert "Alice's training run" in html or "Alice&#x27;s training run" in html
    assert "Step 3 of 10" in html
    assert "secret run" not in html


def test_reading_a_running_job_whose_rq_job_is_gone_fails_it(alice, alice_client):
    task = make_task(alice, status=Status.RUNNING, step=4, total=8, progress=0.5)

    data = alice_client.get(reverse("task_status", args=[task.pk])).json()

    assert (data["id"], data["status"]) == (str(task.pk), "failed")
    assert data["error"] == runtime.JOB_LOST


def test_a_job_status_is_json_or_an_html_fragment(alice, alice_client):
    task = make_task(alice, status=Status.SUCCEEDED, step=8, total=8, progress=1.0)
    data = alice_client.get(reverse("task_status", args=[task.pk])).json()
    assert (data["status"], data["step"], data["total"], data["progress"]) == (
        "succeeded",
        8,
        8,
        1.0,
    )
    assert data["active"] is False

    fragment = alice_client.get(reverse("task_status", args=[task.pk]) + "?format=html")
    html = fragment.content.decode()
    assert html.lstrip().startswith("<article")
    assert "Succeeded" in html
    assert "data-poll" not in html  # a finished job stops the page polling


def test_an_active_job_fragment_keeps_polling(alice, alice_client, redis_down):
    task = make_task(alice, status=Status.RUNNING, step=1, total=5, progress=0.2)
    html = alice_client.get(
        reverse("task_status", args=[task.pk]) + "?format=html"
    ).content.decode()
    assert f'data-poll="/jobs/{task.pk}/status?format=html"' in html
    assert "Step 1 of 5" in html


@pytest.mark.parametrize("name", ["task_detail", "task_status"])
def test_another_creators_job_is_a_404(alice, bob_client, name):
    task = make_task(alice)
    assert bob_client.get(reverse(name, args=[task.pk])).status_code == 404


@pytest.mark.parametrize("name", ["task_cancel", "task_retry"])
def test_another_creator_cannot_cancel_or_retry_a_job(alice, bob_client, name):
    task = make_task(alice, status=Status.FAILED)
    assert bob_client.post(reverse(name, args=[task.pk])).status_code == 404
    task.refresh_from_db()
    assert task.status == Status.FAILED


def test_the_404_page_is_friendly(db, anonymous):
    response = anonymous.get("/no/such/page/")
    assert response.status_code == 404
    assert "We can't find that page" in response.content.decode()


def test_the_500_page_is_friendly(db, settings):
    settings.DEBUG = False
    from django.urls import path

    def broken(request):
        raise RuntimeError("boom")

    import config.urls

    settings.ROOT_URLCONF = type(
        "urls", (), {"urlpatterns": [path("boom/", broken), *config.urls.urlpatterns]}
    )
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_with_redis_down_pages_that_only_read_still_render(alice, alice_client, redis_down):
    task = make_task(alice, status=Status.RUNNING, step=2, total=4, progress=0.5)

    assert alice_client.get(reverse("dashboard")).status_code == 200
    assert alice_client.get(reverse("task_detail", args=[task.pk])).status_code == 200
    assert alice_client.get(reverse("task_status", args=[task.pk])).json()["status"] == "running"


def test_with_redis_down_an_action_that_needs_the_queue_says_so(alice, alice_client, redis_down):
    task = make_task(alice, status=Status.FAILED, error="It broke.")

    response = alice_client.post(reverse("task_retry", args=[task.pk]), follow=True)

    assert response.status_code == 200
    assert runtime.QUEUE_UNAVAILABLE in response.content.decode().replace("&#x27;", "'")
    task.refresh_from_db()
    assert (task.status, task.attempts) == (Status.FAILED, 1)


def test_with_redis_down_starting_a_job_creates_nothing(alice, redis_down):
    with pytest.raises(runtime.QueueUnavailable):
        services.task_start(owner=alice, kind="test", label="x", job=jobs.count_slowly)
    assert Task.objects.count() == 0


def test_every_page_forbids_inline_script_and_framing(anonymous, alice_client):
    for client, url in ((anonymous, "/"), (anonymous, "/verify/"), (alice_client, "/dashboard/")):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy


def test_no_template_relies_on_inline_script():
    """The policy above would break any inline script or event handler; none may exist."""
    import re

    from tests.conftest import ROOT

    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        html = template.read_text()
        inline = [t for t in re.findall(r"<script\b[^>]*>", html) if " src=" not in t]
        handlers = re.findall(r"\son[a-z]+\s*=", html)
        if inline or handlers or "javascript:" in html:
            offenders.append(template.name)
    assert offenders == []
