"""Every image a user gives the Classify view ends as a result or a clear message, never a traceback.

Each file is built here from real ImageNet photos in ../shared/imagenet-dev. After every bad
file, the next good upload in the same session must still be classified, with no error left.
"""

from __future__ import annotations

import io
import mimetypes
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit import config

from mbv2.images import DECODE_BYTES_PER_PIXEL, MAX_PIXELS, MAX_SIDE, SUPPORTED

from conftest import DEV_IMAGES, app_test, encode, rss_bytes

ZEBRA = DEV_IMAGES / "n02391049_zebra.JPEG"  # 500×375, top-1 "zebra" with the shared weights
FOX = DEV_IMAGES / "n02120505_grey_fox.JPEG"  # the good upload after each bad one
VOLCANO = DEV_IMAGES / "n09472597_volcano.JPEG"
CORRUPT = (
    "looks truncated or corrupt and could not be decoded. "
    "Upload it again, or open it in an image viewer and save a fresh copy."
)
NOT_AN_IMAGE = f"is not an image that can be read. Choose a {SUPPORTED} image."
BOMB = (
    "claims more than 50,000,000 pixels (50 megapixels), the most this app decodes, "
    "so it was not opened. Resize it below that and try again."
)


def photo(path: Path = ZEBRA) -> Image.Image:
    return Image.open(path).convert("RGB")


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header claims width × height RGB pixels: a decompression bomb's opening."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def webp_claiming(width: int, height: int) -> bytes:
    """A 34-byte lossless RGBA WebP whose header claims width × height: 3 KB files like it decoded to GiBs."""
    data = bytearray(encode(Image.new("RGBA", (1, 1)), "WEBP", lossless=True))
    bits = data.index(b"VP8L") + 9  # after the chunk's name, its size and the lossless signature byte
    data[bits : bits + 4] = struct.pack("<I", (width - 1) | (height - 1) << 14 | 1 << 28)  # alpha, version 0
    return bytes(data)


def jpeg_claiming_more_rows(data: bytes, factor: int = 4) -> bytes:
    """The same JPEG with a frame header claiming `factor` times its rows: libjpeg pads them with grey."""
    frame = data.index(b"\xff\xc0") + 5  # baseline frame header: length (2 bytes), precision (1), then height
    height = struct.unpack(">H", data[frame : frame + 2])[0]
    return data[:frame] + struct.pack(">H", height * factor) + data[frame + 2 :]


def upload(at, name: str, data: bytes):
    """As a user: choose Upload if it is not chosen yet, then give the uploader one file."""
    if at.segmented_control(key="image_origin").value != "Upload":
        at.segmented_control(key="image_origin").set_value("Upload").run()
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return at.file_uploader(key="upload").set_value((name, data, mime)).run()


def top1(at) -> str:
    return at.subheader[0].value.split(" · ")[0]


def shown(at) -> tuple[str, str]:
    """The caption ("name, W×H") and media URL of the image the page shows as the user's."""
    image = at.get("image")[0]
    return image.captions[0], image.value[0]


def classified_cleanly(at, label: str) -> bool:
    return not at.exception and not at.error and top1(at) == label


@pytest.fixture(scope="module")
def at():
    """One Classify session for the module: each test uploads its own files, so order does not matter."""
    return app_test(view="classify").run()


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def scrambled(data: bytes) -> bytes:
    """The first bytes kept, the rest garbled: it says it is a JPEG, but it is not one any more."""
    return data[:20] + bytes(byte ^ 0x5A for byte in data[20:])


BAD_FILES: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "not-an-image": ("notes.jpg", lambda: b"Lecture 3: depthwise separable convolutions\n" * 20, NOT_AN_IMAGE),
    "truncated-jpeg": ("zebra.jpg", lambda: truncated(ZEBRA.read_bytes()), CORRUPT),
    "corrupt-bytes": ("zebra.jpg", lambda: scrambled(ZEBRA.read_bytes()), CORRUPT),
    "zero-bytes": ("empty.png", lambda: b"", f"is empty (0 bytes). Choose a {SUPPORTED} image."),
    # Above twice Pillow's limit Pillow itself refuses; between 1x and 2x it only warns, so the library must refuse.
    "bomb": ("huge.png", lambda: png_claiming(20_000, 20_000), BOMB),
    "bomb-below-2x": ("large.png", lambda: png_claiming(10_000, 10_000), BOMB),
    "bomb-webp-rgba": ("tiny.webp", lambda: webp_claiming(9000, 9000), BOMB),
    "jpeg-header-lies": ("zebra.jpg", lambda: jpeg_claiming_more_rows(ZEBRA.read_bytes()), CORRUPT),
}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name, make, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_gets_a_clear_message_and_the_next_upload_works(at, name, make, message):
    upload(at, name, make())
    assert not at.exception
    assert [error.value for error in at.error] == [f"{name} {message}"]
    assert not at.get("image") and not at.subheader  # no earlier image is shown as if it were this one

    upload(at, "fox.jpg", FOX.read_bytes())
    assert classified_cleanly(at, "grey fox")


def animated(image: Image.Image) -> bytes:
    """A two-frame GIF: the zebra, then a fox; the first frame is the picture."""
    fox = photo(FOX).resize(image.size)
    return encode(image, "GIF", save_all=True, append_images=[fox], duration=500, loop=0)


def sixteen_bit_png(image: Image.Image) -> bytes:
    wide = np.asarray(image.convert("L"), dtype=np.uint16) * 257  # the full 16-bit range, as scanners write
    return encode(Image.fromarray(wide), "PNG")


UNUSUAL = {  # name, the file made from the zebra photo, the mode Pillow opens it in
    "grayscale": ("zebra-gray.png", lambda im: encode(im.convert("L"), "PNG"), "L"),
    "rgba": ("zebra-rgba.png", lambda im: encode(im.convert("RGBA"), "PNG"), "RGBA"),
    "palette": ("zebra-palette.png", lambda im: encode(im.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "P"),
    "cmyk-jpeg": ("zebra-cmyk.jpg", lambda im: encode(im.convert("CMYK"), "JPEG", quality=95), "CMYK"),
    "16-bit-png": ("zebra-16bit.png", sixteen_bit_png, "I;16"),
    "animated-gif": ("zebra.gif", animated, "P"),
}


@pytest.mark.parametrize("name, make, mode", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_an_unusual_but_valid_image_is_classified(at, name, make, mode):
    data = make(photo())
    assert Image.open(io.BytesIO(data)).mode == mode  # the file really is what the test says
    upload(at, name, data)
    assert classified_cleanly(at, "zebra")
    assert shown(at)[0] == f"{name}, 500×375"


def test_a_very_large_photo_is_downscaled_and_classified(at):
    big = photo().resize((6000, 4500), Image.Resampling.BICUBIC)  # a 27-megapixel camera photo
    data = encode(big, "JPEG", quality=90)
    assert len(data) < st.get_option("server.maxUploadSize") * 1024 * 1024  # one a user can send
    upload(at, "camera-roll.jpg", data)
    assert classified_cleanly(at, "zebra")
    # Decoded at most MAX_SIDE on a side (3 MiB), not 6000×4500 (81 MiB) for the rest of the session.
    assert shown(at)[0] == f"camera-roll.jpg, {MAX_SIDE}×{MAX_SIDE * 3 // 4}"


def phone_photo(image: Image.Image, orientation: int, stored_turn: int, malformed: bool) -> bytes:
    """A JPEG as a phone writes it: the pixels stored sideways and an EXIF tag saying how to turn them."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Phone"  # Make, ASCII
    data = encode(image.rotate(stored_turn, expand=True), "JPEG", quality=95, exif=exif)
    if malformed:
        # Renumber Make (0x010F) as PageNumber (0x0129), a tag that must hold numbers: real cameras write
        # such tags, and ImageOps.exif_transpose raised struct.error re-encoding it.
        make_entry = b"\x01\x0f\x00\x02"  # tag id, then type ASCII, big-endian as Pillow writes EXIF
        assert data.count(make_entry) == 1
        data = data.replace(make_entry, b"\x01\x29\x00\x02")
    return data


@pytest.mark.parametrize(
    "orientation, stored_turn, malformed",
    [(6, 90, False), (8, -90, False), (6, 90, True)],
    ids=["orientation-6", "orientation-8", "orientation-6-malformed-tag"],
)
def test_an_exif_rotated_photo_is_shown_and_classified_upright(at, orientation, stored_turn, malformed):
    sideways = phone_photo(photo(), orientation, stored_turn, malformed)
    # The same decoded pixels turned back by hand, saved losslessly with no tag: what should be shown.
    reference = Image.open(io.BytesIO(sideways)).rotate(-stored_turn, expand=True)
    upload(at, "upright.png", encode(reference, "PNG"))
    upright_caption, upright_url = shown(at)
    upright_result = at.subheader[0].value

    upload(at, "phone.jpg", sideways)
    assert classified_cleanly(at, "zebra")
    assert at.subheader[0].value == upright_result  # same label and probability as the upright photo
    caption, url = shown(at)
    assert upright_caption == "upright.png, 500×375" and caption == "phone.jpg, 500×375"
    assert url == upright_url  # media URLs are content hashes: the very same upright pixels are shown


@pytest.fixture
def upload_limit_mb():
    """Streamlit's upload limit, temporarily set to 7 MB as if .streamlit/config.toml said so."""
    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 7)
    yield 7
    config.set_option("server.maxUploadSize", before)


def test_the_uploader_states_the_formats_and_the_configured_size_limit():
    at = app_test(view="classify").run()
    at.segmented_control(key="image_origin").set_value("Upload").run()
    limit = st.get_option("server.maxUploadSize")  # 20 from this project's .streamlit/config.toml
    assert at.file_uploader(key="upload").help == f"JPEG, PNG, WebP, BMP or GIF, up to {limit} MB and 50 megapixels"


def test_the_size_limit_is_read_from_the_config_not_written_in_the_code(upload_limit_mb):
    at = app_test(view="classify").run()
    at.segmented_control(key="image_origin").set_value("Upload").run()
    assert at.file_uploader(key="upload").help.endswith(f"up to {upload_limit_mb} MB and 50 megapixels")


def captions(at) -> list[str]:
    return [caption.value for caption in at.caption if caption.value.startswith("Showing ")]


def test_the_page_says_which_image_is_in_use_until_a_new_one_arrives():
    at = app_test(view="classify").run()
    assert shown(at)[0].startswith("cat, ") and not captions(at)  # the first sample, chosen by default

    at.segmented_control(key="image_origin").set_value("Upload").run()
    assert captions(at) == ["Showing cat until you upload a file."]
    assert shown(at)[0].startswith("cat, ") and at.subheader

    upload(at, "zebra.jpg", ZEBRA.read_bytes())
    assert classified_cleanly(at, "zebra") and not captions(at)

    upload(at, "notes.jpg", b"not a picture")  # a bad file is refused and never replaces the good one
    assert at.error and not at.get("image")
    at.file_uploader(key="upload").set_value(None).run()  # the user removes it
    assert captions(at) == ["Showing zebra.jpg until you upload a file."]
    assert classified_cleanly(at, "zebra")

    at.segmented_control(key="image_origin").set_value("Camera").run()
    assert captions(at) == ["Showing zebra.jpg until you take a picture."]
    at.camera_input(key="camera").set_value(("shot.jpg", VOLCANO.read_bytes(), "image/jpeg")).run()
    assert classified_cleanly(at, "volcano") and not captions(at)
    assert shown(at)[0].startswith("camera, ")


def test_memory_stays_bounded_when_small_files_claim_huge_images(at):
    """Three 34-byte WebPs claiming 81 megapixels each used to add about 2.1 GiB apiece."""
    upload(at, "fox.jpg", FOX.read_bytes())  # the session's decoding machinery, paid once
    baseline = rss_bytes()
    for side in (9000, 8999, 8998):  # different bytes each time, so no cache answers
        upload(at, "tiny.webp", webp_claiming(side, side))
        assert [error.value for error in at.error] == [f"tiny.webp {BOMB}"]
    growth = rss_bytes() - baseline
    assert growth < 50 * 2**20, f"the process grew by {growth / 2**20:.0f} MiB"
    upload(at, "fox.jpg", FOX.read_bytes())
    assert classified_cleanly(at, "grey fox")


DECODE_PEAK = """
import sys
from mbv2.images import open_image
def peak():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
before = peak()
image = open_image(sys.argv[1])
print(peak() - before, image.width, image.height)
"""


@pytest.mark.parametrize("mode, fill, fmt", [("RGBA", (10, 200, 30, 128), "WEBP"), ("I;16", 40_000, "PNG")],
                         ids=["webp-rgba", "png-16-bit"])
def test_the_largest_accepted_image_decodes_within_its_reserved_memory(tmp_path, mode, fill, fmt):
    """Just under the pixel cap, measured in a fresh process: the peak stays under what the decode reserves."""
    side = int(MAX_PIXELS**0.5) - 1
    path = tmp_path / f"large.{fmt.lower()}"
    path.write_bytes(encode(Image.new(mode, (side, side), fill), fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert path.stat().st_size < 200_000  # small to send, large to decode
    finished = subprocess.run([sys.executable, "-c", DECODE_PEAK, str(path)], capture_output=True, text=True)
    growth, width, height = map(int, finished.stdout.split())
    assert (width, height) == (MAX_SIDE, MAX_SIDE)
    assert growth <= MAX_PIXELS * DECODE_BYTES_PER_PIXEL, f"decoding took {growth / 2**20:.0f} MiB"


def test_an_upload_name_is_shown_as_typed_not_as_markdown(at):
    name = "**bold** [link](http://example.com) `x`.jpg"
    escaped = r"\*\*bold\*\* \[link\](http://example.com) \`x\`.jpg"
    upload(at, name, FOX.read_bytes())
    assert classified_cleanly(at, "grey fox")
    assert shown(at)[0] == f"{escaped}, 500×375"
    upload(at, name, b"not a picture")
    assert [error.value for error in at.error] == [f"{escaped} {NOT_AN_IMAGE}"]
    upload(at, "fox.jpg", FOX.read_bytes())
    assert classified_cleanly(at, "grey fox")
