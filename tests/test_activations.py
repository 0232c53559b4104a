"""Forward hooks on the real pretrained model and a real photo: shapes, the residual add,
ReLU6 statistics and the non-linear bottleneck ablation."""

from __future__ import annotations

import pytest
import torch

from conftest import SAMPLE_IMAGES
from mbv2.activations import (
    ActivationCounts,
    block_statistics,
    bottleneck_logits,
    same_damage_elsewhere,
    capture_block,
    inverted_residuals,
    most_active_channels,
    nonlinear_bottleneck,
    stage_statistics,
    top1_agreement,
)
from mbv2.analysis import analyse
from mbv2.classify import top_k
from mbv2.images import open_image

# features.1: t = 1; features.2: stride 2; features.3: residual; features.14: stride 2, 160 wide;
# features.17: the last block, 320 channels out.
BLOCKS = (1, 2, 3, 14, 17)


@pytest.fixture(scope="module")
def samples(tf_source) -> torch.Tensor:
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))
    return torch.stack([tf_source.preprocessing(open_image(path)) for path in paths])


@pytest.fixture(scope="module")
def cat(tf_source) -> torch.Tensor:
    return tf_source.preprocessing(open_image(SAMPLE_IMAGES / "cat.jpg")).unsqueeze(0)


@pytest.fixture(scope="module")
def rows(tf_source):
    return analyse(tf_source.spec).rows


@pytest.mark.parametrize("index", BLOCKS)
def test_hook_shapes_are_the_analysis_shapes(tf_model, cat, rows, index):
    captured = capture_block(tf_model, cat, index)
    layers = {row.kind: row for row in rows if row.block == index}
    first = layers.get("expand", layers["depthwise"])
    assert tuple(captured.block_input.shape) == first.input_shape
    if captured.plan.has_expansion:
        assert tuple(captured.expanded.shape) == layers["expand"].output_shape
    else:
        assert captured.expanded is None and "expand" not in layers
    assert tuple(captured.depthwise.shape) == layers["depthwise"].output_shape
    assert tuple(captured.projected.shape) == layers["project"].output_shape
    assert tuple(captured.output.shape) == layers["project"].output_shape


def test_the_projection_is_what_the_residual_adds(tf_model, cat):
    residual = capture_block(tf_model, cat, 3)
    assert residual.plan.has_residual
    assert torch.equal(residual.residual_sum, residual.block_input + residual.projected)
    # The sum really changes something: the projection is not zero and the input matters.
    assert not torch.equal(residual.residual_sum, residual.projected)

    strided = capture_block(tf_model, cat, 2)
    assert not strided.plan.has_residual and strided.residual_sum is None
    assert torch.equal(strided.output, strided.projected)


def test_relu6_outputs_are_clipped_and_the_projection_is_signed(tf_model, cat):
    captured = capture_block(tf_model, cat, 3)
    for after_relu6 in (captured.expanded, captured.depthwise):
        assert after_relu6.min() == 0 and after_relu6.max() <= 6
    projection = ActivationCounts.of(captured.projected)
    assert 0.3 < projection.negative_share < 0.7
    assert 0.2 < projection.negative_energy_share < 0.8


def test_statistics_count_each_block_once_and_add_up_per_stage(tf_model, cat):
    blocks = block_statistics(tf_model, cat)
    assert [block.index for block in blocks] == list(range(1, 18))
    captured = capture_block(tf_model, cat, 5)
    assert blocks[4].expanded == ActivationCounts.of(captured.expanded)
    assert blocks[4].projected == ActivationCounts.of(captured.projected)

    stages = stage_statistics(blocks)
    assert [(stage.stage, stage.blocks) for stage in stages] == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 3), (6, 3), (7, 1)]
    assert stages[0].expanded.zero_share is None  # t = 1: no expansion to count
    third = stages[2]
    assert third.depthwise.total == sum(block.depthwise.total for block in blocks if block.plan.stage == 3)
    for stage in stages[1:]:
        assert 0.1 < stage.expanded.zero_share < 0.95
        assert stage.expanded.clipped_share < 0.05
        assert 0.4 < stage.projected.negative_share < 0.6


def test_the_ablation_changes_the_logits_and_undoes_itself(tf_model, cat):
    state_before = {name: tensor.clone() for name, tensor in tf_model.state_dict().items()}
    with torch.inference_mode():
        linear = tf_model(cat)
        with nonlinear_bottleneck(tf_model):
            nonlinear = tf_model(cat)
        restored = tf_model(cat)
    assert (linear - nonlinear).abs().max() > 1.0
    assert torch.equal(linear, restored)
    assert all(torch.equal(state_before[name], tensor) for name, tensor in tf_model.state_dict().items())
    assert all(not block.project._forward_hooks for block in inverted_residuals(tf_model).values())


def test_relu6_bottlenecks_lose_the_sample_images(tf_model, tf_source, samples):
    logits = bottleneck_logits(tf_model, samples)
    linear, nonlinear = logits.linear, logits.nonlinear
    assert [top_k(row, tf_source.labels, 1)[0].label for row in linear] == [
        "Egyptian cat", "espresso", "mortarboard", "missile"
    ]
    assert top1_agreement(linear, linear) == 1.0
    assert top1_agreement(linear, nonlinear) <= 0.25


def test_the_control_destroys_as_many_values_elsewhere_and_leaves_no_hook(tf_model, samples):
    """The control zeroes, before each projection, about as many values as a ReLU6 after it would."""
    blocks = inverted_residuals(tf_model)
    project = blocks[3].project
    seen = {}
    handles = [  # registered first, so it sees the tensor before the control; the forward hook sees it after
        project.register_forward_pre_hook(lambda module, inputs: seen.update(before=inputs[0].clone())),
        project.register_forward_hook(lambda module, inputs, output: seen.update(after=inputs[0].clone())),
    ]
    with torch.inference_mode(), same_damage_elsewhere(tf_model):
        tf_model(samples)
        would_zero = int((project.forward(seen["before"]) < 0).sum())
    for handle in handles:
        handle.remove()
    destroyed = int((seen["after"] == 0).sum()) - int((seen["before"] == 0).sum())
    assert destroyed == pytest.approx(would_zero, rel=0.02)
    assert all(not block.project._forward_pre_hooks for block in blocks.values())


def test_most_active_channels_rank_by_mean_absolute_value():
    maps = torch.zeros(4, 2, 2)
    maps[1] = -3.0  # strongly negative counts as active
    maps[2] = 1.0
    maps[3, 0, 0] = 2.0  # mean 0.5
    assert most_active_channels(maps, 3) == [1, 2, 3]
    assert most_active_channels(maps, 10) == [1, 2, 3, 0]


def test_capture_refuses_what_is_not_a_block(tf_model, cat):
    with pytest.raises(ValueError, match="features\\[0\\]"):
        capture_block(tf_model, cat, 0)
