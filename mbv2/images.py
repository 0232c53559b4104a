"""Turn whatever a person uploads into an upright 8-bit RGB image, or say why not.

Pillow's decompression-bomb limit stays on (a 100-byte PNG can claim 50,000 x 50,000
pixels); huge photos are decoded at reduced size where the format allows (JPEG draft
mode) and downscaled, so memory stays bounded whatever arrives.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mbv2.errors import ImageError

MAX_SIDE = 1024  # far above the model's 224, small enough to keep a decoded image ~3 MiB
SUPPORTED = "JPEG, PNG, WebP, BMP or GIF"


def open_image(source: bytes | str | os.PathLike[str], name: str = "The file") -> Image.Image:
    """Decode `source` (raw bytes or a path) into an upright RGB image of at most MAX_SIDE."""
    data = source if isinstance(source, bytes) else open(source, "rb").read()
    if not data:
        raise ImageError(f"{name} is empty (0 bytes). Choose a {SUPPORTED} image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))
                upright = ImageOps.exif_transpose(image)
                rgb = to_rgb(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{name} claims more than {Image.MAX_IMAGE_PIXELS:,} pixels, Pillow's safety limit against "
            "decompression bombs, so it was not opened. Resize it below that and try again."
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image that can be read. Choose a {SUPPORTED} image.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"{name} looks truncated or corrupt and could not be decoded ({error}).") from None
    rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: transparency goes onto white, 16-bit is scaled, not clipped."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode != "F" else max(float(values.max()), 1e-12)
        image = Image.fromarray(np.clip(values / full_scale * 255.0, 0, 255).round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
