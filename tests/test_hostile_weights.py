"""Weights and their JSON descriptions as an operator or a stranger might hand them in.

Each bad file gets a message naming what is wrong (every field of a sidecar at once), is refused
before torch.load allocates anything it claims, and the good shared weights load right after.
"""

from __future__ import annotations

import copy
import json
import logging
import struct
import zipfile

import pytest
import torch

from conftest import SAMPLE_IMAGES, WEIGHTS_JSON, app_test, rss_bytes
from mbv2.cli import main
from mbv2.errors import WeightsError
from mbv2.weights import MAX_WEIGHTS_BYTES, available_sources, load_state_dict, local_source

SHARED_PTH = WEIGHTS_JSON.with_suffix(".pth")
GOOD = json.loads(WEIGHTS_JSON.read_text())


def sidecar(folder, name: str = "weights.json", **changes) -> object:
    """The shared weights' description with `changes` (None removes a field), pointing at the shared .pth."""
    meta = {**copy.deepcopy(GOOD), "file": str(SHARED_PTH)}
    for key, value in changes.items():
        section, _, field = key.partition("__")  # preprocess__std changes meta["preprocess"]["std"]
        target = meta[section] if field else meta
        field = field or section
        if value is None:
            target.pop(field)
        else:
            target[field] = value
    path = folder / name
    path.write_text(json.dumps(meta))
    return path


def assert_good_weights_load() -> None:
    source = local_source(WEIGHTS_JSON)
    assert len(load_state_dict(source)) == 314


BAD_SIDECARS = {  # id: (changes, what the message says)
    "std zero": ({"preprocess__std": [0.5, 0, 0.5]}, "preprocess.std[1]: 0 is less than or equal to the minimum of 0"),
    "mean too short": ({"preprocess__mean": [0.5, 0.5]}, "preprocess.mean: [0.5, 0.5] is too short"),
    "negative crop": ({"preprocess__central_crop_fraction": -0.5},
                      "preprocess.central_crop_fraction: -0.5 is less than or equal to the minimum of 0"),
    "crop above one": ({"preprocess__central_crop_fraction": 1.5},
                       "preprocess.central_crop_fraction: 1.5 is greater than the maximum of 1"),
    "text crop": ({"preprocess__central_crop_fraction": "0.875"},
                  "preprocess.central_crop_fraction: '0.875' is not of type 'number'"),
    "size zero": ({"preprocess__size": 0}, "preprocess.size: 0 is less than the minimum of 1"),
    "huge size": ({"preprocess__size": 100_000}, "preprocess.size: 100000 is greater than the maximum of 1024"),
    "both crop rules": ({"preprocess__resize_size": 256}, "preprocess: Preprocessing needs exactly one of resize_size"),
    "architecture list": ({"architecture": []}, "architecture: [] is not of type 'object'"),
    "bad width": ({"architecture__width_mult": 40.0}, "architecture: Width multiplier must be between 0.1 and 4.0"),
    "padding": ({"padding": "same"}, "padding: 'same' is not one of ['symmetric', 'tf_same']"),
    "no file": ({"file": None}, "'file' is a required property"),
    "labels of the wrong length": ({"labels": ["cat", "dog"]},
                                   "lists 2 labels, but its architecture has 1,000 classes"),
}


@pytest.mark.parametrize("changes, message", BAD_SIDECARS.values(), ids=BAD_SIDECARS.keys())
def test_a_bad_sidecar_field_is_named(tmp_path, changes, message):
    with pytest.raises(WeightsError) as caught:
        local_source(sidecar(tmp_path, **changes))
    assert message in str(caught.value)
    assert_good_weights_load()


def test_every_bad_field_is_named_at_once(tmp_path):
    with pytest.raises(WeightsError) as caught:
        local_source(sidecar(tmp_path, preprocess__std=[0.5, 0, 0.5], preprocess__size=0, padding="same"))
    lines = str(caught.value).splitlines()
    assert [line for line in lines if line.startswith("- ")] == [
        "- padding: 'same' is not one of ['symmetric', 'tf_same']",
        "- preprocess.size: 0 is less than the minimum of 1",
        "- preprocess.std[1]: 0 is less than or equal to the minimum of 0",
    ]


UNREADABLE = {  # id: (text in the good sidecar, what replaces it, what the message says)
    "nan mean": ('"mean": [0.5, 0.5, 0.5]', '"mean": [0.5, NaN, 0.5]', "holds NaN, which is not a number"),
    "deep nesting": ('"padding": "tf_same"', '"padding": ' + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "huge integer": ('"size": 224', '"size": 1' + "0" * 5000, "an integer of 5001 digits"),
}


@pytest.mark.parametrize("text, replacement, message", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_sidecar_is_explained(tmp_path, text, replacement, message):
    path = sidecar(tmp_path)
    path.write_text(path.read_text().replace(text, replacement))
    with pytest.raises(WeightsError, match=message):
        local_source(path)
    assert_good_weights_load()


def test_weights_with_a_nan_are_refused_not_shown_as_nan_percent(tmp_path, tf_source):
    state = load_state_dict(tf_source)
    state["classifier.1.bias"] = state["classifier.1.bias"].clone()
    state["classifier.1.bias"][3] = float("nan")
    torch.save(state, tmp_path / "damaged.pth")
    damaged = sidecar(tmp_path, file="damaged.pth")
    with pytest.raises(WeightsError, match=r"damaged.pth holds NaN or infinite values in classifier.1.bias, so"):
        load_state_dict(local_source(damaged))
    assert_good_weights_load()


def test_a_folder_skips_and_names_what_is_not_weights(tmp_path, monkeypatch, caplog):
    """`mbv2 export --weights D --out D` puts a spec JSON beside the weights: nothing may break."""
    sidecar(tmp_path)
    (tmp_path / "mobilenet_v2_1.0_224.json").write_text(json.dumps({"width_mult": 1.0, "resolution": 224}))
    monkeypatch.setenv("MBV2_WEIGHTS", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="mbv2.weights"):
        names = [source.name for source in available_sources()]
    assert names == [f"local {SHARED_PTH.name}", "torchvision IMAGENET1K_V1", "torchvision IMAGENET1K_V2"]
    [record] = caplog.records
    assert "Skipped" in record.message and "mobilenet_v2_1.0_224.json" in record.message
    assert "'file' is a required property" in record.message


def test_the_cli_takes_a_weights_folder_holding_an_exported_spec(tmp_path, capsys):
    sidecar(tmp_path)
    (tmp_path / "a_spec.json").write_text(json.dumps({"width_mult": 1.0}))  # sorts first
    assert main(["classify", "--weights", str(tmp_path), str(SAMPLE_IMAGES / "cat.jpg")]) == 0
    assert "Egyptian cat" in capsys.readouterr().out


def test_two_sidecars_claiming_one_file_are_warned_about(tmp_path, monkeypatch, caplog):
    sidecar(tmp_path, "first.json", source="one export")
    sidecar(tmp_path, "second.json", source="another export")
    monkeypatch.setenv("MBV2_WEIGHTS", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="mbv2.weights"):
        sources = available_sources()
    assert sources[0].sidecar == tmp_path / "first.json"
    [record] = caplog.records
    assert record.message == (
        f"{tmp_path / 'first.json'} and {tmp_path / 'second.json'} both describe local {SHARED_PTH.name}; "
        "using the first, ignoring the second."
    )


def zip_claiming(path, unpacked: int) -> None:
    """A real torch.save archive whose central directory claims one entry unpacks to `unpacked` bytes."""
    torch.save({"weight": torch.zeros(4)}, path)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory record
    data[entry + 24 : entry + 28] = struct.pack("<I", unpacked)  # its uncompressed size
    path.write_bytes(bytes(data))


def test_a_zip_bomb_is_refused_before_torch_load_allocates(tmp_path):
    bomb = tmp_path / "bomb.pth"
    zip_claiming(bomb, 2**32 - 1)
    assert sum(entry.file_size for entry in zipfile.ZipFile(bomb).infolist()) > MAX_WEIGHTS_BYTES
    before = rss_bytes()
    with pytest.raises(WeightsError, match=r"bomb.pth would unpack to 4,096 MiB from 0.0 MiB; the limit is 512 MiB"):
        load_state_dict(local_source(bomb))
    assert rss_bytes() - before < 50 * 2**20
    assert_good_weights_load()


def test_a_file_above_the_size_limit_is_refused_unread(tmp_path):
    huge = tmp_path / "huge.pth"
    with open(huge, "wb") as file:
        file.truncate(MAX_WEIGHTS_BYTES + 1)  # sparse: no disk used, nothing read
    with pytest.raises(WeightsError, match=r"huge.pth is 512 MiB; the limit is 512 MiB \(a model of 100,000,000"):
        load_state_dict(local_source(huge))
    assert_good_weights_load()


@pytest.fixture
def weights_folder(tmp_path, tf_source, monkeypatch):
    """A folder served as MBV2_WEIGHTS: weights with one NaN, a stray spec JSON and the good weights."""
    import streamlit as st

    state = load_state_dict(tf_source)
    state["features.1.conv.0.0.weight"] = state["features.1.conv.0.0.weight"].clone()
    state["features.1.conv.0.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "damaged.pth")
    sidecar(tmp_path, "a_damaged.json", file="damaged.pth")
    (tmp_path / "b_spec.json").write_text(json.dumps({"width_mult": 1.0}))
    sidecar(tmp_path, "c_good.json")
    st.cache_resource.clear()  # the app looks for weights once a minute, for every session
    yield tmp_path
    st.cache_resource.clear()


def test_the_app_refuses_nan_weights_and_classifies_with_the_next(weights_folder, monkeypatch):
    at = app_test(view="classify")
    monkeypatch.setenv("MBV2_WEIGHTS", str(weights_folder))  # after app_test, which points it at the shared weights
    at.run()
    assert not at.exception
    assert at.selectbox(key="weights").value == "local damaged.pth"
    [error] = at.error
    assert "damaged.pth holds NaN or infinite values in features.1.conv.0.0.weight" in error.value
    assert not at.subheader  # no "tiger shark · nan%"
    at.selectbox(key="weights").select(f"local {SHARED_PTH.name}").run()
    assert not at.exception and not at.error
    assert at.subheader[0].value.startswith("Egyptian cat · ")
