"""An invisible watermark that carries a credential's id, so the credential can be found again
after a platform strips the metadata. No Django imports.

The method is DWT-DCT-SVD (the scheme invisible-watermark calls `dwtDctSvd`), written here with
numpy and PyWavelets so no OpenCV (and its system GL libraries) is needed, and vectorised over all
blocks at once: each chroma channel (Cb, Cr) is split by a one-level Haar DWT; its low band is cut
into 4x4 blocks; each block's DCT is decomposed by SVD and the largest singular value is quantised
so that its remainder says 0 or 1. The 32-bit payload (a 24-bit id + an 8-bit CRC) repeats over all
blocks and is read back by averaging, so a few damaged blocks do not matter; a failed read gives
noise, which the checksum rejects. bench/watermark.py measures it against JPEG, resizing and
cropping.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

ID_BITS = 24
CRC_BITS = 8
PAYLOAD_BITS = ID_BITS + CRC_BITS
MAX_ID = (1 << ID_BITS) - 1
BLOCK = 4
STRENGTH = 48.0  # quantisation step of the largest singular value (48 survives JPEG q50)
# Below this size there are too few blocks to repeat the payload reliably.
MIN_SIDE = 256

_k = np.arange(BLOCK)
_DCT = np.sqrt(2 / BLOCK) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * BLOCK))
_DCT[0] /= np.sqrt(2)


def crc8(value: int) -> int:
    """CRC-8 (polynomial 0x07) of the id's three bytes, xored so that all-zero bits never pass."""
    crc = 0
    for byte in value.to_bytes(3, "big"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0xA5


def payload_bits(watermark_id: int) -> list[int]:
    if not 0 < watermark_id <= MAX_ID:
        raise ValueError(f"A watermark id is 1..{MAX_ID}, not {watermark_id}.")
    value = (watermark_id << CRC_BITS) | crc8(watermark_id)
    return [(value >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]


def bits_to_id(bits) -> int | None:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bool(bit))
    watermark_id, check = value >> CRC_BITS, value & 0xFF
    if watermark_id == 0 or crc8(watermark_id) != check:
        return None
    return watermark_id


def can_carry(image: Image.Image) -> bool:
    return min(image.size) >= MIN_SIDE


def _blocks(band: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    rows, cols = band.shape[0] // BLOCK, band.shape[1] // BLOCK
    cut = band[: rows * BLOCK, : cols * BLOCK]
    return cut.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK, BLOCK), (
        rows,
        cols,
    )


def _unblocks(blocks: np.ndarray, shape: tuple[int, int], band: np.ndarray) -> np.ndarray:
    rows, cols = shape
    out = band.copy()
    out[: rows * BLOCK, : cols * BLOCK] = (
        blocks.reshape(rows, cols, BLOCK, BLOCK).swapaxes(1, 2).reshape(rows * BLOCK, cols * BLOCK)
    )
    return out


def _singular_values(band: np.ndarray):
    blocks, shape = _blocks(band)
    dct = _DCT @ blocks @ _DCT.T
    u, s, vt = np.linalg.svd(dct)
    return u, s, vt, shape


def embed(image: Image.Image, watermark_id: int) -> Image.Image:
    """The image with the id woven into its colour (RGB in, RGB out; same size)."""
    import pywt

    bits = np.array(payload_bits(watermark_id), dtype=np.float64)
    ycc = np.asarray(image.convert("RGB").convert("YCbCr"), dtype=np.float64).copy()
    for channel in (1, 2):
        low, details = pywt.dwt2(ycc[:, :, channel], "haar")
        u, s, vt, shape = _singular_values(low)
        wanted = np.resize(bits, s.shape[0])
        s[:, 0] = (np.floor(s[:, 0] / STRENGTH) + 0.25 + 0.5 * wanted) * STRENGTH
        dct = u @ (s[:, :, None] * vt)
        blocks = _DCT.T @ dct @ _DCT
        low = _unblocks(blocks, shape, low)
        restored = pywt.idwt2((low, details), "haar")
        ycc[:, :, channel] = restored[: ycc.shape[0], : ycc.shape[1]]
    pixels = np.clip(np.rint(ycc), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "YCbCr").convert("RGB")


def read_bits(image: Image.Image) -> np.ndarray:
    """Each payload bit's soft vote over every block of both chroma channels: above 0 means 1.

    A block votes by where its singular value sits between the two quantisation points (0.25
    and 0.75 of a step), so blocks that JPEG pushed near the middle count for little."""
    import pywt

    ycc = np.asarray(image.convert("RGB").convert("YCbCr"), dtype=np.float64)
    votes = np.zeros(PAYLOAD_BITS)
    counts = np.zeros(PAYLOAD_BITS)
    for channel in (1, 2):
        low, _ = pywt.dwt2(ycc[:, :, channel], "haar")
        _, s, _, _ = _singular_values(low)
        bit_of_block = np.arange(s.shape[0]) % PAYLOAD_BITS
        vote = -np.sin(2 * np.pi * (s[:, 0] % STRENGTH) / STRENGTH)
        votes += np.bincount(bit_of_block, weights=vote, minlength=PAYLOAD_BITS)
        counts += np.bincount(bit_of_block, minlength=PAYLOAD_BITS)
    return votes / np.maximum(counts, 1)


def detect(image: Image.Image) -> int | None:
    """The id in an image, or None when there is none (or it did not survive)."""
    if not can_carry(image):
        return None
    return bits_to_id(read_bits(image) > 0)


def detect_rescaled(image: Image.Image, sizes: list[tuple[int, int]]) -> int | None:
    """Also try the image scaled back to sizes Candor makes: a resized copy only decodes at the
    size it was marked at."""
    found = detect(image)
    if found is not None:
        return found
    for size in sizes:
        if size != image.size:
            found = detect(image.resize(size, Image.Resampling.LANCZOS))
            if found is not None:
                return found
    return None
