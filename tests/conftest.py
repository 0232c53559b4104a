"""Shared fixtures: the real weights and ImageNet images in ../shared/ (never copied here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mbv2.classify import pretrained_model
from mbv2.weights import WeightSource, local_source

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MBV2_SHARED", ROOT.parent / "shared"))
WEIGHTS_JSON = SHARED / "weights" / "mobilenet_v2_1.0_224_tf2_ptq.json"
DEV_IMAGES = SHARED / "imagenet-dev"
SAMPLE_IMAGES = ROOT / "sample_images"


def dev_images() -> list[tuple[Path, str]]:
    """(path, true label) for the 50 labelled ImageNet images; names are `<synset>_<label>`."""
    return [
        (path, path.stem.split("_", 1)[1].replace("_", " "))
        for path in sorted(DEV_IMAGES.glob("*.JPEG"))
    ]


@pytest.fixture(scope="session")
def tf_source() -> WeightSource:
    if not WEIGHTS_JSON.is_file():
        pytest.fail(f"The shared weights are missing: {WEIGHTS_JSON}")
    return local_source(WEIGHTS_JSON)


@pytest.fixture(scope="session")
def tf_model(tf_source):
    return pretrained_model(tf_source)
