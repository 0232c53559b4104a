"""`mbv2 export` of the real pretrained weights: TorchScript and ONNX give the eager model's logits."""

import numpy as np
import onnx
import pytest
import torch
import yaml
from onnx.reference import ReferenceEvaluator

from conftest import WEIGHTS_JSON, dev_images, run_cli
from mbv2.cli import main
from mbv2.export import onnx_bytes, seeded_model, traced
from mbv2.images import open_image
from mbv2.spec import ArchSpec


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    assert main(["export", "--out", str(folder), "--weights", str(WEIGHTS_JSON)]) == 0
    return {path.suffix: path for path in folder.iterdir()}


@pytest.fixture(scope="module")
def batch(tf_source):
    """A real ImageNet image, preprocessed as the weights expect (the ONNX graph takes batch 1)."""
    path = next(path for path, truth in dev_images() if truth == "schooner")
    return tf_source.preprocessing(open_image(path)).unsqueeze(0)


def test_export_writes_the_four_files_named_like_tf_slim(exported):
    assert sorted(path.name for path in exported.values()) == [
        f"mobilenet_v2_1.0_224.{suffix}" for suffix in ("json", "onnx", "pt", "yaml")
    ]


def test_spec_json_is_the_weights_architecture(exported, tf_source):
    assert ArchSpec.from_json(exported[".json"].read_text()) == tf_source.spec


def test_torchscript_gives_the_eager_logits_and_its_operator_list(exported, tf_model, batch):
    with pytest.warns(FutureWarning):  # torch.jit is deprecated; reading TorchScript still works
        loaded = torch.jit.load(exported[".pt"])
    with torch.inference_mode():
        expected, actual = tf_model(batch), loaded(batch)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    operators = yaml.safe_load(exported[".yaml"].read_text())
    assert operators == sorted(torch.jit.export_opnames(loaded))
    assert {"aten::_convolution", "aten::hardtanh_", "aten::pad", "aten::linear"} <= set(operators)  # pad: TF "SAME"


def test_onnx_is_valid_and_gives_the_eager_logits(exported, tf_model, batch):
    model = onnx.load(exported[".onnx"])
    onnx.checker.check_model(model, full_check=True)
    assert [node.name for node in model.graph.input] == ["image"]
    # onnx's own reference runtime (numpy); onnxruntime is not a dependency of this project.
    logits = ReferenceEvaluator(model).run(None, {"image": batch.numpy()})[0]
    with torch.inference_mode():
        expected = tf_model(batch).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert logits.argmax() == expected.argmax() == 780  # schooner


def test_random_weights_are_seeded_and_pretrained_export_refuses_a_second_architecture(capsys, tmp_path):
    spec = ArchSpec(width_mult=0.35, resolution=64)
    first, second = seeded_model(spec).state_dict(), seeded_model(spec).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert onnx_bytes(seeded_model(spec))[:4]  # small and quick: exports without weights too
    with pytest.raises(SystemExit):
        main(["export", "--out", str(tmp_path), "--weights", str(WEIGHTS_JSON), "--width", "0.5"])
    assert "--weights fixes the architecture" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_tf_same():
    """A small random model with TF padding, whose padding depends on the input size."""
    return seeded_model(ArchSpec(width_mult=0.35, resolution=64, padding="tf_same"))


def test_torchscript_refuses_another_size_and_takes_any_batch(small_tf_same):
    script = traced(small_tf_same)
    with pytest.raises(Exception, match="This model was traced at 64x64 pixels; resize the image to that."):
        script(torch.zeros(1, 3, 96, 96))  # would run with the padding of 64 and give wrong logits
    images = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(script(images), small_tf_same(images))


def test_onnx_takes_any_batch(small_tf_same):
    model = onnx.load_from_string(onnx_bytes(small_tf_same))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    images = torch.randn(3, 3, 64, 64)
    logits = ReferenceEvaluator(model).run(None, {"image": images.numpy()})[0]
    with torch.inference_mode():
        np.testing.assert_allclose(logits, small_tf_same(images).numpy(), rtol=1e-4, atol=1e-4)


def test_without_weights_export_takes_them_from_the_environment_as_its_help_says(tmp_path):
    """`run_cli` sets MBV2_WEIGHTS to the shared weights, as a user's shell would."""
    exported = run_cli("export", "--out", str(tmp_path))
    assert exported.returncode == 0, exported.stderr
    assert "with pretrained weights local mobilenet_v2_1.0_224_tf2_ptq.pth" in exported.stdout
    chosen = run_cli("export", "--out", str(tmp_path / "small"), "--width", "0.35", "--resolution", "64")
    assert chosen.returncode == 0 and "random weights (seed 0)" in chosen.stdout
