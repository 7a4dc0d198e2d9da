"""The person shown, end to end in real headless Chromium: their consent page lists what was made
with their face and takes one image down; withdrawing takes everything down for a logged-out
visitor at once and tells the creator; a face they blocked is refused for another creator."""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from creator.accounts.models import User
from creator.likeness import checks, services
from creator.likeness.models import Subject
from gallery import services as gallery
from gallery.models import Post
from tests import images, videos
from tests.conftest import PASSWORD, committing, run_photo_checks, upload_files
from tests.test_browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _fresh(transactional_db, settings, tmp_path, private_media):
    from gallery import signing

    cache.clear()
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


def consented_subject(owner) -> tuple[Subject, str]:
    """Eileen, photographed by `owner`, who agreed through her link with the camera check."""
    subject = Subject.objects.create(owner=owner, kind=Subject.Kind.OTHER, name="Eileen")
    client = Client()
    client.force_login(owner)
    photos = {f"e{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(3)}
    upload_files(client, subject, photos)
    run_photo_checks()
    consent, token = services.consent_link_create(subject=subject)
    challenge, nonce = services.challenge_issue(subject=subject, consent=consent)
    frames = [images.encode(f, "JPEG") for f in videos.challenge_burst(challenge.steps)]
    with committing():
        services.consent_answer_link(
            consent=consent,
            agree=True,
            selfie=checks.Selfie(frames=frames, nonce=nonce),
            signed_name="Eileen",
            consent_scope=services.scope.scope_from_form({}, now=consent.created_at),
        )
    return subject, token


def post_under(subject, owner, *, share=False) -> Post:
    consent = subject.consents.get()
    post = gallery.post_create(
        owner=owner, image=images.astronaut_variant(5), prompt="@them at sea", seed=1,
        generation_settings={}, model_name="@jude · model 1", base_model="builtin:tiny",
        consent_id=consent.pk, consent_scope=consent.scope_summary,
    )  # fmt: skip
    gallery.post_publish(post=post)
    if share:
        gallery.post_share_link(post=post)
        post.refresh_from_db()
    return post


def public_urls(live_server, post: Post, token: str = "") -> list[str]:
    base = live_server.url
    urls = [f"{base}/p/{post.pk}/"] + [
        f"{base}/p/{post.pk}/{v}"
        for v in ("original.png", "display.jpg", "thumb.jpg", "preview.jpg")
    ]
    if token:
        urls += [f"{base}/s/{token}/"] + [
            f"{base}/s/{token}/{v}" for v in ("original.png", "display.jpg", "thumb.jpg")
        ]
    return urls


def statuses(visitor, urls) -> set[int]:
    return {visitor.request.get(url).status for url in urls}


def test_the_person_takes_an_image_down_then_withdraws_and_blocks_their_face(
    live_server, browser, page, workers
):
    jude = User.objects.create_user("jude", "jude@example.com", PASSWORD)
    subject, token = consented_subject(jude)
    first = post_under(subject, jude)
    second = post_under(subject, jude, share=True)
    visitor = browser.new_context()
    assert statuses(visitor, public_urls(live_server, first)) == {200}
    assert statuses(visitor, public_urls(live_server, second, second.share_token)) == {200}

    # The person's own page: both images, published or not; take the first one down.
    person = browser.new_context().new_page()
    person.goto(f"{live_server.url}/consent/{token}/")
    assert "Images made with your likeness (2)" in person.locator("#my-images").inner_text()
    person.locator(f"form[action$='/images/{first.pk}/take-down'] button").click()
    assert "Take this image down?" in person.locator("h1").inner_text()
    person.click("button:has-text('Take this image down')")
    assert "taken down by you" in person.locator("#my-images").inner_text()
    assert statuses(visitor, public_urls(live_server, first)) == {404}
    assert statuses(visitor, public_urls(live_server, second, second.share_token)) == {200}

    # Withdrawing everything, and blocking the face.
    person.click("text=Withdraw my consent and take every image down")
    person.check("input[name=block_face]")
    person.click("button:has-text('Withdraw my consent')")
    assert "Your consent is withdrawn" in person.locator("#consent-state").inner_text()
    assert statuses(visitor, public_urls(live_server, second, second.share_token)) == {404}

    # The creator is told: a badge in the navigation, and the notice itself.
    log_in(page, live_server, "jude")
    badge = page.locator("nav a[href='/notifications/'] .badge").inner_text()
    assert int(badge) >= 2
    page.click("nav a[href='/notifications/']")
    notices = page.locator("main").inner_text()
    assert "Eileen withdrew their consent" in notices
    assert "Eileen took down an image of them" in notices

    # Another creator's photo of the same face is refused, without saying why or whose.
    User.objects.create_user("kim", "kim@example.com", PASSWORD)
    workers.start()
    other = browser.new_context().new_page()
    other.set_default_timeout(20_000)
    log_in(other, live_server, "kim")
    other.check("input[name=kind][value=self]")
    other.click(".subject-new button[type=submit]")
    other.wait_for_url("**/subjects/*/")
    other.set_input_files(
        "#id_photos",
        [
            {
                "name": "me.jpg",
                "mimeType": "image/jpeg",
                "buffer": images.encode(images.astronaut_variant(6)),
            }
        ],
    )
    other.click("form.dropzone button[type=submit]")
    other.locator(".results li", has_text="me.jpg").wait_for(timeout=60_000)
    assert checks.FACE_BLOCKED in other.locator(".results").inner_text()
    assert not re.search("Eileen|jude", other.locator(".results").inner_text())
