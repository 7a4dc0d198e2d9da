"""A creator's first hour, end to end, against `candor up` on a non-default port: sign up, photos,
consent, train, generate, publish, share, a logged-out view, verify. It checks what a creator
stumbled on before: absolute URLs that follow the port (page tags and the author URL signed into
the image), the caption, the loss chart's axes, the link from a finished job to its images.

Every page is saved at desktop and phone width under CANDOR_TEST_ARTIFACTS (default
var/test-artifacts/journey), for a person to look at.

Consent here uses the picture-file path (`up` runs in its own processes, so the live check's random
order can't be followed by a prepared clip): tests/test_browser.py covers the camera check."""

import io
import os
import re
from pathlib import Path

import pytest

from gallery.provenance import c2pa
from tests import images
from tests.conftest import PASSWORD, ROOT
from tests.test_up import Up

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("CANDOR_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
    folder = folder / "journey"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, folder: Path, name: str) -> None:
    """The page as it is now, at each width (then back to desktop)."""
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def test_a_creators_first_hour_under_up_on_another_port(
    tmp_path, browser, artifacts, model_cache_dir
):
    up = Up(
        tmp_path,
        CONSENT_REQUIRE_LIVENESS="false",
        TRAIN_STEPS="6",
        TRAIN_CHECKPOINT_EVERY="3",
        GENERATION_STEPS="3",
        MODEL_CACHE_DIR=str(model_cache_dir),
    )
    try:
        up.wait_until_serving()
        assert up.port != 8000
        site = up.url.rstrip("/")
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(30_000)

        page.goto(up.url + "signup/")
        shoot(page, artifacts, "01-signup")
        page.fill("#id_handle", "wren")
        page.fill("#id_email", "wren@example.com")
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard/")
        shoot(page, artifacts, "02-dashboard")

        page.check("input[name=kind][value=self]")
        page.click(".subject-new button[type=submit]")
        page.wait_for_url("**/subjects/*/")
        page.set_input_files(
            "#id_photos",
            [
                {
                    "name": f"me{i}.jpg",
                    "mimeType": "image/jpeg",
                    "buffer": images.encode(images.astronaut_variant(i)),
                }
                for i in range(4)
            ],
        )
        page.click("form.dropzone button[type=submit]")
        page.locator(".task .badge", has_text="Succeeded").wait_for(timeout=90_000)
        page.goto(page.url)
        assert page.locator(".photo .badge", has_text="Looks good").count() == 4
        shoot(page, artifacts, "03-photos")

        page.click("text=Give consent with a selfie")
        page.click("summary:has-text('No camera?')")
        page.set_input_files(
            "#id_selfie",
            {
                "name": "selfie.jpg",
                "mimeType": "image/jpeg",
                "buffer": images.encode(images.astronaut_variant(7)),
            },
        )
        page.check("input[name=agree]")
        shoot(page, artifacts, "04-consent")
        page.click("button:has-text('Give consent')")
        page.wait_for_url("**/subjects/*/")
        assert "Consent recorded" in page.locator(".messages").inner_text()

        page.click("text=Train a personal model")
        page.wait_for_url("**/models/*/")
        page.locator("#generate").wait_for(timeout=180_000)
        chart = page.locator(".loss-chart")
        assert chart.locator(".loss-axis").count() == 1
        labels = chart.locator("text").all_text_contents()
        assert "step" in labels and "loss" in labels and "6" in labels
        shoot(page, artifacts, "05-trained")

        page.fill("#id_prompt", "@me reading in a café")
        page.click("#generate button[type=submit]")
        page.locator("#generations .ai-image img").first.wait_for(timeout=180_000)
        shoot(page, artifacts, "06-generated")
        # The finished job, listed on the dashboard, leads to its images.
        page.goto(f"{site}/dashboard/")
        results = page.locator("a", has_text="See the image")
        assert results.count() == 1
        shoot(page, artifacts, "07-dashboard-jobs")
        results.click()
        page.wait_for_url("**/models/*/#generation-*")
        page.locator("#generations .ai-image").first.click()
        page.wait_for_url("**/gallery/posts/*/")
        caption = page.locator("#id_caption").input_value()
        assert "reading in a café" in caption and "@me" not in caption
        page.click("button:has-text('Publish')")
        page.click("text=Make an unlisted link")
        share = page.locator("input[aria-label='Share link']").input_value()
        assert share.startswith(f"{site}/s/")
        shoot(page, artifacts, "08-post")
        post_id = re.search(r"/gallery/posts/([0-9a-f-]+)/", page.url).group(1)

        visitor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        visitor.goto(f"{site}/p/{post_id}/")
        og = {
            name: visitor.locator(f"meta[property='{name}'], meta[name='{name}']").get_attribute(
                "content"
            )
            for name in ("og:url", "og:image", "twitter:image")
        }
        assert og["og:url"] == f"{site}/p/{post_id}/"
        assert og["og:image"].startswith(f"{site}/p/{post_id}/")
        assert og["twitter:image"] == og["og:image"]
        assert "reading in a café" in visitor.content()
        shoot(visitor, artifacts, "09-public-post")
        visitor.goto(share)
        assert visitor.locator("meta[name=robots]").get_attribute("content") == "noindex"
        shoot(visitor, artifacts, "10-shared-post")

        original = visitor.request.get(f"{site}/p/{post_id}/original.png").body()
        manifest = c2pa.read(original).manifest
        work = c2pa.assertion(manifest, "stds.schema-org.CreativeWork")
        assert work["author"][0]["url"] == f"{site}/@wren"

        visitor.goto(f"{site}/verify/")
        visitor.set_input_files(
            "#id_image",
            {"name": "found.png", "mimeType": "image/png", "buffer": io.BytesIO(original).read()},
        )
        visitor.click("button:has-text('Verify')")
        assert "signed by this Candor instance" in visitor.locator("#verdict h2").inner_text()
        link = visitor.locator("a", has_text="See the original post").get_attribute("href")
        assert link == f"{site}/p/{post_id}/"
        shoot(visitor, artifacts, "11-verify")
    finally:
        up.kill()
