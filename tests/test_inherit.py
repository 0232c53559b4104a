"""Weight inheritance: growth keeps the logits exactly, slicing builds every preset and keeps most of the accuracy."""

from __future__ import annotations

import pytest
import torch

from conftest import DEV_IMAGES, EVAL_IMAGES
from mbv2.compare import TF_SLIM_REFERENCES
from mbv2.errors import InheritanceError
from mbv2.evaluate import Evaluator, calibration_batches, image_set
from mbv2.inherit import calibrate, inherit, without_block
from mbv2.spec import Stage


@pytest.fixture(scope="module")
def images(tf_source) -> torch.Tensor:
    """Four real ImageNet images, preprocessed for the shared weights."""
    return calibration_batches(image_set(DEV_IMAGES, limit=4), tf_source.preprocessing)[0]


@pytest.fixture(scope="module")
def calibration(tf_model, tf_source):
    return calibrate(tf_model, calibration_batches(image_set(DEV_IMAGES, limit=16), tf_source.preprocessing))


def with_row(spec, row: int, **changes):
    stages = list(spec.stages)
    old = stages[row - 1]
    stages[row - 1] = Stage(**{**vars(old), **changes})
    return spec.replace(stages=tuple(stages))


def expansions(spec, t: int):
    return spec.replace(
        stages=tuple(Stage(t if stage.t > 1 else 1, stage.c, stage.n, stage.s) for stage in spec.stages)
    )


GROWTHS = {
    "t = 8": lambda spec: expansions(spec, 8),
    "one more repeat in row 4": lambda spec: with_row(spec, 4, n=5),
    "c + 8 in row 3": lambda spec: with_row(spec, 3, c=40),
    "width 1.4": lambda spec: spec.replace(width_mult=1.4),
}


@pytest.mark.parametrize("edit", list(GROWTHS))
def test_growth_keeps_the_logits(edit, tf_model, tf_source, images):
    inherited = inherit(tf_model, GROWTHS[edit](tf_source.spec))
    with torch.no_grad():
        assert torch.allclose(inherited.model(images), tf_model(images), atol=1e-4, rtol=0)
    assert inherited.report.is_exact
    assert "the logits are the original's" in inherited.report.summary()


def test_report_says_what_happened_to_each_layer(tf_model, tf_source):
    same = inherit(tf_model, tf_source.spec).report
    assert set(same.counts()) == {"copied"} and same.is_exact
    deeper = inherit(tf_model, with_row(tf_source.spec, 4, n=5)).report
    assert deeper.counts()["identity"] == 3  # the new block's expand, depthwise and zero projection
    wider = {layer.role: layer for layer in inherit(tf_model, expansions(tf_source.spec, 8)).report.layers}
    assert wider["row 2, block 1, expand"].outcome == "grown"
    assert wider["row 2, block 1, expand"].detail == "96 output channels + 32 new"


def test_fewer_repeats_say_which_blocks_were_left_out(tf_model, tf_source):
    shorter = with_row(tf_source.spec, 4, n=3)
    assert inherit(tf_model, shorter).report.dropped_blocks == ("row 4, block 4",)
    chosen = inherit(tf_model, shorter, kept_repeats={4: (0, 1, 3)}).report
    assert chosen.dropped_blocks == ("row 4, block 3",) and not chosen.is_exact
    with pytest.raises(InheritanceError, match=r"Row 4 keeps 3 of the pretrained row's 4 blocks"):
        inherit(tf_model, shorter, kept_repeats={4: (0, 1)})


def test_removing_a_block_needs_a_residual_one(tf_source):
    spec, kept = without_block(tf_source.spec, 4, 2)
    assert spec.stages[3].n == 3 and kept == {4: (0, 1, 3)}
    with pytest.raises(InheritanceError, match="not a residual block"):
        without_block(tf_source.spec, 4, 0)  # the row's first block changes the channels


def test_slicing_needs_calibration_images(tf_model, tf_source):
    with pytest.raises(InheritanceError, match="calibration images"):
        inherit(tf_model, tf_source.spec.replace(width_mult=0.75))


def test_slicing_builds_and_runs_every_tf_slim_preset(tf_model, tf_source, calibration):
    for reference in TF_SLIM_REFERENCES:
        spec = tf_source.spec.replace(width_mult=reference.width_mult, resolution=reference.resolution)
        inherited = inherit(tf_model, spec, calibration)
        with torch.no_grad():
            logits = inherited.model(torch.zeros(1, 3, spec.resolution, spec.resolution))
        assert logits.shape == (1, 1000) and torch.isfinite(logits).all(), reference.name
        outcomes = inherited.report.counts()
        assert ("sliced" in outcomes) == (reference.width_mult < 1), reference.name


def test_correction_brings_sliced_logits_closer(tf_model, tf_source, calibration, images):
    spec = expansions(tf_source.spec, 4)
    with torch.no_grad():
        original = tf_model(images)
        errors = {
            correction: float(
                (inherit(tf_model, spec, calibration, correction=correction).model(images) - original).square().mean()
            )
            for correction in ("none", "mean", "regression")
        }
    assert errors["regression"] < errors["mean"] < errors["none"]


@pytest.mark.slow
def test_one_repeat_fewer_in_row_4_loses_at_most_4_points(tf_source, tf_model):
    evaluator = Evaluator(tf_source, image_set(EVAL_IMAGES), image_set(DEV_IMAGES), model=tf_model)
    full = evaluator.evaluate(tf_source.spec)
    shorter = evaluator.evaluate(with_row(tf_source.spec, 4, n=3))
    assert full.images == 700 and full.top1 > 70
    assert full.top1 - shorter.top1 <= 4, (full.describe(), shorter.describe())
