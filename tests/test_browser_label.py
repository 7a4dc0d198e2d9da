"""In headless Chromium: label an image made elsewhere, edit it, make its post kit, download the
ZIP, and verify a file from it. Saves each page at desktop and phone width under
var/test-artifacts/label, for a person to look at."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.core.cache import cache

from creator.accounts.models import User
from gallery import signing, verify
from gallery.models import Post
from tests.conftest import PASSWORD, ROOT
from tests.test_journey import shoot
from tests.test_labelling import vendor_signed

pytestmark = pytest.mark.browser


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("CANDOR_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
    folder = folder / "label"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path, private_media, transactional_db):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    cache.clear()
    yield
    signing.reset()


@pytest.fixture
def vendor(settings, tmp_path):
    from gallery.provenance import keys

    identity = keys.identity_load_or_create(tmp_path / "vendor", instance_name="Imagen Corp")
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(identity.root_pem)
    settings.C2PA_TRUST_ANCHORS_FILE = str(anchors)
    return identity


def test_label_an_uploaded_image_edit_it_and_download_its_post_kit(
    live_server, page, vendor, tmp_path, artifacts
):
    User.objects.create_user("gail", "gail@example.com", PASSWORD)
    upload = tmp_path / "from-chatgpt.jpg"
    upload.write_bytes(vendor_signed(vendor))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "gail")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")

    page.goto(live_server.url + "/gallery/")
    shoot(page, artifacts, "0-gallery")
    page.click("text=Label an image made elsewhere")
    page.wait_for_url("**/gallery/label/")
    shoot(page, artifacts, "1-label-form")
    # A file that says AI made it can't be called a photo: the page says why, nothing is made.
    page.set_input_files("#id_image", str(upload))
    page.check("input[name=declaration][value=photo]")
    page.click("#label-form button[type=submit]")
    assert "already labelled as made by AI" in page.locator("#label-error").inner_text()
    shoot(page, artifacts, "2-label-refused")
    assert not Post.objects.exists()

    page.set_input_files("#id_image", str(upload))
    page.check("input[name=declaration][value=ai]")
    page.fill("#id_tool", "ChatGPT")
    page.fill("#id_caption", "A lighthouse at dusk")
    page.click("#label-form button[type=submit]")
    page.wait_for_url("**/gallery/posts/*/")
    credentials = page.locator("#credentials").inner_text()
    assert "Made by an AI model from a prompt" in credentials
    assert "made with ChatGPT" in credentials
    assert "signed by" in credentials and "kept as its parent" in credentials
    assert page.locator(".ai-badge").inner_text() == "AI-generated"
    shoot(page, artifacts, "3-labelled-post")
    labelled = Post.objects.get()

    page.click("#edit summary:has-text('Add a visible label')")
    page.check("#edit input[name=style][value=eu]")
    page.click("#edit button:has-text('Add the label')")
    page.wait_for_function("id => !location.pathname.includes(id)", arg=str(labelled.pk))
    page.locator("#history").wait_for()
    assert "Added a visible label" in page.locator("#history").inner_text()
    edited = Post.objects.exclude(pk=labelled.pk).get()
    assert edited.parent_id == labelled.pk

    page.click("#kit button[type=submit]")
    page.locator("text=Download everything (ZIP)").wait_for()
    page.click("#kit-instagram summary")
    assert "Verify: http" in page.locator("#kit-caption-instagram").input_value()
    page.click("#edit summary:has-text('Crop')")
    shoot(page, artifacts, "4-post-kit")
    with page.expect_download() as download:
        page.click("text=Download everything (ZIP)")
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = archive.namelist()
    jpegs = [n for n in names if n.endswith(".jpg")]
    assert len(jpegs) == edited.kit_files.count() >= 5
    assert any(n.endswith(".png") for n in names)  # the signed original
    assert any(n.endswith(".txt") for n in names)  # captions and alt text
    for name in jpegs:
        verdict = verify.verify_bytes(archive.read(name))
        assert verdict.verdict == verify.SIGNED_BY_THIS_INSTANCE, name
        assert verdict.credential.post == edited

    # Published, its public page says what was declared; anyone can verify a kit file.
    page.click("button:has-text('Publish')")
    page.click("a[href*='/p/']")
    page.wait_for_url("**/p/*/")
    assert "as @gail declared" in page.locator("#credentials").inner_text()
    shoot(page, artifacts, "5-public-post")
    square = tmp_path / "square.jpg"
    square.write_bytes(archive.read(next(n for n in jpegs if "square" in n)))
    page.goto(live_server.url + "/verify/")
    page.set_input_files("#id_image", str(square))
    page.click("form.card button[type=submit]")
    verdict = page.locator("#verdict").inner_text()
    assert "Labelled by its creator, signed by this Candor instance" in verdict
    assert "Made by an AI model from a prompt, by @gail, made with ChatGPT" in verdict
    shoot(page, artifacts, "6-verify-kit-file")
