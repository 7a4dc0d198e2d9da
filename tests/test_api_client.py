"""The API as a developer meets it: a Python client generated from the live schema by
openapi-python-client drives the whole journey, and Schemathesis fuzzes every operation."""

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from creator.accounts.tokens import SCOPES, token_create
from tests import images
from tests.conftest import committing, live_consent, run_photo_checks
from tests.test_training import run_queued

pytestmark = pytest.mark.usefixtures("private_media")
SCHEMA = "/api/v1/openapi.json"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """`candor_client`, generated from the schema this code serves (no network)."""
    import django
    from django.conf import settings

    if not settings.configured:  # pragma: no cover - pytest-django configures it
        django.setup()
    from creator.api.api import api

    folder = tmp_path_factory.mktemp("client")
    (folder / "schema.json").write_text(json.dumps(api.get_openapi_schema()))
    (folder / "config.json").write_text(json.dumps({"post_hooks": []}))
    tool = Path(sys.executable).with_name("openapi-python-client")
    subprocess.run(
        [tool, "generate", "--path", folder / "schema.json", "--config", folder / "config.json",
         "--output-path", folder / "candor_client", "--meta", "none"],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("candor_client")
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def in_process():
    """Requests served in this process keep the test's database connection open (as Django's
    test client does): no closing of "old" connections at the start and end of each."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def wsgi_client(client_module, token: str):
    """The generated client, talking to this Django in-process (same test database)."""
    client = client_module.AuthenticatedClient(
        base_url="http://testserver", token=token, raise_on_unexpected_status=True
    )
    transport = httpx.WSGITransport(app=get_wsgi_application())
    client.set_httpx_client(
        httpx.Client(
            base_url="http://testserver",
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    return client


def test_the_generated_client_drives_the_whole_journey(generated, alice, settings, in_process):
    from candor_client import types
    from candor_client.api.models_and_generations import (
        generation_show,
        generation_start,
        model_show,
        model_train,
    )
    from candor_client.api.posts import post_download, post_publish, post_show
    from candor_client.api.subjects import photo_upload, subject_create, subject_show
    from candor_client.api.verify import verify
    from candor_client.models import (
        GenerationIn,
        PhotoUploadFileParams,
        SubjectIn,
        SubjectInKind,
        TrainIn,
        VerifyFileParams,
    )  # fmt: skip

    settings.TRAIN_STEPS = 4
    settings.TRAIN_CHECKPOINT_EVERY = 2
    settings.GENERATION_STEPS = 2
    api = wsgi_client(generated, token_create(user=alice, name="script", scopes=list(SCOPES))[1])

    subject = subject_create.sync(client=api, body=SubjectIn(kind=SubjectInKind.SELF, name="Alice"))
    assert not hasattr(subject, "detail"), subject
    files = [
        types.File(payload=images.encode(images.astronaut_variant(i)), file_name=f"me{i}.jpg",
                   mime_type="image/jpeg")
        for i in range(5)
    ]  # fmt: skip
    with committing():
        upload = photo_upload.sync(
            client=api, subject_id=subject.id, body=PhotoUploadFileParams(files)
        )
    assert len(upload.accepted) == 5 and not upload.rejected
    run_photo_checks()
    from creator.likeness.models import Subject

    live_consent(Subject.objects.get(pk=subject.id))  # the person's camera step, in the browser
    ready = subject_show.sync(client=api, subject_id=subject.id)
    assert ready.ready and ready.consent.state.value == "agreed"

    with committing():
        model = model_train.sync(client=api, body=TrainIn(subject_id=subject.id))
    assert model.progress.state.value == "queued"
    run_queued("training")
    model = model_show.sync(client=api, model_id=model.id)
    assert model.progress.state.value == "succeeded" and model.trained
    assert [s.step for s in model.progress.samples] == [2, 4] and len(model.progress.loss) == 4

    with committing():
        generation = generation_start.sync(
            client=api, body=GenerationIn(model_id=model.id, prompt="@me on a bike", seed=3)
        )
    run_queued("generation")
    generation = generation_show.sync(client=api, generation_id=generation.id)
    assert generation.progress.state.value == "succeeded" and len(generation.post_ids) == 1

    post = post_publish.sync(client=api, post_id=generation.post_ids[0])
    assert post.visibility.value == "public" and post.public_url
    assert post_show.sync(client=api, post_id=post.id).credential.digital_source_type.endswith(
        "trainedAlgorithmicMedia"
    )
    signed = post_download.sync_detailed(client=api, post_id=post.id).content
    assert signed.startswith(b"\x89PNG")

    started = time.monotonic()
    verdict = verify.sync(
        client=api,
        body=VerifyFileParams(
            image=types.File(payload=signed, file_name="x.png", mime_type="image/png")
        ),
    )
    assert verdict.verdict == "signed_by_this_instance", verdict
    assert time.monotonic() - started < 60


@pytest.fixture
def fuzz_token(alice, alice_subject, in_process):
    return token_create(user=alice, name="fuzz", scopes=list(SCOPES))[1]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_token):
    import schemathesis
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )  # fmt: skip

    schema = schemathesis.openapi.from_wsgi(SCHEMA, get_wsgi_application())
    checks = [
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance,
    ]  # fmt: skip
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures, calls = [], []
    for operation in operations:
        fuzz_operation(operation, fuzz_token, checks, failures, calls)
    assert not failures, "\n\n".join(failures[:8])
    assert set(calls) == {o.label for o in operations} and len(calls) >= 4 * len(operations)


def fuzz_operation(operation, token: str, checks: list, failures: list, calls: list) -> None:
    """Up to 8 generated requests (valid and invalid) for one operation; failures collected."""
    from hypothesis import given

    @hypothesis_settings(
        max_examples=8, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy())
    def fuzz(case):
        calls.append(operation.label)
        try:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)
        except Exception as exc:  # collected, all reported at the end
            failures.append(f"{operation.label}: {str(exc)[:600]}")

    fuzz()
