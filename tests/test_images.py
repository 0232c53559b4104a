"""Any image mode a person might upload becomes upright 8-bit RGB and classifies the same."""

import numpy as np
import pytest
from PIL import Image

from mbv2.classify import classify
from mbv2.errors import ImageError
from mbv2.images import MAX_SIDE, open_image

from conftest import DEV_IMAGES, encode

ZEBRA = DEV_IMAGES / "n02391049_zebra.JPEG"


@pytest.fixture(scope="module")
def zebra() -> Image.Image:
    return Image.open(ZEBRA).convert("RGB")


def sixteen_bit_gray(image: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)


@pytest.mark.parametrize(
    "make, fmt",
    [
        (lambda im: im.convert("RGBA"), "PNG"),
        (lambda im: im.convert("L"), "PNG"),
        (lambda im: im.convert("LA"), "PNG"),
        (lambda im: im.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        (lambda im: im.convert("CMYK"), "JPEG"),
        (sixteen_bit_gray, "PNG"),
        (lambda im: im, "WEBP"),
        (lambda im: im, "BMP"),
    ],
    ids=["rgba", "gray", "gray-alpha", "palette", "cmyk", "16-bit", "webp", "bmp"],
)
def test_every_mode_classifies_as_zebra(make, fmt, zebra, tf_source, tf_model):
    image = open_image(encode(make(zebra), fmt))
    assert image.mode == "RGB" and image.size == zebra.size
    assert classify(tf_model, tf_source, image)[0].label == "zebra"


def test_sixteen_bit_is_scaled_not_clipped(zebra):
    gray = np.asarray(open_image(encode(sixteen_bit_gray(zebra), "PNG")))[..., 0]
    assert np.abs(gray.astype(int) - np.asarray(zebra.convert("L"), dtype=int)).max() <= 1


def test_exif_rotation_is_applied(zebra, tf_source, tf_model):
    # Stored sideways, with EXIF saying "rotate 90° clockwise to view": orientation 6.
    sideways = zebra.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = open_image(encode(sideways, "JPEG", exif=exif))
    assert upright.size == zebra.size
    assert classify(tf_model, tf_source, upright)[0].label == "zebra"


def test_transparent_pixels_become_white():
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert open_image(encode(clear, "PNG")).getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (16, 16), color) for color in ((0, 0, 255), (255, 0, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert open_image(data).getpixel((0, 0)) == (0, 0, 255)


def test_large_photos_are_downscaled(zebra):
    huge = zebra.resize((4000, 3000))
    assert max(open_image(encode(huge, "JPEG")).size) == MAX_SIDE


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "is empty"),
        (b"%PDF-1.4 definitely not a picture", "is not an image"),
        # Pillow would pass an EPS to Ghostscript; only the five formats named are decoded at all.
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n", "is not an image"),
    ],
)
def test_bad_files_get_clear_messages(data, message):
    with pytest.raises(ImageError, match=message):
        open_image(data)


def test_formats_outside_the_five_are_refused(zebra):
    with pytest.raises(ImageError, match="Choose a JPEG, PNG, WebP, BMP or GIF image"):
        open_image(encode(zebra, "TIFF"))


def test_truncated_file_is_reported(zebra):
    data = encode(zebra, "PNG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        open_image(data[: len(data) // 2])
