"""End to end in real headless Chromium against a live server."""

import pytest
from django.core.cache import cache
from django.test import Client

from creator.accounts.models import User
from creator.jobs import services
from creator.jobs.models import Task
from gallery.models import Post
from tests import jobs
from tests.conftest import PASSWORD, run_photo_checks, upload_files, wait_for_status

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _fresh_rate_limits(transactional_db):
    cache.clear()


def test_sign_up_log_out_log_in_and_see_the_dashboard(live_server, page):
    page.goto(live_server.url)
    page.click("text=Create an account")
    page.fill("#id_handle", "erin")
    page.fill("#id_email", "erin@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert page.locator("h1").inner_text() == "Hello, @erin"
    assert "Welcome to Candor, @erin." in page.locator(".messages").inner_text()

    page.click("text=Log out")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + "/dashboard/")
    assert "/login/" in page.url  # the dashboard needs a login again

    page.fill("#id_username", "erin@example.com")
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    assert "don't match an account" in page.locator(".form-errors").inner_text()

    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert page.locator("h1").inner_text() == "Hello, @erin"
    assert User.objects.filter(handle="erin").count() == 1


def test_a_job_page_shows_live_progress_that_survives_a_reload(live_server, page, workers):
    user = User.objects.create_user("fay", "fay@example.com", PASSWORD)
    task = services.task_start(
        owner=user,
        kind="test",
        label="Counting sheep",
        job=jobs.count_slowly,
        job_kwargs={"steps": 40, "delay": 0.1},
    )
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "fay")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    workers.start()

    page.goto(f"{live_server.url}/jobs/{task.pk}/")
    meta = page.locator(".task-meta")
    meta.filter(has_text="Step").wait_for()
    first = int(page.locator("progress").get_attribute("value"))

    page.reload()
    after_reload = int(page.locator("progress").get_attribute("value"))
    assert after_reload >= first
    # Without any further navigation, polling moves the bar forward and ends on Succeeded.
    page.wait_for_function(
        "v => Number(document.querySelector('progress')?.value ?? 100) > v", arg=after_reload
    )
    page.locator(".badge", has_text="Succeeded").wait_for(timeout=30_000)
    assert page.locator("progress").count() == 0
    assert first < 100
    wait_for_status(task, Task.Status.SUCCEEDED)


def log_in(page, live_server, handle: str) -> None:
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", handle)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


DROP_FILES = """
async ([selector, files]) => {
  const data = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    data.items.add(new File([bytes], name, { type: "image/jpeg" }));
  }
  const zone = document.querySelector(selector);
  const drop = new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
  zone.dispatchEvent(drop);
}
"""


ASKED = ("right", "mouth", "left")  # the challenge the server issues in these tests


@pytest.fixture
def fixed_challenge(monkeypatch):
    """The live server runs in this process: its challenges ask for ASKED, so the fake camera's
    clip (made before Chromium starts) can follow them."""
    from creator.engine import liveness

    monkeypatch.setattr(liveness, "random_steps", lambda: ASKED)


def take_camera_check(page) -> None:
    page.click("[data-liveness-start]")
    page.locator("[data-liveness-status]", has_text="Recorded 12 frames").wait_for(timeout=30_000)


def test_upload_photos_see_verdicts_consent_with_the_camera_check_and_be_ready(
    live_server, camera, fixed_challenge, workers, private_media, tmp_path
):
    import base64

    from tests import images, videos

    page = camera(videos.challenge_video(ASKED, tmp_path / "following.y4m"))
    User.objects.create_user("gus", "gus@example.com", PASSWORD)
    workers.start()
    log_in(page, live_server, "gus")

    page.check("input[name=kind][value=self]")
    page.click(".subject-new button[type=submit]")
    page.wait_for_url("**/subjects/*/")

    # Four photos through the plain file input, three by drag and drop, one that isn't a face.
    page.set_input_files(
        "#id_photos",
        [
            {
                "name": f"me{i}.jpg",
                "mimeType": "image/jpeg",
                "buffer": images.encode(images.astronaut_variant(i)),
            }
            for i in range(4)
        ]
        + [
            {
                "name": "coffee.png",
                "mimeType": "image/png",
                "buffer": images.fixture_bytes("skimage_coffee.png"),
            }
        ],
    )
    page.click("form.dropzone button[type=submit]")
    page.wait_for_url("**/subjects/*/")
    page.locator(".results li", has_text="coffee.png").wait_for(timeout=60_000)
    dropped = [
        (f"drop{i}.jpg", base64.b64encode(images.encode(images.astronaut_variant(i))).decode())
        for i in range(4, 7)
    ]
    page.evaluate(DROP_FILES, ["[data-dropzone]", dropped])
    assert "3 photos ready to upload" in page.locator(".dropzone-label").inner_text()
    page.click("form.dropzone button[type=submit]")
    page.wait_for_url("**/subjects/*/")
    page.locator(".task .badge", has_text="Succeeded").wait_for(timeout=60_000)

    assert page.locator(".photo-grid .photo").count() == 7
    assert page.locator(".photo .badge", has_text="Looks good").count() == 7
    page.goto(page.url)  # the refused photo's verdict was on the first check's card
    assert "Not ready to train yet" in page.locator("#readiness").inner_text()

    page.click("text=Give consent with a selfie")
    take_camera_check(page)
    page.check("input[name=agree]")
    page.click("button:has-text('Give consent')")
    page.wait_for_load_state()
    assert page.locator(".form-errors").count() == 0, page.locator(".form-errors").inner_text()
    page.wait_for_url("**/subjects/*/")

    assert "Consent recorded" in page.locator(".messages").inner_text()
    assert "Ready to train" in page.locator("#readiness").inner_text()
    assert "with the live camera check" in page.locator("#consent").inner_text()


def test_a_still_photo_in_front_of_the_camera_is_refused(
    live_server, camera, fixed_challenge, tmp_path, private_media
):
    from creator.likeness import checks
    from creator.likeness.models import Subject
    from tests import images, videos

    user = User.objects.create_user("ivy", "ivy@example.com", PASSWORD)
    subject = Subject.objects.create(owner=user, name="Ivy")
    client = Client()
    client.force_login(user)
    upload_files(
        client,
        subject,
        {f"me{i}.jpg": images.encode(images.astronaut_variant(i)) for i in range(3)},
    )
    run_photo_checks()
    still = videos.y4m(videos.still_burst(), tmp_path / "still.y4m")
    page = camera(still)
    log_in(page, live_server, "ivy")
    page.goto(f"{live_server.url}/subjects/{subject.pk}/consent/")

    take_camera_check(page)
    page.check("input[name=agree]")
    page.click("button:has-text('Give consent')")

    refusal = page.locator(".form-errors").inner_text()
    assert refusal == checks.LIVENESS_MESSAGES["still"]
    assert not subject.consents.exists()


def test_train_a_model_and_generate_through_the_real_pages(live_server, page, workers, settings):
    from tests.test_training import make_ready

    settings.TRAIN_STEPS = 8
    settings.TRAIN_CHECKPOINT_EVERY = 4
    settings.GENERATION_STEPS = 4
    user = User.objects.create_user("hana", "hana@example.com", PASSWORD)
    from creator.likeness.models import Subject

    subject = make_ready(
        Subject.objects.create(owner=user, name="Hana"), scope_form="rule_out=political"
    )
    workers.start()
    log_in(page, live_server, "hana")

    page.goto(f"{live_server.url}/subjects/{subject.pk}/")
    page.click("text=Train a personal model")
    page.wait_for_url("**/models/*/")
    # Live progress: the page follows the run and reloads itself when it is done.
    page.locator("#generate").wait_for(timeout=90_000)
    assert page.locator(".task .badge", has_text="Succeeded").count() == 1
    assert page.locator(".loss-chart polyline").count() == 1
    assert page.locator(".samples img").count() == 2

    # A prompt outside what Hana agreed to is refused, with the word that tripped it.
    page.fill("#id_prompt", "@me speaking at a political rally")
    page.click("#generate button[type=submit]")
    refusal = page.locator(".messages").inner_text()
    assert "Hana ruled out political content" in refusal and "(“political”)" in refusal
    assert not Post.objects.filter(owner=user).exists()

    page.fill("#id_prompt", "@me reading in a café")
    page.select_option("#id_style", "film")
    page.select_option("#id_count", "2")
    page.click("#generate button[type=submit]")
    page.locator("#generations .ai-image img").first.wait_for(timeout=90_000)

    assert page.locator("#generations .ai-image").count() == 2
    assert page.locator("#generations .ai-badge").first.inner_text() == "AI-generated"
    page.locator("#generations .ai-image").first.click()
    page.wait_for_url("**/gallery/posts/*/")
    assert "reading in a café" in page.content()
    assert Post.objects.filter(owner=user, visibility="draft").count() == 2


def test_publish_share_open_logged_out_and_revoke(
    live_server, browser, page, settings, tmp_path, private_media
):
    from gallery import signing
    from gallery.services import post_create
    from tests import images

    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    user = User.objects.create_user("iris", "iris@example.com", PASSWORD)
    post = post_create(
        owner=user, image=images.astronaut_variant(4), prompt="@me at sea", seed=1,
        generation_settings={}, model_name="Iris · model 1", base_model="builtin:tiny",
    )  # fmt: skip
    log_in(page, live_server, "iris")

    page.goto(f"{live_server.url}/gallery/posts/{post.pk}/")
    page.fill("#id_caption", "A day at sea")
    page.click("text=Save caption")
    page.click("button:has-text('Publish')")
    assert "Published" in page.locator(".messages").inner_text()
    page.click("text=Make an unlisted link")
    link = page.locator("input[aria-label='Share link']").input_value()

    visitor = browser.new_context().new_page()
    visitor.goto(link)
    assert visitor.locator(".ai-badge").first.inner_text() == "AI-generated"
    panel = visitor.locator("#credentials").inner_text()
    assert "AI-generated with Candor from @iris's personal model" in panel
    assert "A day at sea" in visitor.content()
    visitor.goto(f"{live_server.url}/@iris")
    assert visitor.locator(".post").count() == 1

    page.click("text=Revoke the link")
    response = visitor.goto(link)
    assert response.status == 404
    visitor.context.close()
    signing.reset()
