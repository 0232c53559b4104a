"""Weight sources: the real shared weights, torchvision's registry, and what must be refused."""

import json

import pytest
import torch
import torchvision

from mbv2.classify import classify, pretrained_model
from mbv2.errors import WeightsError, WeightsMismatchError, WeightsUnavailableError
from mbv2.images import open_image
from mbv2.model import build_model
from mbv2.spec import ArchSpec
from mbv2.weights import (
    WEIGHTS_ENV, available_sources, load_state_dict, load_weights, local_source, sources_at, torchvision_source,
)

from conftest import WEIGHTS_JSON, dev_images


def test_sidecar_describes_the_shared_weights(tf_source):
    assert tf_source.spec == ArchSpec(padding="tf_same")
    assert tf_source.preprocessing.mean == (0.5, 0.5, 0.5)
    assert tf_source.preprocessing.central_crop_fraction == 0.875
    assert len(tf_source.labels) == 1000 and tf_source.labels[1] == "goldfish"
    assert "coral" in tf_source.provenance


def test_shared_weights_load_into_torchvision_strictly(tf_source):
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(load_state_dict(tf_source), strict=True)


def test_a_pth_without_sidecar_is_taken_as_torchvision(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    source = local_source(path)
    assert source.spec.padding == "symmetric" and source.preprocessing.resize_size == 256
    pretrained_model(source)


def test_torchvision_sources_use_torchvisions_own_transforms():
    v1, v2 = torchvision_source("IMAGENET1K_V1"), torchvision_source("IMAGENET1K_V2")
    assert (v1.preprocessing.resize_size, v2.preprocessing.resize_size) == (256, 232)
    assert v1.preprocessing.mean == (0.485, 0.456, 0.406) and v1.spec.padding == "symmetric"
    assert "acc@1" not in v1.provenance and "71.878" in v1.provenance


def test_torchvision_download_failure_says_how_to_get_the_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    source = torchvision_source("IMAGENET1K_V1")
    assert not source.is_available_offline()

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match="MBV2_WEIGHTS") as caught:
        load_state_dict(source)
    assert "name resolution" in str(caught.value)


def test_env_var_selects_local_weights(monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(WEIGHTS_JSON.parent))
    names = [source.name for source in available_sources()]
    assert names[0] == "local mobilenet_v2_1.0_224_tf2_ptq.pth"
    assert "torchvision IMAGENET1K_V1" in names and "torchvision IMAGENET1K_V2" in names
    monkeypatch.setenv(WEIGHTS_ENV, str(WEIGHTS_JSON.with_suffix(".pth")))
    assert available_sources()[0].spec.padding == "tf_same"


def test_a_path_names_a_sidecar_its_pth_or_a_folder_of_them(tmp_path):
    described = local_source(WEIGHTS_JSON)
    assert sources_at(WEIGHTS_JSON) == sources_at(WEIGHTS_JSON.with_suffix(".pth")) == [described]
    assert described in sources_at(WEIGHTS_JSON.parent)
    assert sources_at(tmp_path) == []


def test_mismatched_weights_name_the_tensors(tf_source):
    model = build_model(ArchSpec(width_mult=0.5))
    with pytest.raises(WeightsMismatchError) as caught:
        load_weights(model, load_state_dict(tf_source))
    message = str(caught.value)
    assert "features.0.0.weight: file (32, 3, 3, 3), model (16, 3, 3, 3)" in message
    assert "more" in message  # long lists are shortened, not dumped


def test_missing_and_unexpected_tensors_are_named(tf_source):
    state = dict(load_state_dict(tf_source))
    state["extra.weight"] = state.pop("classifier.1.bias")
    with pytest.raises(WeightsMismatchError, match=r"missing from the file: classifier.1.bias; not in the model: extra.weight"):
        load_weights(build_model(ArchSpec()), state)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="not a plain PyTorch state_dict"):
        load_state_dict(local_source(junk))


def test_broken_sidecar_and_missing_file(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"file": "x.pth"}))
    with pytest.raises(WeightsError, match="needs 'file', 'architecture'"):
        local_source(tmp_path / "bad.json")
    with pytest.raises(WeightsError, match="No weights file at"):
        local_source(tmp_path / "nowhere.pth")


def test_top1_on_the_imagenet_dev_images(tf_source, tf_model):
    images = dev_images()
    assert len(images) == 50
    hits = sum(classify(tf_model, tf_source, open_image(path))[0].label == label for path, label in images)
    assert hits / len(images) >= 0.80, f"top-1 {hits}/50"


def test_tf_same_padding_beats_symmetric_with_tf_weights(tf_source):
    symmetric = build_model(tf_source.spec.replace(padding="symmetric"))
    load_weights(symmetric, load_state_dict(tf_source))
    tf_same = pretrained_model(tf_source)
    images = [open_image(path) for path, _ in dev_images()]
    batch = torch.stack([tf_source.preprocessing(image) for image in images])
    labels = torch.tensor([tf_source.labels.index(label) for _, label in dev_images()])
    with torch.no_grad():
        same_hits = (tf_same(batch).argmax(1) == labels).sum()
        symmetric_hits = (symmetric(batch).argmax(1) == labels).sum()
    assert same_hits > symmetric_hits


def test_the_shipped_class_names_are_torchvisions():
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    from mbv2.weights import IMAGENET_CATEGORIES

    assert IMAGENET_CATEGORIES == tuple(_IMAGENET_CATEGORIES)


def _torchvision_preprocessing(preprocessing, image):
    """The recipe as torchvision's transforms compute it, which mbv2.preprocess must match bit for bit."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    mode = InterpolationMode(preprocessing.interpolation)
    if preprocessing.resize_size is not None:
        image = TF.resize(image, [preprocessing.resize_size], interpolation=mode, antialias=True)
        image = TF.center_crop(image, [preprocessing.crop_size])
    else:
        keep_w = round(image.width * preprocessing.central_crop_fraction)
        keep_h = round(image.height * preprocessing.central_crop_fraction)
        image = TF.center_crop(image, [keep_h, keep_w])
        image = TF.resize(image, [preprocessing.crop_size] * 2, interpolation=mode, antialias=True)
    tensor = TF.to_dtype(TF.pil_to_tensor(image), torch.float32, scale=True)
    return TF.normalize(tensor, list(preprocessing.mean), list(preprocessing.std))


def test_preprocessing_computes_what_torchvisions_transforms_compute(tf_source):
    """Without importing torchvision (a second per command), and to the last bit, on real photos and odd sizes."""
    from dataclasses import replace

    from PIL import Image

    from mbv2.preprocess import INTERPOLATIONS

    recipes = [
        tf_source.preprocessing,  # central crop, then resize
        torchvision_source("IMAGENET1K_V2").preprocessing,  # resize the shorter side, then centre crop
        tf_source.preprocessing.at_resolution(161),
        torchvision_source("IMAGENET1K_V1").preprocessing.at_resolution(97),
        replace(torchvision_source("IMAGENET1K_V1").preprocessing, resize_size=150),  # a crop larger: padded
    ]
    generator = torch.Generator().manual_seed(0)
    odd = [
        Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=generator, dtype=torch.uint8).numpy())
        for h, w in ((224, 224), (101, 333), (500, 37), (9, 9), (1, 640))
    ]
    photos = [open_image(path) for path, _ in dev_images()[:10]]
    for recipe in recipes:
        for interpolation in ("bilinear", "bicubic", "nearest") if recipe is recipes[0] else ("bilinear",):
            chosen = replace(recipe, interpolation=interpolation)
            for image in photos + odd:
                assert torch.equal(chosen(image), _torchvision_preprocessing(chosen, image))
    assert set(INTERPOLATIONS) == {mode.value for mode in torchvision.transforms.InterpolationMode}


def test_evaluate_and_classify_need_no_torchvision():
    """Importing torchvision (and the torch._dynamo it pulls in) cost each command 1.3 s, and 0.5 s at exit."""
    import subprocess
    import sys

    code = "import sys, mbv2.cli, mbv2.evaluate, mbv2.fast; print('torchvision' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
