"""The two ways MobileNetV2 weights expect images to be cropped, resized and normalised.

- torchvision: resize the shorter side to `resize_size`, then take a centred square of
  `crop_size` (`weights.transforms()` does exactly this).
- TensorFlow-slim: keep the central `central_crop_fraction` of each side, then resize the
  result to `crop_size` x `crop_size`.

Pillow and torch only, computing exactly what torchvision's transforms compute on a PIL image
(tests/test_images.py compares them): importing torchvision costs a command about 1.3 s, and 0.5 s
more at exit, which `mbv2 evaluate` and `mbv2 classify` do not need to pay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image, ImageOps

# torchvision's interpolation modes, and the Pillow filter torchvision resizes a PIL image with for each.
INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Preprocessing:
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_size: int | None = None
    central_crop_fraction: float | None = None
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if (self.resize_size is None) == (self.central_crop_fraction is None):
            raise ValueError("Preprocessing needs exactly one of resize_size and central_crop_fraction.")
        if self.interpolation not in INTERPOLATIONS:  # fails early on a misspelt mode
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}.")

    def describe(self) -> str:
        if self.resize_size is not None:
            geometry = f"resize shorter side to {self.resize_size}, centre crop {self.crop_size}"
        else:
            geometry = f"keep central {self.central_crop_fraction:.1%}, resize to {self.crop_size}"
        return f"{geometry}; normalise with mean {list(self.mean)}, std {list(self.std)}"

    def at_resolution(self, resolution: int) -> Preprocessing:
        """The same recipe for a network fed `resolution` pixels: the crop, and any resize, scale with it."""
        if resolution == self.crop_size:
            return self
        resize = None if self.resize_size is None else round(self.resize_size * resolution / self.crop_size)
        return replace(self, crop_size=resolution, resize_size=resize)

    def crop(self, image: Image.Image) -> Image.Image:
        """The RGB image exactly as the model sees it, before normalisation."""
        resample = INTERPOLATIONS[self.interpolation]
        if self.resize_size is not None:
            return _center_crop(_resize_shorter_side(image, self.resize_size, resample), self.crop_size, self.crop_size)
        width, height = image.size
        keep_w = round(width * self.central_crop_fraction)
        keep_h = round(height * self.central_crop_fraction)
        image = _center_crop(image, keep_h, keep_w)
        return _resize(image, self.crop_size, self.crop_size, resample)

    def normalise(self, image: Image.Image) -> torch.Tensor:
        """A cropped image as a normalised (3, H, W) float tensor."""
        return self.normalise_pixels(pixels(image))

    def normalise_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """8-bit (3, H, W) pixels, or a (N, 3, H, W) batch of them, normalised: the same values either way."""
        tensor = pixels.to(torch.float32).mul_(1.0 / 255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return tensor.sub_(mean).div_(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.normalise(self.crop(image))


def pixels(image: Image.Image) -> torch.Tensor:
    """An image's 8-bit pixels as a (channels, H, W) tensor."""
    array = np.array(image, dtype=np.uint8)
    return torch.from_numpy(array.reshape(image.height, image.width, -1)).permute(2, 0, 1)


def _resize(image: Image.Image, height: int, width: int, resample: Image.Resampling) -> Image.Image:
    if (image.height, image.width) == (height, width):
        return image
    return image.resize((width, height), resample=resample)  # Pillow always antialiases


def _resize_shorter_side(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """The shorter side to `size`, the longer one in proportion, rounded down (as torchvision does)."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
    return _resize(image, new_height, new_width, resample)


def _center_crop(image: Image.Image, height: int, width: int) -> Image.Image:
    """The centred `height` x `width` part, padded with black first where the image is smaller."""
    if height > image.height or width > image.width:
        border = (
            (width - image.width) // 2 if width > image.width else 0,
            (height - image.height) // 2 if height > image.height else 0,
            (width - image.width + 1) // 2 if width > image.width else 0,
            (height - image.height + 1) // 2 if height > image.height else 0,
        )
        image = ImageOps.expand(image, border=border, fill=(0,) * len(image.getbands()))
        if (image.height, image.width) == (height, width):
            return image
    top = int(round((image.height - height) / 2.0))
    left = int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))
