"""The two ways MobileNetV2 weights expect images to be cropped, resized and normalised.

- torchvision: resize the shorter side to `resize_size`, then take a centred square of
  `crop_size` (`weights.transforms()` does exactly this).
- TensorFlow-slim: keep the central `central_crop_fraction` of each side, then resize the
  result to `crop_size` x `crop_size`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF


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
        InterpolationMode(self.interpolation)  # fails early on a misspelt mode

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
        mode = InterpolationMode(self.interpolation)
        if self.resize_size is not None:
            image = TF.resize(image, [self.resize_size], interpolation=mode, antialias=True)
            return TF.center_crop(image, [self.crop_size])
        width, height = image.size
        keep_w = round(width * self.central_crop_fraction)
        keep_h = round(height * self.central_crop_fraction)
        image = TF.center_crop(image, [keep_h, keep_w])
        return TF.resize(image, [self.crop_size, self.crop_size], interpolation=mode, antialias=True)

    def normalise(self, image: Image.Image) -> torch.Tensor:
        """A cropped image as a normalised (3, H, W) float tensor."""
        return self.normalise_pixels(TF.pil_to_tensor(image))

    def normalise_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """8-bit (3, H, W) pixels, or a (N, 3, H, W) batch of them, normalised: the same values either way."""
        tensor = TF.to_dtype(pixels, torch.float32, scale=True)
        return TF.normalize(tensor, list(self.mean), list(self.std))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.normalise(self.crop(image))
