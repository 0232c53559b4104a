"""The model is torchvision's MobileNetV2, key for key and output for output."""

import pytest
import torch
import torchvision

from mbv2.model import TFSameConv2d, build_model
from mbv2.spec import ArchSpec


@pytest.mark.parametrize("width", [1.0, 0.75, 0.5, 0.35, 1.4])
def test_torchvision_state_dict_loads_strictly_and_outputs_match(width):
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v2(width_mult=width).eval()
    # Non-trivial BatchNorm statistics, so a misplaced BatchNorm cannot hide.
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    ours = build_model(ArchSpec(width_mult=width))
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(images), reference(images), atol=1e-5, rtol=0)


def test_tf_same_pads_right_and_bottom_only():
    conv = TFSameConv2d(1, 1, 3, 2, 0, bias=False)
    conv.weight.data.fill_(1.0)
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    # Even input, stride 2: TF pads 0 before and 1 after, so the first window is rows/cols 0-2.
    assert conv(image)[0, 0, 0, 0] == image[0, 0, :3, :3].sum()
    assert conv(image).shape[-2:] == (2, 2)


@pytest.mark.parametrize("resolution", [224, 225, 97])
def test_tf_same_and_symmetric_give_the_same_shapes(resolution):
    for padding in ("symmetric", "tf_same"):
        model = build_model(ArchSpec(resolution=resolution, padding=padding))
        features = model.features(torch.zeros(1, 3, resolution, resolution))
        assert features.shape[-1] == ArchSpec(resolution=resolution).feature_sizes()[-1]


def test_tf_same_keeps_torchvision_keys():
    assert build_model(ArchSpec(padding="tf_same")).state_dict().keys() == build_model(ArchSpec()).state_dict().keys()


def test_a_block_names_each_part_once_and_the_parts_cover_it():
    model = build_model(ArchSpec(), initialise=False)
    first, second = model.features[1], model.features[2]  # t = 1, then t = 6
    assert first.parts == {"depthwise": ("conv.0",), "project": ("conv.1", "conv.2")}
    assert second.parts == {"expand": ("conv.0",), "depthwise": ("conv.1",), "project": ("conv.2", "conv.3")}
    assert first.expand is None and second.expand is second.conv[0]
    assert second.part("depthwise") is second.conv[1] and second.part("project") is second.conv[3]
    for block in (first, second):
        names = [name for names in block.parts.values() for name in names]
        assert names == [f"conv.{index}" for index in range(len(block.conv))]
