"""Pages speak the creator's and the viewer's words: plain facts for a post, captions naming the
person, one readable signer, dates in UTC, C2PA terms on hover, jobs that say what is next."""

import datetime as dt
import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from creator.jobs.models import Task
from creator.likeness.models import Subject
from creator.studio.models import Generation, PersonalModel
from creator.studio.work import default_caption
from gallery import signing
from gallery.models import Post
from gallery.templatetags.credentials import action_words, source_words, when
from tests.test_gallery import make_post
from tests.test_training import make_ready, run_queued

pytestmark = pytest.mark.usefixtures("private_media")


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.TRAIN_STEPS = 6
    settings.TRAIN_CHECKPOINT_EVERY = 3
    settings.GENERATION_STEPS = 4
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


@pytest.fixture
def trained_model(alice_client, alice_subject) -> PersonalModel:
    make_ready(alice_subject)
    alice_client.post(reverse("training_start", args=[alice_subject.pk]))
    run_queued("training")
    return PersonalModel.objects.get()


def text(response) -> str:
    return html.unescape(response.content.decode())


def generate(client, model, **form) -> list[Post]:
    data = {"prompt": "@me on a beach", "style": "photo", "size": "square", "count": "2"}
    client.post(reverse("generation_start", args=[model.pk]), {**data, **form, "seed": "7"})
    run_queued("generation")
    generation = Generation.objects.latest("created_at")
    assert generation.task.status == Task.Status.SUCCEEDED, generation.task.error
    return list(Post.objects.filter(pk__in=generation.post_ids).order_by("seed"))


def test_a_generation_reads_in_the_creators_words_from_job_to_post(alice_client, trained_model):
    # One trained model for all of it: training and generating are the slow part.
    model_page = text(alice_client.get(reverse("model_detail", args=[trained_model.pk])))
    assert "make images from a prompt below" in model_page  # the finished training's next step
    assert f'href="{reverse("model_detail", args=[trained_model.pk])}#generate"' in model_page
    assert "Write <code>@me</code> where you go" in model_page

    posts = generate(alice_client, trained_model, negative_prompt="hats")
    post = posts[0]
    page = text(alice_client.get(reverse("post_detail", args=[post.pk])))

    for fact in ("<dt>Prompt</dt><dd>@me on a beach</dd>", "<dt>Style</dt><dd>Photo</dd>"):
        assert fact in page
    assert "<dt>Size</dt><dd>64 × 64 px</dd>" in page
    assert "<dt>Steps</dt><dd>4</dd>" in page and "<dt>Guidance</dt>" in page
    assert "<dt>Negative prompt</dt><dd>hats</dd>" in page
    assert "<dt>Seed</dt><dd>7</dd>" in page
    assert "ohwx" not in page and "prompt_used" not in page
    assert "cartoon" not in page  # the style's own negative words stay the engine's business
    # Still stored: what the model saw, in full.
    assert post.generation_settings["prompt_used"].startswith("ohwx person on a beach")
    assert post.generation_settings["negative_prompt"].startswith("hats, cartoon")
    # The caption names the person; the credentials say whose likeness and whose model.
    assert post.caption == "Alice on a beach"
    assert (
        "Shows the likeness of <strong>Alice</strong>, made with their own personal model" in page
    )

    generation = Generation.objects.get()
    card = text(alice_client.get(reverse("task_detail", args=[generation.task.pk])))
    assert generation.task.details["posts"] == [reverse("post_detail", args=[p.pk]) for p in posts]
    link = reverse("model_detail", args=[trained_model.pk]) + f"#generation-{generation.pk}"
    assert "See the 2 images" in card and f'href="{link}"' in card
    model_page = text(alice_client.get(reverse("model_detail", args=[trained_model.pk])))
    assert f'id="generation-{generation.pk}"' in model_page

    dashboard = text(alice_client.get(reverse("dashboard")))
    assert '<ul class="job-list">' in dashboard
    assert trained_model.task.label in dashboard and "Succeeded" in dashboard
    assert f'href="{link}">See the images</a>' in dashboard
    assert "loss-chart" not in dashboard and "<progress" not in dashboard


def test_someone_elses_model_is_written_with_at_them_and_reads_their_name(
    alice_client, trained_model
):
    Subject.objects.filter(pk=trained_model.subject_id).update(
        kind=Subject.Kind.OTHER, name="Barack"
    )

    form = text(alice_client.get(reverse("model_detail", args=[trained_model.pk])))
    assert "Write <code>@them</code> where Barack goes" in form
    assert 'placeholder="@them hiking' in form and "<code>@me</code>" not in form

    post = generate(alice_client, trained_model, prompt="@them on a beach", count="1")[0]
    assert post.caption == "Barack on a beach"
    assert post.generation_settings["prompt_used"].startswith("ohwx person on a beach")
    page = text(alice_client.get(reverse("post_detail", args=[post.pk])))
    assert (
        "Shows the likeness of <strong>Barack</strong>, made with @alice's personal model" in page
    )


def test_a_caption_names_the_person_wherever_the_prompt_did():
    assert default_caption("@me and @me again", "Alice") == "Alice and Alice again"
    assert default_caption("@them at sea", "Barack") == "Barack at sea"
    assert default_caption("a quiet street", "Alice") == "a quiet street"


def test_an_old_post_shows_its_settings_without_the_styles_words(alice, alice_client):
    old = {
        "prompt_used": "ohwx person on a boat, professional photo",
        "negative_prompt": "cartoon, illustration",
        "style": "photo",
        "size": "512×512",
        "steps": 30,
        "guidance": 7.5,
    }
    post = make_post(alice, generation_settings=old)

    page = text(alice_client.get(reverse("post_detail", args=[post.pk])))

    assert "<dt>Style</dt><dd>Photo</dd>" in page and "<dt>Guidance</dt><dd>7.5</dd>" in page
    assert "Negative prompt" not in page and "cartoon" not in page and "ohwx" not in page
    assert "likeness of" not in page  # not recorded before

    plain = make_post(alice, generation_settings={**old, "style": "none", "negative_prompt": "x"})
    page = text(alice_client.get(reverse("post_detail", args=[plain.pk])))
    assert (
        "<dt>Style</dt><dd>No style</dd>" in page and "<dt>Negative prompt</dt><dd>x</dd>" in page
    )


def test_the_signer_reads_candor_at_the_instance_once(alice, alice_client, settings):
    post = make_post(alice)
    page = text(alice_client.get(reverse("post_detail", args=[post.pk])))
    assert "signed by Candor ·" in page and "Candor instance" not in page

    settings.SITE_NAME = "Blue Lake"
    settings.C2PA_KEYS_DIR = settings.C2PA_KEYS_DIR.parent / "blue-lake-keys"
    signing.reset()
    post = make_post(alice)
    page = text(alice_client.get(reverse("post_detail", args=[post.pk])))
    assert "signed by Candor at Blue Lake ·" in page


def test_a_signer_name_made_before_reads_the_same():
    made_before = "Candor Content Credentials (Candor (Candor instance))"
    assert signing.signer_display_name(made_before) == "Candor"
    named = "Blue Lake Content Credentials (Blue Lake (Candor instance))"
    assert signing.signer_display_name(named) == "Candor at Blue Lake"
    assert signing.signer_display_name("Adobe Content Credentials (Adobe)") == (
        "Adobe Content Credentials (Adobe)"
    )


def test_dates_read_in_utc_in_the_viewers_words():
    moment = dt.datetime(2026, 11, 30, 15, 6, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert when(moment) == "30 Nov 2026, 14:06 UTC"
    assert when("2026-11-30T14:06:59.123456+00:00") == "30 Nov 2026, 14:06 UTC"
    assert when("2026-11-30T14:06:00Z") == "30 Nov 2026, 14:06 UTC"
    assert when("2027-01-05") == "5 Jan 2027"
    assert when("not a date") == "not a date" and when(None) == ""


def test_the_post_page_and_credentials_show_dates_in_utc(alice, alice_client):
    post = make_post(alice)
    page = text(alice_client.get(reverse("post_detail", args=[post.pk])))
    assert f"Made {when(post.created_at)}." in page and " UTC." in page


def test_the_verify_page_says_actions_and_source_in_plain_words(alice, verifier):
    post = make_post(alice)
    upload = SimpleUploadedFile("original.png", post.image.read())

    page = text(Client().post(reverse("verify_page"), {"image": upload}))

    assert '<abbr title="c2pa.created">Created</abbr>' in page
    assert "Made by an AI model trained on sample images (trained algorithmic media)" in page
    assert 'title="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"' in page
    assert ">http://cv.iptc.org" not in page
    assert "<dt>Signed by</dt><dd>Candor</dd>" in page
    signed = page.split("<dt>Signed</dt><dd>")[1].split("</dd>")[0]
    assert signed.endswith(" UTC") and "T" not in signed.removesuffix(" UTC")  # no ISO "T"


def test_actions_and_source_types_say_their_term_on_hover():
    words = action_words(["c2pa.opened", "c2pa.resized", "c2pa.watermarked", "c2pa.resized"])
    assert words == (
        '<abbr title="c2pa.opened">Opened</abbr>, <abbr title="c2pa.resized">Resized</abbr>, '
        '<abbr title="c2pa.watermarked">Watermarked</abbr>'
    )
    assert action_words(["com.example.sharpened"]) == (
        '<abbr title="com.example.sharpened">Com example sharpened</abbr>'
    )
    camera = source_words("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture")
    assert ">Taken with a digital camera (digital capture)</abbr>" in camera
