"""The keyed watermark: it survives real handling, names only this instance's credentials, and
random images do not decode."""

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from gallery.provenance import watermark
from imaging.phash import phash
from tests import images

KEY = watermark.key_for(b"this instance's signing key")
OTHER_KEY = watermark.key_for(b"another instance's signing key")


def reencode(image: Image.Image, fmt: str, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(images.encode(image, fmt, quality=quality))).convert("RGB")


def crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * share), int(h * share)
    return image.crop((dx, dy, w - dx, h - dy))


@pytest.fixture(scope="module")
def marked():
    return watermark.embed(images.astronaut_variant(1), 4242, key=KEY)


HANDLING = {
    "jpeg q60": lambda im: reencode(im, "JPEG", 60),
    "webp q80": lambda im: reencode(im, "WEBP", 80),
    "10% crop per side": lambda im: crop(im, 0.10),
    "uneven crop": lambda im: im.crop((37, 11, im.width - 23, im.height - 50)),
    "mirror": ImageOps.mirror,
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "brightness +20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "brightness -20%": lambda im: ImageEnhance.Brightness(im).enhance(0.8),
    "contrast +20%": lambda im: ImageEnhance.Contrast(im).enhance(1.2),
    "contrast -20%": lambda im: ImageEnhance.Contrast(im).enhance(0.8),
    "rotated 2°": lambda im: im.rotate(2, resample=Image.Resampling.BICUBIC),
    "rotated -3°": lambda im: im.rotate(-3, resample=Image.Resampling.BICUBIC),
    "mirrored, cropped, jpeg q75": lambda im: reencode(ImageOps.mirror(crop(im, 0.05)), "JPEG", 75),
}


@pytest.mark.parametrize("name", list(HANDLING))
def test_the_id_survives_real_handling(marked, name):
    assert watermark.detect(HANDLING[name](marked), key=KEY) == 4242, name


def test_a_rescaled_copy_is_read_at_the_size_it_was_marked(marked):
    for side in (256, 768):
        copy = marked.resize((side, side), Image.Resampling.LANCZOS)
        assert watermark.detect_rescaled(copy, [(512, 512)], key=KEY) == 4242, side


def test_the_mark_is_invisible(marked):
    original = np.asarray(images.astronaut_variant(1), dtype=np.float64)
    mse = ((np.asarray(marked, dtype=np.float64) - original) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 37


def test_another_instances_mark_is_never_read_as_ours(marked):
    theirs = watermark.embed(images.astronaut_variant(1), 4242, key=OTHER_KEY)
    assert watermark.detect(theirs, key=OTHER_KEY) == 4242
    assert watermark.detect_rescaled(theirs, [(256, 256), (768, 768)], key=KEY) is None


def test_the_payload_is_not_the_row_number():
    assert watermark.payload_bits(1, KEY)[: watermark.ID_BITS].any()
    assert not np.array_equal(watermark.payload_bits(5, KEY), watermark.payload_bits(5, OTHER_KEY))


def test_unrelated_images_do_not_decode():
    rng = np.random.default_rng(0)
    photo = images.astronaut_variant(2)
    unrelated = [
        photo,
        ImageOps.mirror(crop(photo, 0.1)),
        Image.fromarray(rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)),
        Image.new("RGB", (512, 512), (255, 255, 255)),
        Image.linear_gradient("L").resize((512, 384)).convert("RGB"),
    ]
    for image in unrelated:
        assert watermark.detect_rescaled(image, [(512, 512)], key=KEY) is None


def test_the_second_factor_needs_a_look_alike(marked):
    mirrored = ImageOps.mirror(crop(marked, 0.1))
    found = watermark.find(mirrored, [], key=KEY)
    assert found is not None and found.mirrored
    assert watermark.looks_like(mirrored, found, phash(marked))
    assert not watermark.looks_like(mirrored, found, phash(images.astronaut_variant(5).rotate(90)))
    assert not watermark.looks_like(mirrored, found, "")


# --- through verify -----------------------------------------------------------------------------


@pytest.fixture
def verifying(db, settings, tmp_path, private_media):
    from django.core.cache import cache

    from gallery import signing

    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    settings.VERIFY_RATE_LIMIT = 1000
    signing.reset()
    cache.clear()
    yield signing
    signing.reset()


def test_a_mirrored_grey_copy_cropped_10_percent_is_recovered_through_verify(verifying, alice):
    from gallery import verify
    from tests.test_verify import candor_post, check

    post = candor_post(alice)
    display = Image.open(post.display.open()).convert("RGB")
    copy = ImageOps.mirror(crop(display, 0.1)).convert("L")
    assert check(images.encode(copy, "JPEG", quality=80))["verdict"] == (
        verify.RECOVERED_BY_WATERMARK
    )


def test_another_instances_mark_is_not_attributed_here(verifying, alice):
    from gallery import verify
    from tests.test_verify import candor_post, check

    post = candor_post(alice)
    display = post.credentials.get(variant="display")
    # Another instance marks the same picture with the same number under its own key.
    theirs = watermark.embed(images.astronaut_variant(6), display.pk, key=OTHER_KEY)
    assert check(images.encode(theirs, "PNG"), "x.png")["verdict"] != (
        verify.RECOVERED_BY_WATERMARK
    )


def test_a_valid_mark_on_a_different_picture_is_not_a_recovery(verifying, alice):
    from gallery import verify
    from tests.test_verify import candor_post, check

    post = candor_post(alice)
    key = verifying.watermark_key()
    # Our own mark, lifted onto a picture that looks nothing like the credential's.
    elsewhere = watermark.embed(
        images.astronaut_variant(2).rotate(90), post.credentials.get(variant="display").pk, key=key
    )
    assert watermark.detect(elsewhere, key=key) is not None
    assert check(images.encode(elsewhere, "PNG"), "x.png")["verdict"] == verify.NO_CREDENTIALS
