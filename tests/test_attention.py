"""Grad-CAM maps (the grad-cam package) on real ImageNet photos with the shared weights."""

import numpy as np
import pytest

from conftest import DEV_IMAGES
from mbv2.attention import class_activation_map
from mbv2.classify import pretrained_model
from mbv2.fast import fast_model
from mbv2.images import open_image
from mbv2.inherit import inherit
from mbv2.spec import ArchSpec

ZEBRA = DEV_IMAGES / "n02391049_zebra.JPEG"  # one zebra filling the middle of the frame


@pytest.fixture(scope="module")
def zebra():
    return open_image(ZEBRA.read_bytes(), name=ZEBRA.name)


def _centre_share(heat: np.ndarray) -> float:
    """Share of the map's mass in the central half (by side) of the image: a quarter of its area."""
    height, width = heat.shape
    centre = heat[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4]
    return float(centre.sum() / heat.sum())


def test_the_map_of_an_easy_photo_covers_the_object(tf_source, zebra):
    attention = class_activation_map(fast_model(pretrained_model(tf_source)), tf_source, zebra)
    assert attention.label == "zebra"
    assert attention.heat.shape == (attention.seen.height, attention.seen.width) == (224, 224)
    assert np.isfinite(attention.heat).all() and attention.heat.min() >= 0 and attention.heat.max() <= 1
    peak_y, peak_x = np.unravel_index(attention.heat.argmax(), attention.heat.shape)
    assert 56 <= peak_y < 168 and 56 <= peak_x < 168  # the peak lies in the central quarter of the area
    assert _centre_share(attention.heat) > 0.4  # uniform heat would put 0.25 there
    overlay = attention.overlay()
    assert overlay.size == attention.seen.size and overlay.mode == "RGB"


def test_fast_and_eager_paths_give_the_same_map_and_leave_the_weights_untouched(tf_source, tf_model, zebra):
    eager = class_activation_map(tf_model, tf_source, zebra)
    fast = class_activation_map(fast_model(tf_model), tf_source, zebra)
    assert eager.class_index == fast.class_index
    assert np.abs(eager.heat - fast.heat).max() < 1e-3
    assert all(parameter.grad is None and parameter.requires_grad for parameter in tf_model.parameters())


def test_an_edited_network_gets_a_map_at_its_own_resolution_and_for_a_chosen_class(tf_source, tf_model, zebra):
    edited = inherit(tf_model, ArchSpec(resolution=160, padding="tf_same")).model
    attention = class_activation_map(edited, tf_source, zebra, class_index=tf_source.labels.index("zebra"))
    assert attention.heat.shape == (160, 160) and attention.label == "zebra"
    assert np.isfinite(attention.heat).all() and _centre_share(attention.heat) > 0.4
