"""The navigation, the account page, the favicon, and share pages kept out of search engines."""

import re

import pytest
from django.urls import reverse

from gallery import signing
from gallery.models import GalleryShare
from gallery.services import post_create
from tests import images

NOINDEX = '<meta name="robots" content="noindex">'


def nav(html: str) -> str:
    return re.search(r'<nav class="nav">.*?</nav>', html, re.S).group(0)


def test_the_handle_in_the_navigation_opens_the_account_page(alice, alice_client):
    html = nav(alice_client.get(reverse("dashboard")).content.decode())
    assert f'<a href="{reverse("account")}">@alice</a>' in html

    page = alice_client.get(reverse("account"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "@alice" in text and alice.email in text
    assert f'href="{reverse("password_change")}"' in text
    assert f'href="{reverse("account_delete")}"' in text


def test_the_account_page_needs_a_login(db, anonymous):
    response = anonymous.get(reverse("account"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_navigation_links_the_public_page(alice_client):
    html = nav(alice_client.get(reverse("dashboard")).content.decode())
    assert '<a href="/@alice">Public page</a>' in html
    assert alice_client.get("/@alice").status_code == 200


def test_browsers_asking_for_favicon_ico_get_the_mark(db, anonymous):
    response = anonymous.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[0][0].endswith("/img/candor.svg")
    html = anonymous.get(reverse("home")).content.decode()
    assert re.search(r'<link rel="icon" href="[^"]*candor\.svg" type="image/svg\+xml">', html)


@pytest.fixture
def _keys(settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


@pytest.mark.usefixtures("_keys")
def test_shared_pages_are_kept_out_of_search_engines_public_pages_are_not(
    alice, alice_client, anonymous
):
    post = post_create(
        owner=alice, image=images.astronaut_variant(2), prompt="@me on a boat", seed=3,
        generation_settings={"steps": 4}, model_name="Alice · model 1",
        base_model="builtin:tiny", consent_id=1,
    )  # fmt: skip
    alice_client.post(reverse("post_publish", args=[post.pk]))
    alice_client.post(reverse("post_share", args=[post.pk]))
    alice_client.post(reverse("gallery_share"))
    post.refresh_from_db()
    share = GalleryShare.objects.get()

    def page(url: str) -> str:
        response = anonymous.get(url)
        assert response.status_code == 200
        return response.content.decode()

    assert NOINDEX in page(reverse("shared_post", args=[post.share_token]))
    assert NOINDEX in page(reverse("shared_gallery", args=[share.token]))
    assert NOINDEX not in page(reverse("public_post", args=[post.pk]))
    assert NOINDEX not in page(reverse("profile", args=["alice"]))


def test_consent_link_pages_are_kept_out_of_search_engines(db, anonymous):
    for url in (reverse("consent_link", args=["no-such-token"]), reverse("consent_link_lost")):
        assert NOINDEX in anonymous.get(url).content.decode()
