"""Training and generation through the app: services, jobs, pages, a real worker."""

import io
import signal
import time

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from safetensors import safe_open

from config.files import STORAGE_FAILED
from creator.accounts.models import User
from creator.engine import options
from creator.jobs import runtime
from creator.jobs.models import Task
from creator.jobs.runtime import JobError
from creator.likeness import selectors, services
from creator.likeness.models import Consent, Subject
from creator.studio import services as studio
from creator.studio.models import Generation, PersonalModel
from gallery.models import Post
from tests import images
from tests.conftest import (
    CONFIRM,
    committing,
    live_consent,
    run_photo_checks,
    upload_files,
    wait_for,
    wait_for_status,
)

pytestmark = pytest.mark.usefixtures("private_media")


@pytest.fixture(autouse=True)
def _short_training(settings):
    settings.TRAIN_STEPS = 6
    settings.TRAIN_CHECKPOINT_EVERY = 3
    settings.GENERATION_STEPS = 4


def make_ready(subject: Subject, *, scope_form: str = "") -> Subject:
    files = [
        SimpleUploadedFile(f"me{i}.jpg", images.encode(images.astronaut_variant(i)))
        for i in range(6)
    ]
    with committing():
        services.photos_add(subject=subject, files=files)
    run_photo_checks()
    live_consent(subject, scope_query=scope_form)
    assert selectors.subject_readiness(subject).ready
    return subject


@pytest.fixture
def ready_subject(alice_subject):
    return make_ready(alice_subject)


def run_queued(kind: str) -> None:
    """Run queued jobs of one kind in this process: the job code a worker runs."""
    from creator.studio import jobs

    job = {"training": jobs.train_model, "generation": jobs.generate_images}[kind]
    for task in Task.objects.filter(kind=kind, status=Task.Status.QUEUED):
        with committing():
            job(str(task.pk), **task.job_kwargs)


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


def test_a_subject_without_consent_cannot_be_trained(alice_client, alice_subject):
    files = {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(4)}
    upload_files(alice_client, alice_subject, files)
    run_photo_checks()

    response = alice_client.post(reverse("training_start", args=[alice_subject.pk]), follow=True)

    assert "This subject can't be trained yet" in text(response)
    assert "Give consent with a fresh selfie" in text(response)
    assert not PersonalModel.objects.exists()


def test_training_a_ready_subject_makes_a_lora_with_progress_and_samples(
    alice_client, ready_subject
):
    response = alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    model = PersonalModel.objects.get()
    assert response.url == reverse("model_detail", args=[model.pk])
    assert model.task.queue == "training" and model.task.status == Task.Status.QUEUED

    run_queued("training")

    model.refresh_from_db()
    task = model.task
    assert task.status == Task.Status.SUCCEEDED, task.error
    assert (task.step, task.total) == (6, 6)
    assert len(task.details["loss"]) == 6
    assert [s["step"] for s in task.details["samples"]] == [3, 6]
    assert model.lora and len(model.lora_sha256) == 64
    with safe_open(model.lora.path, framework="pt") as handle:
        meta = handle.metadata()
    assert meta["candor.consent_id"] == str(model.consent_id)
    page = text(alice_client.get(reverse("model_detail", args=[model.pk])))
    assert "Make images" in page
    assert "loss-chart" in page
    sample = alice_client.get(reverse("model_sample", args=[model.pk, 3]))
    assert sample.status_code == 200
    assert Image.open(io.BytesIO(b"".join(sample.streaming_content))).size == (64, 64)


@pytest.fixture
def trained_model(alice_client, ready_subject) -> PersonalModel:
    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    run_queued("training")
    return PersonalModel.objects.get()


def test_one_generation_lands_a_draft_in_the_gallery(alice, alice_client, trained_model):
    response = alice_client.post(
        reverse("generation_start", args=[trained_model.pk]),
        {
            "prompt": "@me on a beach",
            "style": "photo",
            "size": "square",
            "count": "2",
            "seed": "1234",
        },
    )
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.task.queue == "generation"

    run_queued("generation")

    generation.refresh_from_db()
    assert generation.task.status == Task.Status.SUCCEEDED, generation.task.error
    posts = list(Post.objects.order_by("seed"))
    assert [p.seed for p in posts] == [1234, 1235]
    post = posts[0]
    assert post.owner == alice and post.visibility == Post.Visibility.DRAFT
    assert post.lora_sha256 == trained_model.lora_sha256
    # Public names: the creator's handle, not the depicted person; no server path.
    assert post.model_name == "@alice · model 1"
    assert post.base_model == options.base_model_label("builtin:tiny")
    assert post.consent_id == trained_model.consent_id
    assert post.generation_settings["prompt_used"].startswith("ohwx person on a beach")
    gallery = text(alice_client.get(reverse("gallery")))
    assert "AI-generated" in gallery and str(post.pk) in gallery
    image = alice_client.get(reverse("post_file", args=[post.pk, "original", "png"]))
    assert image["Content-Type"] == "image/png"


def test_the_generate_form_offers_the_limits_the_service_enforces(alice_client, trained_model):
    page = text(alice_client.get(reverse("model_detail", args=[trained_model.pk])))
    assert f'min="{options.MIN_STEPS}" max="{options.MAX_STEPS}"' in page
    assert f'min="{options.MIN_GUIDANCE:g}" max="{options.MAX_GUIDANCE:g}"' in page
    assert page.count(f'maxlength="{options.PROMPT_MAX_CHARS}"') == 2
    for _, (label, *_) in [*options.STYLES.items(), *options.SIZES.items()]:
        assert label in page
    assert f"<option>{options.MAX_IMAGES}</option>" in page


def test_a_prompt_over_the_limit_is_refused_not_cut(alice, trained_model):
    with pytest.raises(studio.Refused) as refused:
        studio.generation_start(
            model=trained_model, user=alice, prompt="x" * (options.PROMPT_MAX_CHARS + 1)
        )
    assert refused.value.message == options.PROMPT_TOO_LONG
    assert not Generation.objects.exists()


def test_full_or_read_only_storage_fails_a_generation_with_a_plain_message(
    alice, trained_model, private_media
):
    # sysfs refuses every write, even root's: the posts folder can't be made there.
    (private_media / "posts").symlink_to("/sys/candor-unwritable")
    generation = studio.generation_start(
        model=trained_model, user=alice, prompt="x", seed=1, count=2
    )
    with pytest.raises(JobError):
        run_queued("generation")
    generation.task.refresh_from_db()
    assert generation.task.status == Task.Status.FAILED
    assert generation.task.error == STORAGE_FAILED
    assert not Post.objects.exists()


def test_an_empty_seed_gets_a_random_one_that_is_recorded(alice, trained_model):
    generation = studio.generation_start(model=trained_model, user=alice, prompt="portrait")
    assert 0 <= generation.seed < 2**31


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"prompt": ""}, studio.EMPTY_PROMPT),
        ({"prompt": "x", "count": "9"}, "Make between 1 and 4 images at a time."),
        ({"prompt": "x", "steps": "151"}, options.STEPS_OUT_OF_RANGE),
        ({"prompt": "x", "guidance": "-1"}, options.GUIDANCE_OUT_OF_RANGE),
        ({"prompt": "x", "seed": "abc"}, "The seed must be a number."),
        ({"prompt": "x", "style": "vaporwave"}, options.UNKNOWN_STYLE),
        ({"prompt": "x", "size": "poster"}, options.UNKNOWN_SIZE),
    ],
)
def test_bad_generation_requests_are_refused_with_a_reason(
    alice_client, trained_model, form, message
):
    response = alice_client.post(
        reverse("generation_start", args=[trained_model.pk]), form, follow=True
    )
    assert message in text(response)
    assert not Generation.objects.exists()


def test_a_model_whose_consent_was_revoked_cannot_generate(alice, alice_client, trained_model):
    queued_before = studio.generation_start(model=trained_model, user=alice, prompt="x", seed=1)

    with committing():
        alice_client.post(reverse("consent_revoke", args=[trained_model.subject.pk]), CONFIRM)

    assert Consent.objects.get().status == Consent.Status.REVOKED
    assert not PersonalModel.objects.exists()  # revocation deleted it
    response = alice_client.post(
        reverse("generation_start", args=[trained_model.pk]), {"prompt": "after"}
    )
    assert response.status_code == 404
    # A model still held in memory is refused by the service itself.
    trained_model.consent.refresh_from_db()
    with pytest.raises(studio.Refused) as refused:
        studio.generation_start(model=trained_model, user=alice, prompt="after", seed=2)
    assert refused.value.message == studio.CONSENT_GONE
    # The generation queued before the revocation never runs.
    queued_before.task.refresh_from_db()
    assert queued_before.task.status == Task.Status.CANCELLED
    run_queued("generation")
    assert not Post.objects.exists()


def test_other_creators_get_404_on_models_samples_posts(bob_client, alice, trained_model):
    generation = studio.generation_start(model=trained_model, user=alice, prompt="x", seed=1)
    run_queued("generation")
    post = Post.objects.get()
    for url in (
        reverse("model_detail", args=[trained_model.pk]),
        reverse("model_sample", args=[trained_model.pk, 3]),
        reverse("post_detail", args=[post.pk]),
        reverse("post_file", args=[post.pk, "original", "png"]),
    ):
        assert bob_client.get(url).status_code == 404, url
    for url in (
        reverse("generation_start", args=[trained_model.pk]),
        reverse("model_delete", args=[trained_model.pk]),
        reverse("post_delete", args=[post.pk]),
        reverse("training_start", args=[trained_model.subject.pk]),
    ):
        assert bob_client.post(url, {"prompt": "x", **CONFIRM}).status_code == 404, url
    assert generation.pk and Post.objects.count() == 1


# --- with a real worker ---------------------------------------------------------------------


@pytest.fixture
def long_training(settings):
    settings.TRAIN_STEPS = 3000
    settings.TRAIN_CHECKPOINT_EVERY = 20


def test_cancelling_training_stops_it_within_a_step(
    alice_client, long_training, workers, transactional_db
):

    subject = make_ready(Subject.objects.create(owner=User.objects.get(handle="alice"), name="A"))
    model = studio.training_start(subject=subject)
    workers.start()
    wait_for(
        lambda: Task.objects.get(pk=model.task_id).step >= 3, timeout=60, what="training to run"
    )

    alice_client.post(reverse("task_cancel", args=[model.task_id]))
    task = wait_for_status(model.task, Task.Status.CANCELLED, timeout=10)
    stopped_at = task.step
    time.sleep(1)
    task.refresh_from_db()
    assert task.step == stopped_at < 3000
    assert not PersonalModel.objects.get().lora


def test_a_training_run_killed_mid_way_resumes_from_its_checkpoint(
    alice_client, long_training, workers, settings, transactional_db
):

    settings.TRAIN_STEPS = 120
    settings.TRAIN_CHECKPOINT_EVERY = 30
    subject = make_ready(Subject.objects.create(owner=User.objects.get(handle="alice"), name="A"))
    model = studio.training_start(subject=subject)
    worker = workers.start()
    wait_for(
        lambda: Task.objects.get(pk=model.task_id).step >= 45, timeout=90, what="two checkpoints"
    )

    worker.send_signal(signal.SIGKILL)
    worker.wait()
    task = wait_for_status_via_page(alice_client, model.task)
    assert task.error == runtime.WORKER_DIED

    alice_client.post(reverse("task_retry", args=[task.pk]))
    workers.start()
    wait_for_status(task, Task.Status.SUCCEEDED, timeout=120)
    model.refresh_from_db()
    assert model.config["resumed_from"] >= 30
    assert model.lora


def wait_for_status_via_page(client, task: Task) -> Task:
    def failed():
        return client.get(reverse("task_status", args=[task.pk])).json()["status"] == "failed"

    wait_for(failed, timeout=30, interval=0.2, what="the killed run to be failed")
    task.refresh_from_db()
    return task


def test_the_creator_is_told_when_training_ends_either_way(alice, alice_client, ready_subject):
    from django.core import mail

    from creator.notices.models import Notice

    mail.outbox.clear()
    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    run_queued("training")
    model = PersonalModel.objects.get()
    done = Notice.objects.get(user=alice, kind="training_succeeded")
    assert done.title == f"{model.name} is trained" and done.link == model.task.link
    assert [m.subject for m in mail.outbox] == [f"[Candor] {model.name} is trained"]

    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    Consent.objects.update(status=Consent.Status.REVOKED)  # withdrawn while it was queued
    with pytest.raises(JobError):
        run_queued("training")
    failed = Notice.objects.get(user=alice, kind="training_failed")
    assert "revoked or has ended" in failed.body


@pytest.fixture
def fresh_pipelines():
    """Each test's base-model setting gets its own warm pipeline (the worker keeps one)."""
    from creator.studio import pipelines

    pipelines.pipeline_cache.cache_clear()
    yield
    pipelines.pipeline_cache.cache_clear()


@pytest.mark.usefixtures("fresh_pipelines")
def test_a_flux_base_model_trains_and_generates_with_its_own_defaults(
    alice, alice_client, ready_subject, settings
):
    settings.CANDOR_BASE_MODEL = "builtin:tiny-flux"
    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    run_queued("training")
    model = PersonalModel.objects.get()
    assert model.task.status == Task.Status.SUCCEEDED, model.task.error
    with safe_open(model.lora.path, framework="pt") as handle:
        assert handle.metadata()["candor.family"] == "flux"
        assert all(k.startswith("transformer.") for k in handle.keys())  # noqa: SIM118
    page = text(alice_client.get(reverse("model_detail", args=[model.pk])))
    assert "FLUX.1" in page and "Kept the weights from the last step (6)" in page
    assert "FLUX.1 models take no negative prompt" in page and 'name="negative_prompt"' not in page

    generation = studio.generation_start(
        model=model, user=alice, prompt="@me, portrait", negative_prompt="blurry", seed=4
    )
    assert generation.guidance == 3.5  # FLUX.1-dev's guidance, not SD's 7.0
    run_queued("generation")
    generation.refresh_from_db()
    assert generation.task.status == Task.Status.SUCCEEDED, generation.task.error
    post = Post.objects.get()
    assert post.generation_settings.get("negative_prompt", "") == ""  # none was used


@pytest.mark.usefixtures("fresh_pipelines")
def test_a_model_trained_on_another_family_fails_its_generation_with_a_reason(
    alice, trained_model, settings
):
    settings.CANDOR_BASE_MODEL = "builtin:tiny-sdxl"  # the operator changed the base model
    generation = studio.generation_start(model=trained_model, user=alice, prompt="x", seed=1)
    with pytest.raises(JobError):
        run_queued("generation")
    generation.task.refresh_from_db()
    assert generation.task.status == Task.Status.FAILED
    assert generation.task.error.startswith(
        "This model was trained on a Stable Diffusion 1.x/2.x base model, but the base model "
        "here is Stable Diffusion XL."
    )
    assert not Post.objects.exists()


def test_running_out_of_gpu_memory_fails_the_run_with_what_to_try_and_the_worker_goes_on(
    alice_client, ready_subject, monkeypatch
):
    from creator.engine import denoisers
    from creator.studio import work

    real_predict = denoisers.predict

    def out_of_memory(*args, **kwargs):
        # This CPU can't run out of GPU memory: the denoiser's first step raises what CUDA would.
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(denoisers, "predict", out_of_memory)
    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    with pytest.raises(JobError):
        run_queued("training")
    failed = PersonalModel.objects.get()
    failed.task.refresh_from_db()
    assert failed.task.status == Task.Status.FAILED
    assert failed.task.error == work.TRAIN_OUT_OF_MEMORY.format(resolution=64)
    assert "TRAIN_GRADIENT_CHECKPOINTING=on" in failed.task.error and not failed.lora

    monkeypatch.setattr(denoisers, "predict", real_predict)  # memory freed: the next run works
    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    run_queued("training")
    retried = PersonalModel.objects.latest("pk")
    assert retried.task.status == Task.Status.SUCCEEDED and retried.lora


def test_the_face_weighted_loss_reads_each_photos_face_box_from_the_photo_checks(
    alice_client, ready_subject, settings
):
    from creator.studio import work

    settings.TRAIN_FACE_WEIGHT = 2.0
    alice_client.post(reverse("training_start", args=[ready_subject.pk]))
    run_queued("training")
    model = PersonalModel.objects.get()
    assert model.task.status == Task.Status.SUCCEEDED, model.task.error
    assert model.config["face_weight"] == 2.0
    for photo in ready_subject.photos.all():
        left, top, right, bottom = work.face_box_in_crop(photo)
        # The crop is centred on the face with room around it: the box sits inside, mid-crop.
        assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1
        assert 0.3 < (left + right) / 2 < 0.7 and 0.2 < (top + bottom) / 2 < 0.7
        assert 0.2 < right - left < 0.7
