"""What the person shown agreed to, enforced: content they ruled out, an end date, private-only
images; and the scope carried in every image's credential and shown by verify."""

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from config.refusal import Refusal
from creator.jobs.runtime import JobError
from creator.likeness import scope, selectors
from creator.likeness.models import Consent
from creator.studio import services as studio
from creator.studio.models import Generation, PersonalModel
from gallery import services as gallery
from gallery import signing
from gallery.models import GalleryShare, Post
from gallery.provenance import c2pa
from gallery.verify import verify_bytes
from tests import images
from tests.test_training import make_ready, run_queued


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    settings.TRAIN_STEPS = 2
    settings.TRAIN_SAMPLE_EVERY = 0
    signing.reset()
    yield
    signing.reset()


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


def form(query: str) -> QueryDict:
    return QueryDict(query)


@pytest.fixture
def model(alice_client, alice_subject) -> PersonalModel:
    make_ready(alice_subject, scope_form="publish=public&duration=1y&rule_out=political")
    alice_client.post(reverse("training_start", args=[alice_subject.pk]))
    run_queued("training")
    return PersonalModel.objects.get()


def test_the_form_reads_a_scope_and_always_rules_out_intimate_imagery():
    now = timezone.now()
    chosen = scope.scope_from_form(form("publish=private&duration=10y&rule_out=violence"), now=now)
    assert chosen.publish == "private"
    assert chosen.ruled_out == ("intimate", "violence")
    assert chosen.ends_at - now == timedelta(days=3652)
    default = scope.scope_from_form(form(""), now=now)
    assert (default.publish, default.ruled_out) == ("public", ("intimate",))
    assert default.ends_at - now == timedelta(days=365)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("duration=11y", scope.UNKNOWN_DURATION),
        ("publish=everywhere", scope.UNKNOWN_PUBLISH),
        ("rule_out=cats", scope.UNKNOWN_CATEGORY),
    ],
)
def test_a_scope_outside_the_choices_is_refused(query, message):
    with pytest.raises(scope.ScopeInvalid) as refused:
        scope.scope_from_form(form(query), now=timezone.now())
    assert refused.value.message == message


@pytest.mark.parametrize(
    ("prompt", "word"),
    [
        ("@me at a political rally", "political"),
        ("@me holding a campaign sign", "campaign"),
        ("@me NUDE on a beach", "NUDE"),  # always ruled out, whatever the person chose
        ("@me in lingerie", "lingerie"),
    ],
)
def test_a_prompt_outside_the_scope_is_refused_and_nothing_is_queued(
    alice, alice_client, model, prompt, word
):
    response = alice_client.post(
        reverse("generation_start", args=[model.pk]), {"prompt": prompt}, follow=True
    )
    page = text(response)
    assert f"(“{word}”)" in page and "nothing was generated" in page
    assert not Generation.objects.exists()


def test_prompts_inside_the_scope_are_fine(alice, model):
    for prompt in ("@me on a boat at sunset", "@me reading in a library", "@me with a partisan"):
        studio.generation_start(model=model, user=alice, prompt=prompt, seed=1)
    assert Generation.objects.count() == 3


def test_a_consent_that_ended_stops_the_model_and_says_so(alice, alice_client, model):
    Consent.objects.update(ends_at=timezone.now() - timedelta(days=1))
    with pytest.raises(studio.Refused) as refused:
        studio.generation_start(model=model, user=alice, prompt="@me on a boat", seed=1)
    assert "consent ended on" in refused.value.message
    subject = model.subject
    assert selectors.consent_state(subject).code == "expired"
    readiness = selectors.subject_readiness(subject)
    assert not readiness.ready and any("consent has ended" in r for r in readiness.reasons)
    assert "Consent ended" in text(alice_client.get(reverse("dashboard")))


def test_a_generation_queued_before_the_end_does_not_run_after_it(alice, model):
    generation = studio.generation_start(model=model, user=alice, prompt="@me on a boat", seed=1)
    Consent.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(JobError):  # what a worker sees: the job failed, with this reason
        run_queued("generation")
    generation.task.refresh_from_db()
    assert generation.task.status == "failed" and "ended" in generation.task.error
    assert not Post.objects.exists()


def private_post(owner) -> Post:
    return gallery.post_create(
        owner=owner, image=images.astronaut_variant(2), prompt="@me", seed=1,
        generation_settings={}, model_name="m", base_model="b", consent_id=7,
        consent_scope={"publish": "private", "ends": "2027-11-30", "ruled_out": ["intimate"]},
    )  # fmt: skip


def test_images_the_person_wants_private_cannot_be_published_or_shared(alice, alice_client):
    post = private_post(alice)

    for url in (reverse("post_publish", args=[post.pk]), reverse("post_share", args=[post.pk])):
        page = text(alice_client.post(url, follow=True))
        assert gallery.PRIVATE_BY_CONSENT in page
    post.refresh_from_db()
    assert post.visibility == Post.Visibility.DRAFT and not post.share_token
    with pytest.raises(Refusal):
        gallery.post_publish(post=post)
    # Not in a gallery link either.
    gallery.gallery_share_create(owner=alice)
    post.visibility = Post.Visibility.PRIVATE
    post.save()
    share = GalleryShare.objects.get()
    assert str(post.pk) not in text(alice_client.get(reverse("shared_gallery", args=[share.token])))
    assert "agreed only to images kept private" in text(
        alice_client.get(reverse("post_detail", args=[post.pk]))
    )


def test_the_scope_is_signed_into_the_credential_and_verify_shows_it(alice, verifier, client):
    post = private_post(alice)
    with post.image.open("rb") as handle:
        data = handle.read()

    manifest = c2pa.read(data, trust_anchors_pem=signing.trust_anchors_pem()).manifest
    candor = c2pa.assertion(manifest, "org.candor.provenance")
    assert candor["consent_scope"] == {
        "publish": "private",
        "ends": "2027-11-30",
        "ruled_out": ["intimate"],
    }
    verdict = verify_bytes(data)
    assert verdict.details["consent_scope"]["ends"] == "2027-11-30"
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = text(client.post(reverse("verify_page"), {"image": SimpleUploadedFile("a.png", data)}))
    assert "images to be kept private · until 30 Nov 2027 · rules out: intimate" in page


def test_an_image_whose_consent_has_ended_is_not_published_or_shared(alice):
    post = gallery.post_create(
        owner=alice, image=images.astronaut_variant(2), prompt="@me", seed=1,
        generation_settings={}, model_name="m", base_model="b", consent_id=7,
        consent_scope={"publish": "public", "ends": "2026-01-31", "ruled_out": ["intimate"]},
    )  # fmt: skip
    for action in (gallery.post_publish, gallery.post_share_link):
        with pytest.raises(Refusal) as refused:
            action(post=post)
        assert refused.value.message == gallery.CONSENT_ENDED.format(date="2026-01-31")
    post.refresh_from_db()
    assert post.visibility == Post.Visibility.DRAFT and not post.share_token
