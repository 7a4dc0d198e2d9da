"""The REST API, endpoint by endpoint: the owner gets 2xx, another creator's token 404, no token
401, a token without the scope 403, bad input a 4xx problem document — never a 500."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from creator.accounts.tokens import SCOPES, token_create
from creator.likeness import services as likeness
from creator.likeness.models import Consent, Subject
from creator.studio import services as studio
from creator.studio.models import Generation, PersonalModel
from gallery.models import Post
from tests import images
from tests.test_training import make_ready, run_queued

pytestmark = pytest.mark.usefixtures("private_media")
API = "/api/v1"


def token_for(user, scopes=SCOPES) -> str:
    return token_create(user=user, name="test", scopes=list(scopes))[1]


def call(method: str, path: str, token: str | None = None, *, data=None, files=None, **headers):
    client = Client()
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if files is not None:  # multipart: an upload
        return client.post(path, files, **headers)
    body = json.dumps(data) if data is not None else ""
    return client.generic(method, path, body, content_type="application/json", **headers)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    assert body["type"].endswith(f"#problem-{code}")
    return body


@pytest.fixture
def world(alice, bob, alice_subject, settings):
    """Alice with a trained model, a finished generation, its post, and a second subject."""
    settings.TRAIN_STEPS = 4
    settings.TRAIN_CHECKPOINT_EVERY = 2
    settings.GENERATION_STEPS = 2
    make_ready(alice_subject)
    model = studio.training_start(subject=alice_subject)
    run_queued("training")
    model.refresh_from_db()
    generation = studio.generation_start(model=model, user=alice, prompt="@me", seed=1)
    run_queued("generation")
    other = likeness.subject_create(owner=alice, kind=Subject.Kind.OTHER, name="Sam")
    return {
        "subject": alice_subject.pk,
        "other": other.pk,
        "photo": alice_subject.photos.first().pk,
        "model": model.pk,
        "generation": generation.pk,
        "post": str(Post.objects.get().pk),
        "step": 2,
    }


@pytest.fixture
def rows(alice, alice_subject):
    """Alice's objects as rows only (no training): enough for requests that are refused."""
    consent = Consent.objects.create(subject=alice_subject, method="selfie", status="granted")
    model = PersonalModel.objects.create(
        subject=alice_subject, consent=consent, name="m", base_model="builtin:tiny",
        lora="models/none.safetensors",
    )  # fmt: skip
    post = Post.objects.create(
        owner=alice, image="posts/none.png", width=64, height=64, sha256="0" * 64, prompt="p",
        seed=1, generation_settings={}, model_name="m", base_model="b",
    )  # fmt: skip
    other = likeness.subject_create(owner=alice, kind=Subject.Kind.OTHER, name="Sam")
    return {"subject": alice_subject.pk, "other": other.pk, "model": model.pk, "post": str(post.pk)}


def photo_upload():
    photo = images.encode(images.astronaut_variant(5))
    return {"files": [SimpleUploadedFile("new.jpg", photo, content_type="image/jpeg")]}


# (method, path, scope, body, owner's status). Run in this order: the deletes come last.
ENDPOINTS = [
    ("GET", "/subjects", "read", None, 200),
    ("POST", "/subjects", "write", {"kind": "other", "name": "Kim"}, 201),
    ("GET", "/subjects/{subject}", "read", None, 200),
    ("GET", "/subjects/{subject}/photos", "read", None, 200),
    ("POST", "/subjects/{subject}/photos", "write", photo_upload, 201),
    ("GET", "/subjects/{subject}/consent", "read", None, 200),
    ("POST", "/subjects/{other}/consent-links", "write", {"email": ""}, 201),
    ("GET", "/models", "read", None, 200),
    ("GET", "/models/{model}", "read", None, 200),
    ("GET", "/models/{model}/weights", "read", None, 200),
    ("GET", "/models/{model}/samples/{step}", "read", None, 200),
    ("POST", "/models", "train", {"subject_id": "{subject}", "steps": 2}, 202),
    ("POST", "/models/{queued}/cancel", "train", None, 200),
    ("POST", "/models/{queued}/retry", "train", None, 202),
    ("POST", "/generations", "train", {"model_id": "{model}", "prompt": "@me"}, 202),
    ("GET", "/generations", "read", None, 200),
    ("GET", "/generations/{generation}", "read", None, 200),
    ("GET", "/posts", "read", None, 200),
    ("GET", "/posts/{post}", "read", None, 200),
    ("PATCH", "/posts/{post}", "write", {"caption": "On the beach"}, 200),
    ("POST", "/posts/{post}/publish", "write", None, 200),
    ("POST", "/posts/{post}/unpublish", "write", None, 200),
    ("POST", "/posts/{post}/share-link", "write", None, 201),
    ("DELETE", "/posts/{post}/share-link", "write", None, 204),
    ("GET", "/posts/{post}/file", "read", None, 200),
    ("DELETE", "/subjects/{subject}/photos/{photo}", "write", None, 204),
    ("DELETE", "/posts/{post}", "write", None, 204),
    ("DELETE", "/models/{model}", "write", None, 204),
    ("DELETE", "/subjects/{other}", "write", None, 204),
]


def fill(template, ids: dict):
    if isinstance(template, str):
        value = template.format(**ids)
        return int(value) if template.startswith("{") and value.isdigit() else value
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


def test_every_endpoint_answers_its_owner_and_no_one_else(world, alice, bob):
    owner = token_for(alice)
    stranger = token_for(bob)
    lacking = {scope: token_for(alice, [s for s in SCOPES if s != scope]) for scope in SCOPES}
    for method, template, scope, body, expected in ENDPOINTS:
        if "{queued}" in template:  # the training run the POST /models above queued
            world["queued"] = PersonalModel.objects.latest("pk").pk
        path = API + fill(template, world)
        data = body() if callable(body) else fill(body, world)
        files = data if callable(body) else None
        json_body = None if callable(body) else data
        others = lacking[scope]

        assert_problem(call(method, path, data=json_body, files=files), 401, "unauthenticated")
        assert_problem(
            call(method, path, others, data=json_body, files=files), 403, "insufficient_scope"
        )
        if "{" in template or (json_body and any("{" in str(v) for v in body.values())):
            found = call(method, path, stranger, data=json_body, files=files)
            assert_problem(found, 404, "not_found")
        elif method == "GET":  # a list: bob sees his own things, none of alice's
            assert call(method, path, stranger).json()["items"] == []

        response = call(method, path, owner, data=json_body, files=files)
        assert response.status_code == expected, (method, template, response.content)

    assert not Post.objects.exists() and not Subject.objects.filter(name="Sam").exists()
    assert not PersonalModel.objects.filter(pk=world["model"]).exists()
    assert Subject.objects.filter(name="Kim").exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/subjects", {"kind": "robot"}, 422, "invalid_request"),
        ("POST", "/subjects", {"kind": "self"}, 400, "refused"),  # one "me" per account
        ("GET", "/subjects?limit=lots", None, 422, "invalid_request"),
        ("GET", "/subjects?cursor=not-a-cursor", None, 422, "invalid_request"),
        ("GET", "/subjects/abc", None, 422, "invalid_request"),
        ("POST", "/models", {"subject_id": "{subject}", "steps": 0}, 422, "invalid_request"),
        ("POST", "/models", {"subject_id": "{other}"}, 400, "refused"),  # not ready
        ("POST", "/generations", {"model_id": "{model}", "prompt": "x" * 1001}, 422,
         "invalid_request"),
        ("POST", "/generations", {"model_id": "{model}", "prompt": "x", "count": 9}, 422,
         "invalid_request"),
        ("POST", "/generations", {"model_id": "{model}", "prompt": "  "}, 400, "refused"),
        ("POST", "/generations", {"model_id": "{model}", "prompt": "x", "style": "neon"}, 422,
         "invalid_request"),
        ("PATCH", "/posts/{post}", {"caption": "x" * 3000}, 400, "refused"),
        ("POST", "/models/{model}/cancel", None, 400, "refused"),  # finished: nothing to cancel
        ("POST", "/subjects/{subject}/consent-links", {}, 400, "refused"),  # self: browser step
        ("POST", "/subjects/{other}/consent-links", {"email": "a@b\nBcc: x"}, 400, "refused"),
        ("POST", "/subjects", "not json", 422, "invalid_request"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_problem_document_and_changes_nothing(
    rows, alice, method, path, body, status, code
):
    before = (Subject.objects.count(), PersonalModel.objects.count(), Generation.objects.count())
    client = Client()
    raw = body if isinstance(body, str) else "" if body is None else json.dumps(fill(body, rows))
    response = client.generic(
        method, API + fill(path, rows), raw, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}",
    )  # fmt: skip
    assert_problem(response, status, code)
    after = (Subject.objects.count(), PersonalModel.objects.count(), Generation.objects.count())
    assert after == before


def test_a_retried_generation_with_the_same_idempotency_key_starts_nothing_new(rows, alice):
    token = token_for(alice)
    body = {"model_id": rows["model"], "prompt": "@me at sea", "seed": 5}
    first = call("POST", f"{API}/generations", token, data=body, HTTP_IDEMPOTENCY_KEY="k-1")
    again = call("POST", f"{API}/generations", token, data=body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert Generation.objects.count() == 1

    other = call("POST", f"{API}/generations", token, data={**body, "seed": 6},
                 HTTP_IDEMPOTENCY_KEY="k-1")  # fmt: skip
    assert_problem(other, 409, "idempotency_key_reused")
    fresh = call("POST", f"{API}/generations", token, data=body, HTTP_IDEMPOTENCY_KEY="k-2")
    assert fresh.status_code == 202 and Generation.objects.count() == 2


def test_lists_page_with_a_cursor_newest_first(alice):
    token = token_for(alice)
    made = [Subject.objects.create(owner=alice, kind="other", name=f"P{i}").pk for i in range(25)]
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=10" + (f"&cursor={cursor}" if cursor else "")
        body = call("GET", f"{API}/subjects{query}", token).json()
        seen += [s["id"] for s in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == sorted(made, reverse=True)


def test_a_token_over_its_rate_limit_is_told_when_to_come_back(alice, settings):
    settings.API_RATE_LIMIT = 3
    token = token_for(alice)
    assert all(call("GET", f"{API}/subjects", token).status_code == 200 for _ in range(3))
    limited = call("GET", f"{API}/subjects", token)
    assert_problem(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) >= 1


def test_a_revoked_token_is_refused(alice):
    from creator.accounts.tokens import token_revoke

    found, raw = token_create(user=alice, name="old", scopes=["read"])
    token_revoke(token=found)
    assert_problem(call("GET", f"{API}/subjects", raw), 401, "unauthenticated")


def test_a_browser_session_is_not_an_api_credential(alice_client):
    # The API takes bearer tokens only, so a logged-in page can't be made to call it (no CSRF).
    assert_problem(alice_client.get(f"{API}/subjects"), 401, "unauthenticated")


def test_verify_is_open_to_anyone_and_documented_in_the_same_schema(world):
    post = Post.objects.get()
    with post.image.open("rb") as handle:
        response = Client().post(f"{API}/verify", {"image": handle})
    assert response.status_code == 200
    assert response.json()["verdict"] == "signed_by_this_instance"
    schema = Client().get(f"{API}/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert "/api/v1/verify" in schema["paths"]
    problem = schema["paths"]["/api/v1/subjects"]["get"]["responses"]["401"]["content"]
    assert "application/problem+json" in problem


def test_the_interactive_docs_are_served_from_this_site(anonymous):
    page = anonymous.get(f"{API}/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger" in html.lower() and "cdn." not in html
    assert reverse("api:openapi-json") in html
