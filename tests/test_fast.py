"""The fast path (BatchNorm folded; ONNX Runtime, or torch in channels_last) gives the eager model's logits."""

import sys
from dataclasses import replace

import pytest
import torch
from torch import nn

from mbv2.classify import classify, pretrained_model
from mbv2.device import inference_device
from mbv2.fast import ENGINE_ENV, fast_model
from mbv2.latency import LatencySettings, measure_model
from mbv2.images import open_image
from mbv2.model import TFSameConv2d, build_model
from mbv2.spec import ArchSpec, Stage
from mbv2.weights import load_state_dict, load_weights

from conftest import SAMPLE_IMAGES, dev_images


@pytest.fixture(scope="module")
def dev_batch(tf_source) -> torch.Tensor:
    """The 50 labelled ImageNet images, preprocessed for the shared weights, as one batch."""
    return torch.stack([tf_source.preprocessing(open_image(path)) for path, _ in dev_images()])


def _assert_same_logits(eager: nn.Module, images: torch.Tensor, compile: bool = False, engine=None) -> None:
    fast = fast_model(eager, compile=compile, engine=engine)
    expected_engine = "PyTorch" if compile or engine == "torch" else "ONNX Runtime"
    assert fast.engine.startswith(expected_engine) and fast.engine.endswith("(CPU)")
    with torch.inference_mode():
        expected = eager(images)
    logits = fast(images)
    assert (logits - expected).abs().max() < 1e-3
    assert torch.equal(logits.topk(5).indices, expected.topk(5).indices)
    assert not any(isinstance(module, nn.BatchNorm2d) for module in fast.modules())
    assert any(isinstance(module, nn.BatchNorm2d) for module in eager.modules())  # the original is untouched
    assert fast.network.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def test_same_logits_and_top5_on_the_50_dev_images(tf_model, dev_batch):
    """ONNX Runtime, the engine a CPU gets, with the shared weights and their TF padding."""
    _assert_same_logits(tf_model, dev_batch)


def test_same_logits_with_the_torch_engine(tf_model, dev_batch):
    _assert_same_logits(tf_model, dev_batch[:16], engine="torch")


def test_same_logits_when_compiled(tf_model, dev_batch):
    """torch.compile fuses each ReLU6 into its convolution; the logits must not notice."""
    _assert_same_logits(tf_model, dev_batch[:8], compile=True)


def test_same_logits_with_symmetric_padding(tf_source, dev_batch):
    eager = build_model(tf_source.spec.replace(padding="symmetric"))
    load_weights(eager, load_state_dict(tf_source))
    _assert_same_logits(eager, dev_batch[:10])


def test_same_logits_for_a_custom_architecture(tf_source):
    """Odd resolution (uneven TF padding), another width and table, 10 classes, BatchNorm far from identity."""
    spec = ArchSpec(
        stages=(Stage(1, 16, 1, 1), Stage(4, 24, 2, 2), Stage(6, 40, 2, 2), Stage(3, 56, 1, 1)),
        width_mult=0.75,
        resolution=161,
        num_classes=10,
        padding="tf_same",
    )
    torch.manual_seed(0)
    eager = build_model(spec)
    for module in eager.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    eager.classifier[1].weight.data.normal_(0, 0.5)  # logits of order 10, like trained ones, so 1e-3 is tight
    assert any(isinstance(module, TFSameConv2d) for module in eager.modules())
    preprocessing = replace(tf_source.preprocessing, crop_size=spec.resolution)
    images = torch.stack([preprocessing(open_image(path)) for path, _ in dev_images()[:8]])
    _assert_same_logits(eager, images)


def test_classify_with_the_fast_pretrained_model(tf_source, tf_model):
    fast = fast_model(pretrained_model(tf_source))
    image = open_image(SAMPLE_IMAGES / "grace_hopper.jpg")
    eager_top, fast_top = classify(tf_model, tf_source, image), classify(fast, tf_source, image)
    assert [p.index for p in fast_top] == [p.index for p in eager_top]
    assert [p.probability for p in fast_top] == pytest.approx([p.probability for p in eager_top], abs=1e-4)


def test_inference_runs_on_the_gpu_only_when_there_is_one(monkeypatch):
    assert inference_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert inference_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert inference_device() == torch.device("cpu")


def test_the_engine_is_named_and_onnx_runtime_is_the_cpu_default(tf_model):
    import onnxruntime

    assert fast_model(tf_model).engine == f"ONNX Runtime {onnxruntime.__version__} (CPU)"
    assert fast_model(tf_model, engine="torch").engine == f"PyTorch {torch.__version__.split('+')[0]} (CPU)"


def test_torch_serves_where_onnxruntime_is_missing(tf_model, dev_batch, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    fast = fast_model(tf_model)
    assert fast.engine.startswith("PyTorch")
    with torch.inference_mode():
        assert torch.equal(fast(dev_batch[:4]).topk(5).indices, tf_model(dev_batch[:4]).topk(5).indices)


def test_torch_serves_a_model_that_cannot_be_exported(tf_model, monkeypatch):
    import mbv2.fast

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot export")

    monkeypatch.setattr(mbv2.fast, "_onnx_bytes", refuse)
    assert fast_model(tf_model).engine.startswith("PyTorch")


def test_the_engine_can_be_chosen_by_environment(tf_model, monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "torch")
    assert fast_model(tf_model).engine.startswith("PyTorch")
    monkeypatch.setenv(ENGINE_ENV, "tensorrt")
    with pytest.raises(ValueError, match="MBV2_ENGINE must be one of onnxruntime, torch, got 'tensorrt'"):
        fast_model(tf_model)


def test_a_gpu_gets_the_torch_engine(tf_model):
    from mbv2.fast import _chosen_engine

    assert _chosen_engine(None, torch.device("cuda"), compile=False) == "torch"
    assert _chosen_engine(None, torch.device("cpu"), compile=True) == "torch"
    assert _chosen_engine(None, torch.device("cpu"), compile=False) == "onnxruntime"


def test_onnx_runtime_runs_on_the_thread_count_a_measurement_sets(tf_model, dev_batch):
    """ONNX Runtime's pool is sized per session: one per thread count, the one torch is set to at the call."""
    fast = fast_model(tf_model)
    before = torch.get_num_threads()
    measure_model(fast, 224, LatencySettings(runs=2, warmup=1, threads=1))
    assert set(fast._onnx._sessions) == {before, 1}
    assert torch.get_num_threads() == before
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            assert (fast(dev_batch[:2]) - tf_model(dev_batch[:2])).abs().max() < 1e-3
    finally:
        torch.set_num_threads(before)


def test_another_input_size_runs_on_the_torch_copy(tf_model, tf_source):
    """The exported graph is fixed to the spec's resolution (TF padding depends on it); other sizes still work."""
    fast = fast_model(tf_model)
    images = torch.randn(2, 3, 192, 192, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert (fast(images) - tf_model(images)).abs().max() < 1e-3
