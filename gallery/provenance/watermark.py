"""An invisible, keyed watermark that leads back to a credential after a platform strips the
metadata. No Django imports; numpy and Pillow only.

Payload (64 bits): a 24-bit credential number, enciphered with a keyed 4-round Feistel so the
bits are not a guessable row number, followed by a 40-bit tag, HMAC-SHA256(key, cipher)
truncated. The key is the instance's (`key_for` derives it from the signing key), so an image
marked by another instance, or any unmarked image, fails the tag: each decoding hypothesis
passes by chance with probability 2^-40.

Embedding is spread spectrum in luma, so grayscale copies keep it: a 128-px tile of 4x4-px chips
(32x32), each chip carrying one payload bit times a key-derived ±1 chip sign, is repeated over
the whole image and added to Y, scaled by local texture so flat areas change least. Reading
high-passes the luma, folds it onto one tile (the sum over all tiles), so any crop becomes a
cyclic shift of the tile, and correlates the fold with each bit's template through one batch of
FFTs: every one of the 128x128 shifts is tried at once. Correlation signs survive brightness and
contrast changes; mirroring is tried by flipping the fold; rescaled copies are tried at the sizes
Candor writes; a small rotation is measured from where the repeated tile puts the peaks of the
residual's autocorrelation, and undone.

Hypotheses tried per image (the count the 2^-40 multiplies): (sizes + 1 rotation) x 2 mirrors x
PEAKS shifts x 2^SOFT_BITS flips of the least certain bits. bench/watermark.py measures
robustness, cost and the false-decode rate.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from imaging.phash import hamming, phash

ID_BITS = 24
MAC_BITS = 40
PAYLOAD_BITS = ID_BITS + MAC_BITS
MAX_ID = (1 << ID_BITS) - 1
CHIP = 4  # pixels per chip side
TILE = 128  # pixels per tile side
CHIPS = TILE // CHIP
STRENGTH = 2.2  # luma change in flat areas
TEXTURE_GAIN = 0.12  # extra luma change per unit of local mean absolute deviation
MAX_STRENGTH = 5.0
CLIP = 12.0  # residual clip while reading, so strong edges do not drown the chips
WEIGHT_FLOOR = 2.0  # residual level below which a pixel's weight stops growing
PEAKS = 3  # best-scoring shifts checked per hypothesis
SOFT_BITS = 6  # least certain bits also tried flipped, in every combination
MAX_ANGLE = 3.5  # degrees of rotation looked for
MIN_ANGLE = 0.25  # below this a rotation costs too little alignment to undo
# Second factor for verify: a recovered credential's stored pHash must be this close to the
# image's, turned back and padded back by `looks_like`. Measured (bench/watermark.py): a 10% crop
# per side comes back within 16 bits; 0.4% of unrelated image pairs fall within 18.
PHASH_BITS = 18
MIN_SIDE = 256  # below this there are too few tiles to read the payload reliably
KEY_CONTEXT = b"candor-watermark v2"


def key_for(secret: bytes) -> bytes:
    """The watermark key of an instance, derived from a secret only it holds (its signing key)."""
    return hmac.new(secret, KEY_CONTEXT, hashlib.sha256).digest()


def _prf(key: bytes, label: bytes, data: int, nbytes: int = 4) -> int:
    digest = hmac.new(key, label + data.to_bytes(8, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:nbytes], "big")


def _feistel(key: bytes, value: int, *, decrypt: bool = False) -> int:
    """A keyed permutation of 24-bit numbers (4 rounds on 12-bit halves)."""
    left, right = value >> 12, value & 0xFFF
    rounds = range(3, -1, -1) if decrypt else range(4)
    for r in rounds:
        if decrypt:
            left, right = right ^ (_prf(key, b"F%d" % r, left) & 0xFFF), left
        else:
            left, right = right, left ^ (_prf(key, b"F%d" % r, right) & 0xFFF)
    return (left << 12) | right


def _mac(key: bytes, cipher: int) -> int:
    return _prf(key, b"M", cipher, 8) >> (64 - MAC_BITS)


def payload_bits(watermark_id: int, key: bytes) -> np.ndarray:
    if not 0 < watermark_id <= MAX_ID:
        raise ValueError(f"A watermark id is 1..{MAX_ID}, not {watermark_id}.")
    cipher = _feistel(key, watermark_id)
    value = (cipher << MAC_BITS) | _mac(key, cipher)
    return np.array([(value >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)], bool)


def bits_to_id(bits, key: bytes) -> int | None:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bool(bit))
    cipher, tag = value >> MAC_BITS, value & ((1 << MAC_BITS) - 1)
    if not hmac.compare_digest(_mac(key, cipher).to_bytes(5, "big"), tag.to_bytes(5, "big")):
        return None
    watermark_id = _feistel(key, cipher, decrypt=True)
    return watermark_id or None


def can_carry(image: Image.Image) -> bool:
    return min(image.size) >= MIN_SIDE


@functools.lru_cache(maxsize=4)
def _layout(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Which bit each chip of the tile carries, and its ±1 sign: both secret, from the key."""
    rng = np.random.default_rng(int.from_bytes(hmac.new(key, b"layout", "sha256").digest(), "big"))
    bit_of_chip = rng.permutation(np.arange(CHIPS * CHIPS) % PAYLOAD_BITS).reshape(CHIPS, CHIPS)
    sign = rng.choice(np.array([-1.0, 1.0], np.float32), size=(CHIPS, CHIPS))
    return bit_of_chip, sign


@functools.lru_cache(maxsize=4)
def _templates(key: bytes) -> np.ndarray:
    """The conjugate spectrum of each bit's pixel template on the tile, (bits, TILE, TILE//2+1)."""
    bit_of_chip, sign = _layout(key)
    chips = (bit_of_chip[None] == np.arange(PAYLOAD_BITS)[:, None, None]) * sign[None]
    pixels = np.repeat(np.repeat(chips, CHIP, axis=1), CHIP, axis=2)
    return np.conj(np.fft.rfft2(pixels)).astype(np.complex64)


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


def _blur(gray: Image.Image, radius: int) -> np.ndarray:
    """Local mean over a (2r+1)² window (Pillow's box blur: fast, and good enough for a mask)."""
    return np.asarray(gray.filter(ImageFilter.BoxBlur(radius)), dtype=np.float32)


def embed(image: Image.Image, watermark_id: int, *, key: bytes) -> Image.Image:
    """The image with the id woven into its luma (RGB in, RGB out; same size)."""
    bits = payload_bits(watermark_id, key)
    bit_of_chip, sign = _layout(key)
    tile_chips = np.where(bits[bit_of_chip], 1.0, -1.0).astype(np.float32) * sign
    tile = np.repeat(np.repeat(tile_chips, CHIP, axis=0), CHIP, axis=1)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    pattern = np.tile(tile, (-(-h // TILE), -(-w // TILE)))[:h, :w]
    gray = image.convert("L")
    # Texture (mean absolute deviation around the local mean) hides a stronger mark.
    deviation = np.abs(_luma(gray) - _blur(gray, 3))
    spread = _blur(Image.fromarray(np.clip(deviation, 0, 255).astype(np.uint8)), 3)
    strength = np.minimum(STRENGTH + TEXTURE_GAIN * spread, MAX_STRENGTH)
    # Adding the same amount to R, G and B changes luma alone: grayscale copies keep all of it.
    marked = rgb + (strength * pattern)[:, :, None]
    return Image.fromarray(np.clip(np.rint(marked), 0, 255).astype(np.uint8), "RGB")


def _fold(gray: Image.Image) -> np.ndarray:
    """The high-passed luma summed onto one tile: a crop becomes a cyclic shift of it."""
    residual = np.clip(_luma(gray) - _blur(gray, 4), -CLIP, CLIP)
    # Busy areas hold more image noise than mark: weigh each pixel by the inverse of its local
    # residual level (an 8x-scaled 8-bit image, so Pillow's fast blur can average it).
    level = Image.fromarray(np.clip(np.abs(residual) * 8, 0, 255).astype(np.uint8))
    residual /= _blur(level, 6) / 8 + WEIGHT_FLOOR
    h, w = residual.shape
    padded = np.zeros((-(-h // TILE) * TILE, -(-w // TILE) * TILE), np.float32)
    padded[:h, :w] = residual
    return padded.reshape(padded.shape[0] // TILE, TILE, -1, TILE).sum(axis=(0, 2))


@dataclass(frozen=True)
class Found:
    watermark_id: int
    size: tuple[int, int]  # the size the image was read at
    mirrored: bool
    angle: float  # degrees the image was turned back by
    offset: tuple[int, int] = (0, 0)  # where the copy starts in the marked image, modulo TILE


def _near(a: int, b: int) -> bool:
    """Whether two cyclic shifts of the tile are less than a chip apart."""
    return abs((a - b + TILE // 2) % TILE - TILE // 2) < CHIP


def _read_fold(fold: np.ndarray, key: bytes) -> tuple[int, tuple[int, int]] | None:
    """Try the best-scoring shifts of one fold; the id and the (dy, dx) shift that carried it."""
    spectrum = np.fft.rfft2(fold)
    corr = np.fft.irfft2(spectrum[None] * _templates(key), s=(TILE, TILE))  # (bits, dy, dx)
    score = np.abs(corr).sum(axis=0)
    flat = np.argsort(score, axis=None)[::-1]
    tried: list[tuple[int, int]] = []
    for index in flat[: PEAKS * CHIP * CHIP * 4]:
        dy, dx = divmod(int(index), TILE)
        # Neighbouring shifts of one peak read the same bits: skip them.
        if any(_near(dy, y) and _near(dx, x) for y, x in tried):
            continue
        tried.append((dy, dx))
        found = _decode_soft(corr[:, dy, dx], key)
        if found is not None:
            return found, (dy, dx)
        if len(tried) == PEAKS:
            break
    return None


def _decode_soft(soft: np.ndarray, key: bytes) -> int | None:
    bits = soft > 0
    weakest = np.argsort(np.abs(soft))[:SOFT_BITS]
    for flips in itertools.product((False, True), repeat=SOFT_BITS):
        trial = bits.copy()
        trial[weakest[list(flips)]] ^= True
        found = bits_to_id(trial, key)
        if found is not None:
            return found
    return None


def _read_gray(gray: Image.Image, key: bytes) -> tuple[int, bool, tuple[int, int]] | None:
    """The id, whether the copy is mirrored, and where it starts in the marked image (left, top;
    modulo TILE)."""
    fold = _fold(gray)
    for mirrored in (False, True):
        # Mirroring the image mirrors its fold (up to a shift, which the search absorbs).
        result = _read_fold(fold[:, ::-1] if mirrored else fold, key)
        if result is not None:
            (dy, dx), width = result[1], gray.width
            left = (-dx - width) % TILE if mirrored else -dx % TILE
            return result[0], mirrored, (left, -dy % TILE)
    return None


def _angle(gray: Image.Image) -> float:
    """The rotation of the tile lattice, from the residual's autocorrelation: a repeated tile
    puts peaks at lags (TILE, 0) and (0, TILE), turned by the angle the image was turned by."""
    residual = np.clip(_luma(gray) - _blur(gray, 4), -CLIP, CLIP)
    residual -= residual.mean()
    power = np.abs(np.fft.rfft2(residual)) ** 2
    auto = np.fft.irfft2(power, s=residual.shape)
    h, w = auto.shape
    angles = np.deg2rad(np.arange(-MAX_ANGLE, MAX_ANGLE + 1e-9, 0.05))
    score = np.zeros(angles.shape)
    for lag in (TILE, 2 * TILE):
        if 2 * lag >= min(h, w):
            continue
        for vx, vy in ((np.cos(angles), np.sin(angles)), (-np.sin(angles), np.cos(angles))):
            x, y = lag * vx, lag * vy
            x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
            fx, fy = x - x0, y - y0
            score += (
                auto[y0 % h, x0 % w] * (1 - fx) * (1 - fy)
                + auto[y0 % h, (x0 + 1) % w] * fx * (1 - fy)
                + auto[(y0 + 1) % h, x0 % w] * (1 - fx) * fy
                + auto[(y0 + 1) % h, (x0 + 1) % w] * fx * fy
            )
    return float(np.rad2deg(angles[np.argmax(score)]))


def find(
    image: Image.Image, sizes: list[tuple[int, int]], *, key: bytes, as_is: bool = True
) -> Found | None:
    """Read the image as is (unless `as_is` is false: it cannot have been marked at this size),
    then scaled to each size in `sizes` (a resized copy reads only at the size it was marked
    at), then turned back by the angle its tile lattice shows."""
    gray = image.convert("L")
    own = [gray.size] if as_is else []
    for size in dict.fromkeys([*own, *sizes]):
        if min(size) >= MIN_SIDE:
            scaled = gray if size == gray.size else gray.resize(size, Image.Resampling.BILINEAR)
            result = _read_gray(scaled, key)
            if result is not None:
                return Found(result[0], size, result[1], 0.0, result[2])
    size = (own or sizes or [gray.size])[0]
    if min(size) < MIN_SIDE:
        return None
    scaled = gray if size == gray.size else gray.resize(size, Image.Resampling.BILINEAR)
    angle = _angle(scaled)
    if abs(angle) < MIN_ANGLE:
        return None
    result = _read_gray(scaled.rotate(angle, resample=Image.Resampling.BILINEAR), key)
    return Found(result[0], size, result[1], angle, result[2]) if result is not None else None


def detect(image: Image.Image, *, key: bytes) -> int | None:
    """The id in an image at its own size, or None when there is none (or it did not survive)."""
    found = find(image, [], key=key)
    return found.watermark_id if found else None


def detect_rescaled(image: Image.Image, sizes: list[tuple[int, int]], *, key: bytes) -> int | None:
    found = find(image, sizes, key=key)
    return found.watermark_id if found else None


def undone_phash(image: Image.Image, found: Found) -> str:
    """The image's pHash, turned back the way its mark was read: unmirrored, unrotated, at the
    size it was read at, and with the crop the mark's offset shows padded back (taken as even on
    both sides, since the mark shows only where the copy starts)."""
    if found.mirrored:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if found.angle:
        image = image.rotate(found.angle, resample=Image.Resampling.BILINEAR)
    gray = image.convert("L")
    if gray.size != found.size:
        gray = gray.resize(found.size, Image.Resampling.BILINEAR)
    left, top = found.offset
    # A crop moves a pHash a long way (a 10% crop per side, up to 30 bits); edge-padding the
    # margins back brings it within about half that of the original's.
    padded = np.pad(np.asarray(gray), ((top, top), (left, left)), mode="edge")
    return phash(Image.fromarray(padded))


def looks_like(image: Image.Image, found: Found, stored_phash: str) -> bool:
    """The second factor before a recovery: the image, turned back, is within PHASH_BITS of the
    credential's stored perceptual hash."""
    return bool(stored_phash) and hamming(undone_phash(image, found), stored_phash) <= PHASH_BITS
