"""The PIL transforms diffusers' DreamBooth scripts use, with torchvision's semantics."""

from __future__ import annotations

import enum

import numpy as np
import torch
from PIL import Image

from . import functional

__all__ = [
    "CenterCrop",
    "Compose",
    "InterpolationMode",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ToTensor",
    "functional",
]


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL = {
    InterpolationMode.NEAREST: Image.Resampling.NEAREST,
    InterpolationMode.NEAREST_EXACT: Image.Resampling.NEAREST,
    InterpolationMode.BILINEAR: Image.Resampling.BILINEAR,
    InterpolationMode.BICUBIC: Image.Resampling.BICUBIC,
    InterpolationMode.BOX: Image.Resampling.BOX,
    InterpolationMode.HAMMING: Image.Resampling.HAMMING,
    InterpolationMode.LANCZOS: Image.Resampling.LANCZOS,
}


def _pair(size) -> tuple[int, int]:
    """(height, width) from an int or a sequence."""
    if isinstance(size, int):
        return size, size
    size = tuple(size)
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, value):
        for transform in self.transforms:
            value = transform(value)
        return value


class Resize:
    """An int resizes the shorter side to it (keeping the aspect ratio); a pair is (h, w)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
        self.size = size
        self.interpolation = interpolation or InterpolationMode.BILINEAR

    def __call__(self, image):
        width, height = image.size
        if isinstance(self.size, int) or len(tuple(self.size)) == 1:
            short = self.size if isinstance(self.size, int) else next(iter(self.size))
            if width <= height:
                new = (short, int(short * height / width))
            else:
                new = (int(short * width / height), short)
        else:
            new_height, new_width = _pair(self.size)
            new = (new_width, new_height)
        if new == (width, height):
            return image
        return image.resize(new, _PIL[self.interpolation])


class CenterCrop:
    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, image):
        height, width = self.size
        top = round((image.height - height) / 2.0)
        left = round((image.width - width) / 2.0)
        return functional.crop(image, top, left, height, width)


class RandomCrop:
    def __init__(self, size):
        self.size = _pair(size)

    @staticmethod
    def get_params(image, output_size) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop, drawn from torch's global generator."""
        height, width = output_size
        if image.height == height and image.width == width:
            return 0, 0, height, width
        top = int(torch.randint(0, image.height - height + 1, size=(1,)).item())
        left = int(torch.randint(0, image.width - width + 1, size=(1,)).item())
        return top, left, height, width

    def __call__(self, image):
        return functional.crop(image, *self.get_params(image, self.size))


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image):
        if torch.rand(1).item() < self.p:
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image


class ToTensor:
    """A PIL image to a float tensor, channels first, in [0, 1]."""

    def __call__(self, image):
        array = np.asarray(image, dtype=np.float32) / 255.0
        if array.ndim == 2:
            array = array[:, :, None]
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class Normalize:
    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, tensor):
        return (tensor - self.mean.to(tensor.dtype)) / self.std.to(tensor.dtype)
