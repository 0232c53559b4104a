"""Turn whatever a person uploads into an upright 8-bit RGB image, or say why not.

A 3 KB lossless WebP can claim 9000 x 9000 pixels, so memory is bounded before decoding:
- an image that claims more than MAX_PIXELS is refused from its header;
- JPEGs are decoded at reduced size (draft mode); every image is downscaled to MAX_SIDE in
  its own mode, before any conversion (16-bit to 8-bit, transparency onto white) runs;
- each decode reserves its estimated peak in the process's budget (`mbv2.budget`), so many
  uploads at once queue instead of adding up;
- an image whose data ends before its declared size is refused, not padded with grey.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from mbv2.budget import PROCESS_BUDGET
from mbv2.errors import ImageError

MAX_SIDE = 1024  # far above the model's 224, small enough to keep a decoded image ~3 MiB
# 50 megapixels: a 48 MP phone photo passes; a decode at full size stays within 1 GB (DECODE_BYTES_PER_PIXEL).
MAX_PIXELS = 50_000_000
# Measured 17: Pillow's WebP decoder holds four full RGBA canvases; PNG and JPEG need far less.
DECODE_BYTES_PER_PIXEL = 20
# libjpeg fills the rows after a JPEG's data runs out with zero coefficients, i.e. this grey, and only warns.
_JPEG_FILL = 128
SUPPORTED = "JPEG, PNG, WebP, BMP or GIF"
# Pillow's names for them (its JPEG opener also takes the multi-picture JPEGs phones write). Anything
# else is refused before decoding: Pillow hands EPS to Ghostscript, which an upload must never reach.
PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")

# The transpose that undoes each EXIF orientation (the values phones write instead of rotating pixels).
_UNDO_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# How each supported format begins, to tell a damaged image from a file that is no image at all.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def open_image(source: bytes | str | os.PathLike[str], name: str = "The file") -> Image.Image:
    """Decode `source` (raw bytes or a path) into an upright RGB image of at most MAX_SIDE."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not data:
        raise ImageError(f"{name} is empty (0 bytes). Choose a {SUPPORTED} image.")
    try:
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
            # Checked here, below Pillow's own limit, which refuses above twice 89 Mpx but only warns below.
            if image.width * image.height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{image.width}x{image.height}")
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))
            with PROCESS_BUDGET.reserve(image.width * image.height * DECODE_BYTES_PER_PIXEL):
                image.load()
                if image.format == "JPEG" and _jpeg_data_ends_early(image):
                    raise _corrupt(name)
                # In its own mode, before any conversion; no reducing_gap: Image.reduce refuses 16-bit modes.
                image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=None)
            rgb = upright(to_rgb(image), image.getexif().get(ExifTags.Base.Orientation, 1))
    except Image.DecompressionBombError:
        raise ImageError(
            f"{name} claims more than {MAX_PIXELS:,} pixels ({MAX_PIXELS // 10**6} megapixels), the most this app "
            "decodes, so it was not opened. Resize it below that and try again."
        ) from None
    except UnidentifiedImageError:
        if not _looks_like_image(data):
            raise ImageError(f"{name} is not an image that can be read. Choose a {SUPPORTED} image.") from None
        raise _corrupt(name) from None  # e.g. a JPEG whose header is damaged: say so, not "not an image"
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise _corrupt(name) from error
    return rgb


def upright(image: Image.Image, orientation: object) -> Image.Image:
    """`image` turned the way its EXIF orientation says it was taken.

    Not ImageOps.exif_transpose: that also rewrites the EXIF block, and raises struct.error on
    a malformed tag that has nothing to do with orientation. Only the pixels are kept here.
    """
    method = _UNDO_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


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


def _jpeg_data_ends_early(image: Image.Image) -> bool:
    """Whether the bottom rows are libjpeg's fill: a band of exactly mid-grey rows (two or more, as an
    MCU row is 8-16 pixels, 1-2 after draft scaling) under rows that are not. A JPEG whose header claims
    more rows than its data holds decodes like that without an error."""
    rows = np.asarray(image).reshape(image.height, -1)
    filled = np.all(rows == _JPEG_FILL, axis=1)
    band = int(np.argmin(filled[::-1])) if not filled.all() else 0
    return band >= 2


def _corrupt(name: str) -> ImageError:
    return ImageError(
        f"{name} looks truncated or corrupt and could not be decoded. "
        "Upload it again, or open it in an image viewer and save a fresh copy."
    )


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
