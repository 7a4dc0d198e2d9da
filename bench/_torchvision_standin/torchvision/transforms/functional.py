"""The functional helpers that the official scripts (crop) and transformers' image utilities
(pil_to_tensor, imported when it sees a torchvision) name, for PIL images."""

from __future__ import annotations


def crop(image, top: int, left: int, height: int, width: int):
    return image.crop((left, top, left + width, top + height))


def pil_to_tensor(image):
    """A PIL image as a uint8 tensor, channels first (no scaling)."""
    import numpy as np
    import torch

    array = np.array(image, copy=True)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
