"""A 64-bit DCT perceptual hash: near-identical images have hashes a few bits apart."""

from __future__ import annotations

import numpy as np
from PIL import Image

_N = 32
_K = np.arange(_N)
_BASIS = np.cos(np.pi * (2 * _K[None, :] + 1) * _K[:, None] / (2 * _N))


def phash(image: Image.Image) -> str:
    gray = np.asarray(
        image.convert("L").resize((_N, _N), Image.Resampling.LANCZOS), dtype=np.float64
    )
    low = (_BASIS @ gray @ _BASIS.T)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
