"""An invisible watermark that carries a credential's id, so the credential can be found again
after a platform strips the metadata. No Django imports.

The method is DWT-DCT-SVD (the scheme invisible-watermark calls `dwtDctSvd`), written here with
numpy alone, so no OpenCV (and its system GL libraries) is needed, and vectorised over all blocks
at once: each chroma channel (Cb, Cr) is split by a one-level Haar DWT; its low band is cut
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
STRENGTH = 56.0  # quantisation step of the largest singular value: survives JPEG q50
# Below this size there are too few blocks to repeat the payload reliably.
MIN_SIDE = 256

_k = np.arange(BLOCK)
_DCT = np.sqrt(2 / BLOCK) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * BLOCK))
_DCT[0] /= np.sqrt(2)
_DCT = _DCT.astype(np.float32)


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
    blocks = cut.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK, BLOCK)
    return blocks, (rows, cols)


def _unblocks(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    return (
        blocks.reshape(rows, cols, BLOCK, BLOCK).swapaxes(1, 2).reshape(rows * BLOCK, cols * BLOCK)
    )


def _haar_low(channel: np.ndarray) -> np.ndarray:
    """The low band of a one-level orthonormal Haar DWT (what pywt.dwt2(..., "haar")[0] gives)."""
    h, w = channel.shape[0] // 2 * 2, channel.shape[1] // 2 * 2
    c = channel[:h, :w]
    return (c[0::2, 0::2] + c[0::2, 1::2] + c[1::2, 0::2] + c[1::2, 1::2]) / 2


def _top_singular(dct: np.ndarray):
    """Largest singular value and its vectors of every 4x4 block, from the eigen-decomposition
    of DᵀD: a fraction of the cost of a full batched SVD."""
    gram = np.swapaxes(dct, -1, -2) @ dct
    values, vectors = np.linalg.eigh(gram)
    s0 = np.sqrt(np.maximum(values[:, -1], 0.0))
    v0 = vectors[:, :, -1]
    u0 = (dct @ v0[:, :, None])[:, :, 0] / np.maximum(s0, 1e-9)[:, None]
    return s0, u0, v0


def embed(image: Image.Image, watermark_id: int) -> Image.Image:
    """The image with the id woven into its colour (RGB in, RGB out; same size)."""
    bits = np.array(payload_bits(watermark_id), dtype=np.float32)
    # float32 throughout: half the memory traffic of float64, and far more precision than the
    # 8-bit pixels that come out.
    ycc = np.asarray(image.convert("RGB").convert("YCbCr"), dtype=np.float32).copy()
    for channel in (1, 2):
        low = _haar_low(ycc[:, :, channel])
        blocks, shape = _blocks(low)
        dct = _DCT @ blocks @ _DCT.T
        s0, u0, v0 = _top_singular(dct)
        wanted = np.resize(bits, s0.shape[0])
        target = (np.floor(s0 / STRENGTH) + 0.25 + 0.5 * wanted) * STRENGTH
        # Change only the largest singular value: D + (s0' - s0) u0 v0ᵀ.
        delta_dct = (target - s0)[:, None, None] * u0[:, :, None] * v0[:, None, :]
        delta_low = _unblocks(_DCT.T @ delta_dct @ _DCT, shape)
        # A change of the Haar low band by d moves each pixel of its 2x2 square by d/2.
        spread = np.repeat(np.repeat(delta_low / 2, 2, axis=0), 2, axis=1)
        ycc[: spread.shape[0], : spread.shape[1], channel] += spread
    pixels = np.clip(np.rint(ycc), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "YCbCr").convert("RGB")


def read_bits(image: Image.Image) -> np.ndarray:
    """Each payload bit's soft vote over every block of both chroma channels: above 0 means 1.

    A block votes by where its singular value sits between the two quantisation points (0.25
    and 0.75 of a step), so blocks that JPEG pushed near the middle count for little."""
    ycc = np.asarray(image.convert("RGB").convert("YCbCr"), dtype=np.float32)
    votes = np.zeros(PAYLOAD_BITS)
    counts = np.zeros(PAYLOAD_BITS)
    for channel in (1, 2):
        blocks, _ = _blocks(_haar_low(ycc[:, :, channel]))
        s0, _, _ = _top_singular(_DCT @ blocks @ _DCT.T)
        bit_of_block = np.arange(s0.shape[0]) % PAYLOAD_BITS
        vote = -np.sin(2 * np.pi * (s0 % STRENGTH) / STRENGTH)
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
