"""The gallery: drafts, publishing, public pages, share links, and what every image route serves."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from gallery import services, signing
from gallery.models import GalleryShare, Post
from gallery.provenance import c2pa
from gallery.services import post_create
from tests import images
from tests.conftest import CONFIRM, committing, stored_files


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    yield
    signing.reset()


def make_post(owner, **overrides) -> Post:
    values = {
        "image": images.astronaut_variant(2), "prompt": "@me on a boat", "seed": 3,
        "generation_settings": {"steps": 4}, "model_name": "Alice · model 1",
        "base_model": "builtin:tiny", "consent_id": 1,
    }  # fmt: skip
    return post_create(owner=owner, **{**values, **overrides})


@pytest.fixture
def post(alice) -> Post:
    return make_post(alice)


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


def all_image_urls(post: Post, *, share_token="", gallery_token="") -> list[str]:
    urls = []
    for variant, ext in (
        ("original", "png"),
        ("display", "jpg"),
        ("thumb", "jpg"),
        ("preview", "jpg"),
    ):
        urls.append(reverse("post_file", args=[post.pk, variant, ext]))
        urls.append(reverse("public_file", args=[post.pk, variant, ext]))
        if share_token:
            urls.append(reverse("shared_file", args=[share_token, variant, ext]))
        if gallery_token:
            urls.append(reverse("shared_gallery_file", args=[gallery_token, post.pk, variant, ext]))
    return urls


def test_every_image_route_serves_bytes_that_carry_a_trusted_manifest(alice, alice_client, post):
    alice_client.post(reverse("post_publish", args=[post.pk]))
    alice_client.post(reverse("post_share", args=[post.pk]))
    alice_client.post(reverse("gallery_share"))
    post.refresh_from_db()
    share = GalleryShare.objects.get()
    anchors = signing.trust_anchors_pem()
    urls = all_image_urls(post, share_token=post.share_token, gallery_token=share.token)
    assert len(urls) == 16
    for url in urls:
        response = alice_client.get(url)
        assert response.status_code == 200, url
        data = b"".join(response.streaming_content)
        assert c2pa.read(data, trust_anchors_pem=anchors).state == "Trusted", url
        owner_only = url.startswith("/gallery/")
        expected = "private, no-store" if owner_only else "public, max-age=300, must-revalidate"
        assert response["Cache-Control"] == expected, url


def test_a_draft_is_private_until_published(alice, alice_client, bob_client, anonymous, post):
    assert post.visibility == Post.Visibility.DRAFT
    for client in (bob_client, anonymous):
        assert client.get(reverse("public_post", args=[post.pk])).status_code == 404
        assert (
            client.get(reverse("public_file", args=[post.pk, "original", "png"])).status_code == 404
        )
        assert client.get(reverse("post_detail", args=[post.pk])).status_code in (302, 404)
    assert (
        bob_client.get(reverse("post_file", args=[post.pk, "original", "png"])).status_code == 404
    )
    assert "on a boat" not in text(anonymous.get(reverse("profile", args=["alice"])))

    alice_client.post(reverse("post_publish", args=[post.pk]))

    page = anonymous.get(reverse("public_post", args=[post.pk]))
    assert page.status_code == 200
    html = text(page)
    assert "AI-generated" in html and "Content Credentials" in html
    assert "contentcredentials.org/verify?source=http%3A%2F%2F" in html
    profile = text(anonymous.get("/@alice"))
    assert reverse("public_post", args=[post.pk]) in profile

    alice_client.post(reverse("post_publish", args=[post.pk]), {"publish": "0"})
    assert anonymous.get(reverse("public_post", args=[post.pk])).status_code == 404


def test_public_originals_are_open_to_verifiers_and_download_intact(alice_client, anonymous, post):
    alice_client.post(reverse("post_publish", args=[post.pk]))
    url = reverse("public_file", args=[post.pk, "original", "png"])

    response = anonymous.get(url + "?download=1")

    assert response["Access-Control-Allow-Origin"] == "*"
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == post.image.open().read()


def test_public_pages_carry_open_graph_tags_with_the_badged_preview(alice_client, anonymous, post):
    alice_client.post(reverse("post_publish", args=[post.pk]))
    html = text(anonymous.get(reverse("public_post", args=[post.pk])))
    preview = reverse("public_file", args=[post.pk, "preview", "jpg"])
    assert f'<meta property="og:image" content="http://127.0.0.1:8000{preview}">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert "AI-generated image by @alice" in html


def test_a_share_link_works_until_revoked(alice_client, anonymous, post):
    alice_client.post(reverse("post_share", args=[post.pk]))
    post.refresh_from_db()
    link = reverse("shared_post", args=[post.share_token])
    assert len(post.share_token) >= 32
    assert anonymous.get(link).status_code == 200

    alice_client.post(reverse("post_share", args=[post.pk]), {"revoke": "1"})

    assert anonymous.get(link).status_code == 404
    assert (
        anonymous.get(
            reverse("shared_file", args=[post.share_token or "x", "original", "png"])
        ).status_code
        == 404
    )


def test_a_gallery_link_shows_public_and_private_posts_not_drafts(alice, alice_client, anonymous):
    public, private, draft = (make_post(alice, seed=s) for s in (1, 2, 3))
    alice_client.post(reverse("post_publish", args=[public.pk]))
    alice_client.post(reverse("post_publish", args=[private.pk]))
    alice_client.post(reverse("post_publish", args=[private.pk]), {"publish": "0"})
    alice_client.post(reverse("gallery_share"))
    share = GalleryShare.objects.get()

    html = text(anonymous.get(reverse("shared_gallery", args=[share.token])))
    assert str(public.pk) in html and str(private.pk) in html and str(draft.pk) not in html

    alice_client.post(reverse("gallery_share_revoke", args=[share.pk]))
    assert anonymous.get(reverse("shared_gallery", args=[share.token])).status_code == 404


def test_captions_are_edited_and_shown(alice_client, anonymous, post):
    alice_client.post(reverse("post_caption", args=[post.pk]), {"caption": "Sailing, sort of"})
    alice_client.post(reverse("post_publish", args=[post.pk]))
    assert "Sailing, sort of" in text(anonymous.get(reverse("public_post", args=[post.pk])))


def test_a_caption_over_the_limit_is_refused_not_cut(alice_client, post):
    alice_client.post(reverse("post_caption", args=[post.pk]), {"caption": "Kept"})
    too_long = "x" * (services.CAPTION_MAX_CHARS + 1)
    response = alice_client.post(
        reverse("post_caption", args=[post.pk]), {"caption": too_long}, follow=True
    )
    assert services.CAPTION_TOO_LONG in text(response)
    post.refresh_from_db()
    assert post.caption == "Kept"


def test_deleting_a_post_deletes_its_files(alice_client, post, private_media):
    assert len([p for p in stored_files(private_media) if "/posts/" in str(p)]) == 4
    asked = alice_client.post(reverse("post_delete", args=[post.pk]))
    assert "Delete this post" in asked.content.decode() and Post.objects.exists()
    with committing():
        alice_client.post(reverse("post_delete", args=[post.pk]), CONFIRM)
    assert not Post.objects.exists()
    assert [p for p in stored_files(private_media) if "/posts/" in str(p)] == []


def test_another_creator_cannot_change_a_post(bob_client, post):
    for name in ("post_caption", "post_publish", "post_share", "post_delete"):
        assert bob_client.post(reverse(name, args=[post.pk]), {"caption": "x"}).status_code == 404
    post.refresh_from_db()
    assert (post.caption, post.visibility) == ("", Post.Visibility.DRAFT)


def test_the_trust_anchor_is_downloadable(anonymous):
    response = anonymous.get(reverse("trust_anchor"))
    assert response.content == signing.identity().root_pem
    assert response.content.startswith(b"-----BEGIN CERTIFICATE-----")


def test_gallery_and_profile_pages_use_a_constant_number_of_queries(
    alice, alice_client, anonymous, django_assert_max_num_queries
):
    Post.objects.bulk_create(
        Post(owner=alice, image=f"x{i}.png", width=64, height=64, sha256="0", prompt=f"p{i}",
             seed=i, model_name="m", base_model="b", visibility=Post.Visibility.PUBLIC)
        for i in range(200)
    )  # fmt: skip
    with django_assert_max_num_queries(8):
        page = alice_client.get(reverse("gallery"))
    assert len(re.findall(r'class="post"', page.content.decode())) == 200
    with django_assert_max_num_queries(4):
        page = anonymous.get(reverse("profile", args=["alice"]))
    assert len(re.findall(r'class="post"', page.content.decode())) == 200


def test_private_objects_use_uuids_and_tokens_not_sequential_ids(post):
    assert re.fullmatch(r"[0-9a-f-]{36}", str(post.pk))
    assert str(post.pk) in reverse("post_detail", args=[post.pk])


def test_an_unknown_profile_is_a_404(db, anonymous):
    assert anonymous.get("/@nobody_here").status_code == 404
    assert Client().get("/@alice").status_code == 404  # no such user in this test


def test_another_creator_cannot_revoke_a_gallery_link(alice_client, bob_client, anonymous):
    alice_client.post(reverse("gallery_share"))
    share = GalleryShare.objects.get()
    assert bob_client.post(reverse("gallery_share_revoke", args=[share.pk])).status_code == 404
    assert anonymous.get(reverse("shared_gallery", args=[share.token])).status_code == 200


def test_an_unknown_share_token_is_a_404(db, anonymous):
    assert anonymous.get(reverse("shared_post", args=["no-such-token"])).status_code == 404
    assert anonymous.get(reverse("shared_gallery", args=["no-such-token"])).status_code == 404


def test_withdrawn_consent_takes_every_post_made_under_it_down_at_once(
    alice, alice_client, anonymous, post
):
    from django.utils import timezone

    from creator.likeness.models import Consent, Subject
    from creator.likeness.services import consent_revoke

    subject = Subject.objects.create(owner=alice, name="Alice")
    consent = Consent.objects.create(
        subject=subject, method="selfie", status="granted", granted_at=timezone.now()
    )
    Post.objects.filter(pk=post.pk).update(consent_id=consent.pk)
    alice_client.post(reverse("post_publish", args=[post.pk]))
    alice_client.post(reverse("post_share", args=[post.pk]))
    alice_client.post(reverse("gallery_share"))
    post.refresh_from_db()
    share = GalleryShare.objects.get()
    public = [
        reverse("public_post", args=[post.pk]),
        reverse("shared_post", args=[post.share_token]),
        *(
            url
            for url in all_image_urls(post, share_token=post.share_token, gallery_token=share.token)
            if not url.startswith("/gallery/")  # the owner's own URLs
        ),
    ]
    assert len(public) == 2 + 12
    assert all(anonymous.get(url).status_code == 200 for url in public)

    with committing():
        consent_revoke(subject=subject, by="subject")

    for url in public:
        assert anonymous.get(url).status_code == 404, url
    assert str(post.pk) not in text(anonymous.get(reverse("profile", args=["alice"])))
    assert str(post.pk) not in text(anonymous.get(reverse("shared_gallery", args=[share.token])))
    own = text(alice_client.get(reverse("post_detail", args=[post.pk])))
    assert "the person shown withdrew their consent" in own
    assert ">Publish<" not in own and "Make an unlisted link" not in own
    refused = alice_client.post(reverse("post_publish", args=[post.pk]), follow=True)
    assert services.CONSENT_WITHDRAWN in text(refused)
    post.refresh_from_db()
    assert post.visibility == Post.Visibility.PRIVATE and not post.share_token
