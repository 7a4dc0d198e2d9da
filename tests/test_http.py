"""HTTP behaviour every page shares: HEAD answers like GET, private files stay out of caches."""

import pytest
from django.urls import reverse

from gallery import signing
from gallery.services import post_create
from tests import images
from tests.conftest import upload_files


@pytest.fixture
def public_post(alice, settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    post = post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="@alice · model 1", base_model="tiny",
    )  # fmt: skip
    post.visibility = post.Visibility.PUBLIC
    post.save()
    yield post
    signing.reset()


def test_head_answers_wherever_get_does(anonymous, alice_client, public_post):
    """Link-preview bots ask with HEAD first."""
    public = [
        reverse("home"),
        reverse("login"),
        reverse("verify_page"),
        reverse("profile", args=["alice"]),
        reverse("public_post", args=[public_post.pk]),
        reverse("public_file", args=[public_post.pk, "preview", "jpg"]),
        reverse("trust_anchor"),
    ]
    for url in public:
        get, head = anonymous.get(url), anonymous.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head["Content-Type"] == get["Content-Type"], url
    for url in (
        reverse("dashboard"),
        reverse("gallery"),
        reverse("post_detail", args=[public_post.pk]),
    ):
        assert alice_client.head(url).status_code == 200, url


def test_reference_photos_and_private_files_are_never_cached(alice_client, alice_subject):
    upload_files(alice_client, alice_subject, {"me.jpg": images.encode(images.astronaut())})
    photo = alice_subject.photos.get()
    for variant in ("photo", "thumb"):
        response = alice_client.get(
            reverse("photo_file", args=[alice_subject.pk, photo.pk, variant])
        )
        assert response.status_code == 200
        assert response["Cache-Control"] == "private, no-store"


def test_full_or_read_only_storage_refuses_an_upload_plainly(
    alice_client, alice_subject, private_media
):
    from config.files import STORAGE_FAILED
    from creator.jobs.models import Task
    from tests.conftest import stored_files

    # sysfs refuses every write, even root's: the photos folder can't be made there.
    (private_media / "photos").symlink_to("/sys/candor-unwritable")
    response = upload_files(
        alice_client, alice_subject, {"me.jpg": images.encode(images.astronaut())}
    )
    assert response.status_code == 302
    page = alice_client.get(response.url).content.decode().replace("&#x27;", "'")
    assert STORAGE_FAILED in page
    assert not alice_subject.photos.exists() and not Task.objects.exists()
    assert stored_files(private_media) == []
