"""Webhooks: a real receiver on 127.0.0.1 checks every request with the `standardwebhooks`
package, while real services publish posts, revoke consents and finish jobs."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from creator.jobs import runtime
from creator.jobs.models import Task
from creator.likeness import services as likeness_services
from creator.likeness.models import Consent
from creator.notices import webhook_http, webhooks
from creator.notices.models import Notice, WebhookDelivery, WebhookEndpoint
from creator.studio.models import PersonalModel
from gallery import services as gallery_services
from gallery import signing
from gallery.models import Post
from tests import images
from tests.conftest import CONFIRM, committing, wait_for

Status = WebhookDelivery.Status


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies each request as a creator's receiver would and
    answers with the next of `answers` (then 200). It stops itself after a minute at most."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.secret = ""
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                try:
                    event, error = Webhook(receiver.secret).verify(body, headers), None
                except Exception as exc:
                    event, error = None, exc
                receiver.requests.append(
                    {"path": self.path, "headers": headers, "event": event, "error": error}
                )
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", f"{receiver.url}moved")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self._timer = threading.Timer(60, self.stop)
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    @property
    def events(self) -> list[dict]:
        assert [r["error"] for r in self.requests if r["error"]] == []  # every one verified
        return [r["event"] for r in self.requests]

    def ids(self) -> list[str]:
        return [r["headers"]["webhook-id"] for r in self.requests]


@pytest.fixture(autouse=True)
def _webhook_settings(settings, tmp_path, private_media):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_DELAYS = [0, 0.05, 0.05]
    settings.WEBHOOK_TIMEOUT = 2
    settings.WEBHOOK_DISABLE_AFTER = 2
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def endpoint_for(user, receiver: Receiver, events=("*",)) -> WebhookEndpoint:
    endpoint = webhooks.endpoint_create(user=user, url=receiver.url, events=list(events))
    receiver.secret = endpoint.secret
    return endpoint


def send_all(timeout: float = 10.0) -> None:
    """What the worker does: make due attempts until nothing waits any more."""
    deadline = time.monotonic() + timeout
    while WebhookDelivery.objects.filter(status__in=(Status.PENDING, Status.FAILED)).exists():
        assert time.monotonic() < deadline, "deliveries still waiting"
        webhooks.deliveries_send_due()
        time.sleep(0.02)


def make_post(owner, **overrides) -> Post:
    values = {
        "image": images.astronaut_variant(2), "prompt": "@me on a boat", "seed": 3,
        "generation_settings": {"steps": 4}, "model_name": "Alice · model 1",
        "base_model": "builtin:tiny", "consent_id": None,
    }  # fmt: skip
    return gallery_services.post_create(owner=owner, **{**values, **overrides})


def granted(subject) -> Consent:
    return Consent.objects.create(
        subject=subject, method=Consent.Method.SELFIE, status=Consent.Status.GRANTED,
        granted_at=timezone.now(),
    )  # fmt: skip


# --- signing ---------------------------------------------------------------------------------


def test_it_signs_the_way_the_standard_webhooks_package_verifies(alice, receiver):
    secret = webhooks.secret_new()
    assert secret.startswith("whsec_")
    now = timezone.now()
    expected = Webhook(secret).sign("msg_1", now, '{"a":1}')
    assert webhooks.sign(secret, "msg_1", int(now.timestamp()), '{"a":1}') == expected

    endpoint = endpoint_for(alice, receiver)
    with committing():
        (delivery,) = webhooks.emit(user=alice, event="post.published", data={"post_id": "x"})
    send_all()
    (event,) = receiver.events
    assert event["type"] == "post.published"
    assert event["data"] == {"post_id": "x"}
    assert receiver.ids() == [delivery.msg_id]
    assert delivery.msg_id.startswith("msg_")
    headers = receiver.requests[0]["headers"]
    assert headers["Host"] == f"127.0.0.1:{receiver.server.server_port}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_a_wrong_secret_does_not_verify(alice, receiver):
    endpoint_for(alice, receiver)
    receiver.secret = webhooks.secret_new()  # the receiver holds another endpoint's secret
    with committing():
        webhooks.emit(user=alice, event="post.published", data={})
    send_all()
    assert receiver.requests[0]["error"] is not None


# --- events from the real services -------------------------------------------------------------


def test_a_post_published_unpublished_and_taken_down_is_sent_once_each(alice, receiver):
    endpoint_for(alice, receiver)
    post = make_post(alice)
    with committing():
        gallery_services.post_publish(post=post)
        gallery_services.post_publish(post=post)  # already public: nothing new to say
        gallery_services.post_unpublish(post=post)
        gallery_services.post_withdraw(post=post)
    send_all()
    assert [e["type"] for e in receiver.events] == [
        "post.published",
        "post.unpublished",
        "post.taken_down",
    ]
    assert len(set(receiver.ids())) == 3  # one delivery id each, each seen once
    published = receiver.events[0]["data"]
    assert published["post_id"] == str(post.pk)
    assert published["url"].endswith(reverse("post_detail", args=[post.pk]))
    assert published["public_url"].endswith(reverse("public_post", args=[post.pk]))


def test_revoking_consent_sends_consent_revoked_and_the_posts_taken_down(
    alice, alice_subject, receiver
):
    endpoint_for(alice, receiver)
    consent = granted(alice_subject)
    post = make_post(alice, consent_id=consent.pk)
    gallery_services.post_publish(post=post)
    WebhookDelivery.objects.all().delete()  # only what revoking sends
    with committing():
        likeness_services.consent_revoke(subject=alice_subject, by="subject")
    send_all()
    by_type = {e["type"]: e["data"] for e in receiver.events}
    assert sorted(by_type) == ["consent.revoked", "post.taken_down"]
    assert by_type["consent.revoked"]["consent_id"] == consent.pk
    assert by_type["consent.revoked"]["subject_id"] == alice_subject.pk
    assert by_type["consent.revoked"]["state"] == "revoked"
    assert by_type["consent.revoked"]["posts_taken_down"] == 1
    assert by_type["post.taken_down"]["post_id"] == str(post.pk)
    assert "selfie_embedding" not in str(by_type)


def test_only_the_events_an_endpoint_asked_for_are_sent(alice, bob, receiver):
    endpoint_for(alice, receiver, events=["post.unpublished"])
    other = Receiver()
    try:
        endpoint_for(bob, other)
        post = make_post(alice)
        with committing():
            gallery_services.post_publish(post=post)
            gallery_services.post_unpublish(post=post)
        send_all()
        assert [e["type"] for e in receiver.events] == ["post.unpublished"]
        assert other.requests == []  # bob's endpoint hears nothing of alice's posts
    finally:
        other.stop()


def test_jobs_that_end_send_training_and_generation_events(alice, alice_subject, receiver):
    endpoint_for(alice, receiver)
    task = Task.objects.create(
        owner=alice, kind="training", label="Training", job_func="x", rq_job_id="t-1",
        status=Task.Status.SUCCEEDED,
    )  # fmt: skip
    model = PersonalModel.objects.create(
        subject=alice_subject, consent=granted(alice_subject), name="m", task=task
    )
    failed = Task.objects.create(
        owner=alice, kind="generation", label="Generation", job_func="x", rq_job_id="g-1",
        status=Task.Status.FAILED, error="It broke.",
    )  # fmt: skip
    generation = model.generations.create(owner=alice, prompt="p", seed=1, task=failed)
    with committing():
        runtime.task_finished_send(task.pk)
        runtime.task_finished_send(failed.pk)
    send_all()
    trained, broke = receiver.events
    assert trained["type"] == "training.succeeded"
    assert trained["data"]["model_id"] == model.pk
    assert broke["type"] == "generation.failed"
    assert broke["data"]["generation_id"] == generation.pk
    assert broke["data"]["error"] == "It broke."


def test_training_progress_is_sent_at_25_50_and_75_percent_once_each(
    alice, alice_subject, receiver
):
    from types import SimpleNamespace

    from creator.studio.work import _TrainingReport

    endpoint_for(alice, receiver, events=["training.progress"])
    model = PersonalModel.objects.create(
        subject=alice_subject, consent=granted(alice_subject), name="m"
    )
    progress = SimpleNamespace(update=lambda *a, **k: None)
    report = _TrainingReport(model, progress)
    with committing():
        for step in (0, 1, 1, 3, 4, 8):
            report.on_progress(SimpleNamespace(step=step, total=8, losses=[], loss=0.1, phase="T"))
    send_all()
    assert [e["data"]["percent"] for e in receiver.events] == [25, 50, 75]


# --- retries, giving up, turning off ---------------------------------------------------------


def test_a_receiver_answering_500_twice_sees_the_same_id_three_times(alice, alice_client, receiver):
    endpoint = endpoint_for(alice, receiver)
    receiver.answers = [500, 500]
    post = make_post(alice)
    with committing():
        gallery_services.post_publish(post=post)
    send_all()
    assert len(receiver.requests) == 3
    assert len(set(receiver.ids())) == 1
    assert {e["type"] for e in receiver.events} == {"post.published"}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.SUCCEEDED
    assert delivery.attempts == 3
    assert delivery.codes == [500, 500, 200]
    page = alice_client.get(reverse("webhook_detail", args=[endpoint.pk])).content.decode()
    assert "500, 500, 200" in page
    assert delivery.msg_id in page


def test_repeated_failures_turn_the_endpoint_off_with_a_notice(alice, alice_client, receiver):
    endpoint = endpoint_for(alice, receiver)
    receiver.answers = [500] * 6  # three attempts for each of two posts
    with committing():
        for _ in range(2):
            gallery_services.post_publish(post=make_post(alice))
    send_all()
    assert len(receiver.requests) == 6
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Status.GAVE_UP}
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == webhooks.DISABLED_AFTER_FAILURES.format(count=2)
    notice = Notice.objects.get(user=alice, kind="webhook_disabled")
    assert notice.link == reverse("webhook_detail", args=[endpoint.pk])
    assert endpoint.disabled_reason in alice_client.get(reverse("webhooks")).content.decode()
    with committing():
        assert webhooks.emit(user=alice, event="post.published", data={}) == []
    alice_client.post(reverse("webhook_enabled", args=[endpoint.pk]), {"enabled": "1"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.consecutive_failures == 0


def test_a_redirect_is_a_failure_and_is_not_followed(alice, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = [0]
    endpoint_for(alice, receiver)
    receiver.answers = [302]
    with committing():
        webhooks.emit(user=alice, event="post.published", data={})
    send_all()
    assert [r["path"] for r in receiver.requests] == ["/hooks/"]  # never /hooks/moved
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.GAVE_UP
    assert delivery.last_response_code == 302


def test_the_worker_delivers_and_retries_on_its_own(alice, receiver, workers, settings):
    """The real path: the RQ job makes the first attempt, the worker's housekeeping the rest."""
    workers.env.update(WEBHOOK_ALLOW_PRIVATE="true", WEBHOOK_RETRY_DELAYS="0,0.5,0.5")
    workers.start()
    endpoint_for(alice, receiver)
    receiver.answers = [500, 500]
    gallery_services.post_publish(post=make_post(alice))  # commits at once (transactional_db)

    def delivered():
        return WebhookDelivery.objects.filter(status=Status.SUCCEEDED).first()

    delivery = wait_for(delivered, timeout=30, what="the delivery to succeed")
    assert delivery.codes == [500, 500, 200]
    assert len(receiver.requests) == 3 and len(set(receiver.ids())) == 1
    assert receiver.events[0]["type"] == "post.published"


# --- URLs Candor won't send to -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", webhook_http.URL_SCHEME),
        ("example.com/hook", webhook_http.URL_SCHEME),
        ("https://user:pass@example.com/hook", webhook_http.URL_CREDENTIALS),
        ("http://127.0.0.1:9/hook", webhook_http.URL_PRIVATE),
        ("http://localhost/hook", webhook_http.URL_PRIVATE),
        ("http://[::1]/hook", webhook_http.URL_PRIVATE),
        ("http://10.1.2.3/hook", webhook_http.URL_PRIVATE),
        ("http://169.254.169.254/latest/meta-data", webhook_http.URL_PRIVATE),
        ("http://[::ffff:192.168.0.1]/hook", webhook_http.URL_PRIVATE),
        ("http://0.0.0.0/hook", webhook_http.URL_PRIVATE),
        ("https://example.com:99999/hook", webhook_http.URL_BAD_PORT),
    ],
)
def test_it_refuses_urls_it_must_not_send_to(settings, url, message):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhook_http.UrlRefused) as refused:
        webhooks.check_url(url)
    assert refused.value.message == message


def test_every_address_a_name_resolves_to_must_be_public():
    def resolve(host, port, **kwargs):
        return [(2, 1, 6, "", ("93.184.216.34", port)), (2, 1, 6, "", ("10.0.0.5", port))]

    with pytest.raises(webhook_http.UrlRefused):
        webhook_http.check_url("https://mixed.example/hook", resolve=resolve)
    target = webhook_http.check_url("https://93.184.216.34/hook?x=1")
    assert (target.ip, target.host, target.port, target.path) == (
        "93.184.216.34",
        "93.184.216.34",
        443,
        "/hook?x=1",
    )


def test_the_page_shows_why_a_url_was_refused(alice, alice_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url, message in [
        ("http://127.0.0.1:8000/hook", webhook_http.URL_PRIVATE),
        ("ftp://example.com/", webhook_http.URL_SCHEME),
    ]:
        response = alice_client.post(reverse("webhooks"), {"url": url, "all_events": "on"})
        assert response.status_code == 400
        assert message in response.content.decode().replace("&#x27;", "'")
    assert not WebhookEndpoint.objects.exists()


def test_a_url_that_turned_private_after_it_was_saved_is_not_sent_to(alice, receiver, settings):
    endpoint_for(alice, receiver)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_RETRY_DELAYS = [0]
    with committing():
        webhooks.emit(user=alice, event="post.published", data={})
    send_all()
    assert receiver.requests == []
    assert WebhookDelivery.objects.get().last_error == webhook_http.URL_PRIVATE


# --- pages -------------------------------------------------------------------------------------


def test_a_creator_adds_an_endpoint_tests_it_and_deletes_it(alice, alice_client, receiver):
    response = alice_client.post(
        reverse("webhooks"),
        {"url": receiver.url, "description": "My CMS", "events": ["post.published"]},
    )
    endpoint = WebhookEndpoint.objects.get(user=alice)
    assert response.url == reverse("webhook_detail", args=[endpoint.pk])
    assert endpoint.events == ["post.published"]
    receiver.secret = endpoint.secret
    page = alice_client.get(response.url).content.decode()
    assert endpoint.secret in page and "Send test event" in page
    assert receiver.url in alice_client.get(reverse("webhooks")).content.decode()

    with committing():
        alice_client.post(reverse("webhook_test", args=[endpoint.pk]))
    send_all()
    (event,) = receiver.events
    assert event["type"] == webhooks.TEST_EVENT

    delete = reverse("webhook_delete", args=[endpoint.pk])
    assert "Delete endpoint" in alice_client.post(delete).content.decode()  # the confirm step
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    alice_client.post(delete, CONFIRM)
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_creator_edits_turns_off_and_rotates_the_secret(alice, alice_client, receiver):
    endpoint = endpoint_for(alice, receiver)
    url = reverse("webhook_detail", args=[endpoint.pk])
    alice_client.post(url, {"url": receiver.url, "events": ["consent.given", "consent.revoked"]})
    endpoint.refresh_from_db()
    assert endpoint.events == ["consent.given", "consent.revoked"]
    response = alice_client.post(url, {"url": receiver.url})
    assert webhooks.EVENTS_NONE in response.content.decode().replace("&#x27;", "'")
    alice_client.post(reverse("webhook_enabled", args=[endpoint.pk]), {"enabled": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    old = endpoint.secret
    alice_client.post(reverse("webhook_secret", args=[endpoint.pk]), CONFIRM)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")


def test_it_checks_owner(alice, bob_client, receiver):
    endpoint = endpoint_for(alice, receiver)
    before = WebhookEndpoint.objects.values().get(pk=endpoint.pk)
    assert bob_client.get(reverse("webhook_detail", args=[endpoint.pk])).status_code == 404
    for name, data in [
        ("webhook_detail", {"url": "http://127.0.0.1:1/x", "all_events": "on"}),
        ("webhook_enabled", {"enabled": "0"}),
        ("webhook_test", {}),
        ("webhook_secret", CONFIRM),
        ("webhook_delete", CONFIRM),
    ]:
        assert bob_client.post(reverse(name, args=[endpoint.pk]), data).status_code == 404, name
    assert WebhookEndpoint.objects.values().get(pk=endpoint.pk) == before
    assert not WebhookDelivery.objects.exists()
    assert receiver.url not in bob_client.get(reverse("webhooks")).content.decode()


def test_the_pages_need_a_login_and_a_csrf_token(alice, anonymous, receiver):
    assert anonymous.get(reverse("webhooks")).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("webhooks"), {"url": receiver.url, "all_events": "on"})
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_finished_photo_checks_send_photos_checked_with_the_counts(
    alice, alice_client, alice_subject, receiver
):
    from tests.conftest import run_photo_checks, upload_files

    endpoint_for(alice, receiver, events=["photos.checked"])
    files = {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(3)}
    upload_files(alice_client, alice_subject, files)
    run_photo_checks()
    send_all()
    assert [e["type"] for e in receiver.events] == ["photos.checked"]
    data = receiver.events[0]["data"]
    assert data["subject_id"] == alice_subject.pk and data["checked"] == 3
    assert data["usable_photos"] == alice_subject.photos.filter(status="ok").count() == 3
